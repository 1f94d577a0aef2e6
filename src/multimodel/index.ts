// Multi-model endpoints: placement of TargetModels on instances, loading through the container's
// /models API, and eviction inside memory and disk budgets.
export { ModelHost, ModelLoadError, modelUrl } from './host.js';
export type { AcquireRequest, HostedModelView, InstanceModelsView, ModelHostOptions, ModelHostSettings, ModelLease, MultiModelSpec } from './host.js';
export { instanceMemoryBytes } from './budget.js';
