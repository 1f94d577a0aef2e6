// The data plane: variant and instance choice, forwarding, and SageMaker's invocation errors.
export { Router } from './router.js';
export type { RouterOptions, EndpointRoute, VariantRoute, InvocationRequest, InvocationResponse, DeliveredOutcome } from './router.js';
