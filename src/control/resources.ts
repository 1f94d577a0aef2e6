// What berth stores for each resource. The API writes what the user asked for (`desired`); only the
// reconciler writes what is true (`observed`, and the terminal statuses).
import type {
  CreateEndpointConfigInput, CreateModelInput, DeploymentConfig, PendingDeploymentSummary, ProductionVariantSummary,
} from './shapes.generated.js';

/** CreateModel's input as validated, without Tags (they live beside the record). */
export type ModelDoc = Omit<CreateModelInput, 'Tags'>;

/** CreateEndpointConfig's input as validated, without Tags, with defaults filled in. */
export type EndpointConfigDoc = Omit<CreateEndpointConfigInput, 'Tags'>;

/**
 * The lifecycle of an endpoint (SageMaker's EndpointStatus, wire-protocol.md §3.2). berth uses:
 * - `Creating`: CreateEndpoint accepted; the first fleet is starting.
 * - `InService`: every variant's desired instances answered /ping; traffic is served.
 * - `Updating`: UpdateEndpoint or UpdateEndpointWeightsAndCapacities accepted; the old fleet keeps serving.
 * - `RollingBack`: a new fleet failed and traffic is being returned to the old one.
 * - `Deleting`: DeleteEndpoint accepted; instances are draining and stopping.
 * - `Failed`: the first fleet could not start; `FailureReason` says why. Only DeleteEndpoint applies.
 * The remaining members (`OutOfService`, `SystemUpdating`, `UpdateRollbackFailed`) are SageMaker's and
 * accepted in filters; berth does not enter them.
 */
export type EndpointStatus =
  | 'OutOfService' | 'Creating' | 'Updating' | 'SystemUpdating' | 'RollingBack'
  | 'InService' | 'Deleting' | 'Failed' | 'UpdateRollbackFailed';

/** Statuses in which another mutating call is refused with "Cannot update in-progress endpoint". */
export const IN_PROGRESS: ReadonlySet<string> = new Set(['Creating', 'Updating', 'SystemUpdating', 'RollingBack', 'Deleting']);

/**
 * Everything needed to run an endpoint's fleet, copied when CreateEndpoint or UpdateEndpoint is
 * accepted. SageMaker lets users delete the config and models of a running endpoint; the copy is what
 * keeps it (and its restart after a crash of berth) working.
 */
export interface DeploymentSpec {
  readonly endpointConfigName: string;
  readonly endpointConfig: EndpointConfigDoc;
  /** Keyed by model name as the variants spell it. */
  readonly models: Readonly<Record<string, ModelDoc>>;
}

/** The weight and instance count a variant should have. */
export interface VariantTarget {
  readonly VariantName: string;
  readonly weight: number;
  readonly instanceCount: number;
}

export interface DesiredState {
  /** Increments with every accepted change; the reconciler settles one generation at a time. */
  readonly generation: number;
  /**
   * Increments only when CreateEndpoint or UpdateEndpoint brings a new spec: a new spec means a new
   * (blue/green) fleet even when the config is the same, while weight and capacity changes do not.
   */
  readonly specVersion: number;
  readonly spec: DeploymentSpec;
  readonly variants: readonly VariantTarget[];
  readonly deploymentConfig?: DeploymentConfig | undefined;
  readonly requestedAt: number;
}

export interface ObservedState {
  /** The desired generation the endpoint last settled on (0 before the first). */
  readonly generation: number;
  /** What serves traffic now: restarts bring this back, failed updates return to it. */
  readonly serving?: { readonly specVersion: number; readonly spec: DeploymentSpec; readonly variants: readonly VariantTarget[] } | undefined;
  readonly variants?: readonly ProductionVariantSummary[] | undefined;
  readonly pending?: PendingDeploymentSummary | undefined;
  readonly failureReason?: string | undefined;
  readonly lastDeploymentConfig?: DeploymentConfig | undefined;
}

export interface EndpointDoc {
  readonly EndpointName: string;
  readonly desired: DesiredState;
  readonly observed: ObservedState;
}
