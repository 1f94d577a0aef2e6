// An instance: one running copy of a variant's container(s), with a documented lifecycle. A model with
// several containers (an inference pipeline or a direct-invocation model) runs them all in one
// instance, each as its own process on its own port, and the instance lives and dies as one.
import type { ContainerClient } from './client.js';

/**
 * - `starting`: the processes run; not every container has answered /ping with 200 yet.
 * - `ready`: every container answered /ping with 200; the router may send it traffic.
 * - `draining`: taken out of rotation; in-flight requests finish, no new ones arrive.
 * - `stopped`: stopped on purpose (scale-in, update, delete, shutdown). Final.
 * - `failed`: a container exited on its own or stopped answering /ping. Final: a sick instance is
 *   replaced whole, never reused (one bad container affects the others, so none is kept).
 */
export type InstanceState = 'starting' | 'ready' | 'draining' | 'stopped' | 'failed';

export interface ContainerSpec {
  /** The container's hostname: `primary` for a single container, else ContainerHostname. */
  readonly name: string;
  /** argv of the container program; `serve` is appended, as `docker run IMAGE serve` does. */
  readonly command: readonly string[];
  /** The container's environment (model Environment and SageMaker's variables). */
  readonly env: Readonly<Record<string, string>>;
  /** Unpacked model artifact, shown to the container as its model dir; absent for none. */
  readonly modelDir?: string | undefined;
}

export interface InstanceSpec {
  readonly endpointName: string;
  readonly variantName: string;
  /** One or more containers, in pipeline order. */
  readonly containers: readonly ContainerSpec[];
}

export interface InstanceExit {
  readonly code: number | null;
  readonly signal: string | null;
}

export interface InstanceEvents {
  /** The instance left service on its own (exit or failed health checks); the reason is for people. */
  failed: (reason: string) => void;
  /** The instance's state changed (to `ready`, `draining`, …): routes that copy it must follow. */
  state: (state: InstanceState) => void;
}

/** One container of a running instance, as the router reaches it. */
export interface ContainerHandle {
  readonly name: string;
  readonly pid: number | undefined;
  /** Keep-alive connections to the container. */
  readonly client: ContainerClient;
}

export interface Instance {
  readonly id: string;
  readonly spec: InstanceSpec;
  readonly state: InstanceState;
  /** The containers in pipeline order (one for a single-container model). */
  readonly containers: readonly ContainerHandle[];
  /** Requests the router has sent and not yet seen answered. */
  outstanding: number;
  /** Resolves when every container's /ping answers 200; rejects with a reason a person can act on. */
  waitUntilHealthy(timeoutMs: number, signal?: AbortSignal): Promise<void>;
  /** The last lines the containers wrote to stdout and stderr (prefixed by container for several). */
  logTail(lines: number): string[];
  /** Out of rotation, then waits (up to `timeoutMs`) for in-flight requests to finish. */
  drain(timeoutMs: number): Promise<void>;
  /**
   * Requests sent to the instance by another path than the router's (the native invocation front):
   * drain waits for them too.
   */
  countInFlight(source: () => number): void;
  /** SIGTERM to every container's process group, SIGKILL after `graceMs`; resolves when all have exited. */
  stop(graceMs: number): Promise<void>;
  on<E extends keyof InstanceEvents>(event: E, listener: InstanceEvents[E]): void;
  off<E extends keyof InstanceEvents>(event: E, listener: InstanceEvents[E]): void;
}

/** How instances come to exist: processes on this machine now, pods later. */
export interface FleetProvider {
  start(spec: InstanceSpec): Promise<Instance>;
  /** Stops every instance this provider started. */
  stopAll(graceMs: number): Promise<void>;
  /** Log lines of an endpoint's instances, oldest instance first, at most `lines` per container. */
  readLogs(endpointName: string, lines: number): Promise<string>;
  close(): Promise<void>;
}
