// The SageMaker control plane: resources, validation with AWS's messages, ARNs and statuses.
export { ControlPlane } from './plane.js';
export type { ControlPlaneOptions } from './plane.js';
export { EndpointStates } from './endpoint-states.js';
export type { EndpointRecord, Observation } from './endpoint-states.js';
export type { RequestContext } from './arn.js';
export type {
  DeploymentSpec, DesiredState, EndpointDoc, EndpointStatus, EndpointConfigDoc, ModelDoc, ObservedState, VariantTarget,
} from './resources.js';
export type {
  ContainerDefinition, DeployedImage, ProductionVariant, ProductionVariantStatus, ProductionVariantSummary,
  PendingDeploymentSummary, PendingProductionVariantSummary,
} from './shapes.generated.js';
