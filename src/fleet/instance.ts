// An instance: one running copy of a variant's container, with a documented lifecycle.
import type { Dispatcher } from 'undici';

/**
 * - `starting`: the process runs; /ping has not yet answered 200.
 * - `ready`: /ping answered 200; the router may send it traffic.
 * - `draining`: taken out of rotation; in-flight requests finish, no new ones arrive.
 * - `stopped`: stopped on purpose (scale-in, update, delete, shutdown). Final.
 * - `failed`: exited on its own or stopped answering /ping. Final: a sick instance is replaced, never reused.
 */
export type InstanceState = 'starting' | 'ready' | 'draining' | 'stopped' | 'failed';

export interface InstanceSpec {
  readonly endpointName: string;
  readonly variantName: string;
  /** Name of the container within the model (`primary` for a single container). */
  readonly containerName: string;
  /** argv of the container program; `serve` is appended, as `docker run IMAGE serve` does. */
  readonly command: readonly string[];
  /** The container's environment (model Environment and SageMaker's variables). */
  readonly env: Readonly<Record<string, string>>;
  /** Unpacked model artifact, shown to the container as its model dir; absent for none. */
  readonly modelDir?: string | undefined;
}

export interface InstanceExit {
  readonly code: number | null;
  readonly signal: string | null;
}

export interface InstanceEvents {
  /** The instance left service on its own (exit or failed health checks); the reason is for people. */
  failed: (reason: string) => void;
}

export interface Instance {
  readonly id: string;
  readonly spec: InstanceSpec;
  readonly state: InstanceState;
  /** Base URL of the container, e.g. http://127.0.0.1:41234. */
  readonly url: string;
  readonly pid: number | undefined;
  /** A keep-alive connection pool to the container. */
  readonly dispatcher: Dispatcher;
  /** Requests the router has sent and not yet seen answered. */
  outstanding: number;
  readonly exit: InstanceExit | undefined;
  /** Resolves when /ping answers 200; rejects with a reason a person can act on. */
  waitUntilHealthy(timeoutMs: number, signal?: AbortSignal): Promise<void>;
  /** The last lines the container wrote to stdout and stderr. */
  logTail(lines: number): string[];
  /** Out of rotation, then waits (up to `timeoutMs`) for in-flight requests to finish. */
  drain(timeoutMs: number): Promise<void>;
  /** SIGTERM to the process group, SIGKILL after `graceMs`; resolves when it has exited. */
  stop(graceMs: number): Promise<void>;
  on<E extends keyof InstanceEvents>(event: E, listener: InstanceEvents[E]): void;
  off<E extends keyof InstanceEvents>(event: E, listener: InstanceEvents[E]): void;
}

/** How instances come to exist: processes on this machine now, pods later. */
export interface FleetProvider {
  start(spec: InstanceSpec): Promise<Instance>;
  /** Stops every instance this provider started. */
  stopAll(graceMs: number): Promise<void>;
  /** Log lines of an endpoint's instances, oldest instance first, at most `lines` per instance. */
  readLogs(endpointName: string, lines: number): Promise<string>;
  close(): Promise<void>;
}
