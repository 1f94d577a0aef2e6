// Instance providers: start, health-check and stop copies of a variant's containers.
export { ProcessFleet } from './process.js';
export type { ProcessFleetOptions } from './process.js';
export { ImageTable, parseImage } from './images.js';
export type { ImageCommand, ResolvedImage, ImageReference } from './images.js';
export type { ContainerHandle, ContainerSpec, FleetProvider, Instance, InstanceSpec, InstanceState, InstanceExit } from './instance.js';
export { ContainerCallError, ContainerClient, SpinWait } from './client.js';
export type { ContainerCallFailure, ContainerRequest, ContainerResponse } from './client.js';
export { processAlive } from './pids.js';
