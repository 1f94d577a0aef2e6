// berth's settings: one table of defaults, one schema that rejects unknown keys, units in the names.
import { z } from 'zod';

const imageEntry = z.strictObject({
  /** argv of the program that honours SageMaker's container contract; berth appends `serve`. */
  command: z.array(z.string().min(1)).min(1),
  /** Extra environment for the program (the model's Environment wins on conflict). */
  env: z.record(z.string(), z.string()).optional(),
});

export const configSchema = z.strictObject({
  /** TCP port of the API (control plane, runtime and berth's own routes share it, as SageMaker's clients allow). */
  port: z.number().int().min(0).max(65535),
  /** Address to bind; loopback by default so a laptop does not expose its models. */
  host: z.string().min(1),
  /** Where state lives: the SQLite database, unpacked artifacts, instance folders and logs. */
  dataDir: z.string().min(1),
  /** Region stamped into ARNs when a request's SigV4 scope names none. */
  region: z.string().regex(/^[a-z]{2}(-[a-z]+)+-\d+$/, 'a region such as us-east-1'),
  /** Account id stamped into ARNs (SageMaker derives it from credentials; berth has one account). */
  accountId: z.string().regex(/^\d{12}$/, 'twelve digits'),
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']),
  /** Image table: a repository name (any tag), `repository:tag`, or a full image URI → a local command. */
  images: z.record(z.string().min(1), imageEntry),
  /** Invocation limits (wire-protocol.md §2.1, container-contracts.md §1.8). */
  maxPayloadBytes: z.number().int().min(1),
  invocationTimeoutMs: z.number().int().min(1),
  /**
   * While invocations come one at a time, the gateway polls for up to this long instead of sleeping,
   * once for a call's answer and once, after it, for the next request (a sleeping CPU costs a
   * wake-up, tens of microseconds on virtual machines). Never with two or more calls in flight.
   * 0 turns it off.
   */
  spinWaitMicros: z.number().int().min(0).max(100_000),
  /**
   * How long the gateway stops polling after it found itself off the CPU mid-wait (a contended
   * machine, where a poller waits whole time slices for the CPU back). 0: never stops.
   */
  spinWaitBackoffMs: z.number().int().min(0).max(3_600_000),
  /**
   * Serve plain invocations from the native front (src/wire/native/front.c) when it was built at
   * install and the host is an IPv4 address; false: the Node front serves them.
   */
  nativeFront: z.boolean(),
  /** Health checking of instances (container-contracts.md §1.4). */
  pingTimeoutMs: z.number().int().min(1),
  healthCheckIntervalMs: z.number().int().min(10),
  unhealthyThreshold: z.number().int().min(1),
  /** Used when a variant sets no ContainerStartupHealthCheckTimeoutInSeconds. */
  startupHealthCheckTimeoutMs: z.number().int().min(1),
  /** SIGTERM → SIGKILL grace when an instance stops, as SageMaker gives containers. */
  instanceStopGraceMs: z.number().int().min(0),
  /** Upper bound on instances per variant on this machine. */
  maxInstancesPerVariant: z.number().int().min(1),
  /** An S3-compatible endpoint for s3:// model data; from AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL when unset. */
  s3Endpoint: z.url().optional(),
  /** Path-style bucket addressing, which most S3-compatible stores need; on by default with s3Endpoint. */
  s3ForcePathStyle: z.boolean().optional(),
  /** A PEM file of extra certificate authorities for https:// model data. */
  httpsCaFile: z.string().min(1).optional(),
  /** Limits on one artifact, against runaway downloads and decompression bombs. */
  artifactMaxDownloadBytes: z.number().int().min(1),
  artifactMaxUnpackedBytes: z.number().int().min(1),
  artifactMaxFiles: z.number().int().min(1),
  /**
   * Multi-model endpoints (container-contracts.md §3). Memory each instance may fill with loaded
   * models; unset, it is multiModelMemoryFraction of the instance type's memory.
   */
  multiModelMemoryBudgetBytes: z.number().int().min(1).optional(),
  multiModelMemoryFraction: z.number().gt(0).max(1),
  /** Unpacked models kept on disk per variant; least recently used ones not loaded anywhere go first. */
  multiModelDiskBudgetBytes: z.number().int().min(1),
  /** How long a first call waits for its model before ModelNotReadyException (loading goes on). */
  multiModelLoadWaitMs: z.number().int().min(0),
  /** How long downloading and loading one model may take in all (SageMaker: 360 s). */
  multiModelLoadTimeoutMs: z.number().int().min(1),
  /** A model's ETag is checked again when its last check is older than this; 0 checks on every call. */
  multiModelRevalidateMs: z.number().int().min(0),
  /** In-flight requests per loaded copy above which a model is loaded on one more instance. */
  multiModelReplicaOutstanding: z.number().int().min(1),
  /** The Python interpreter of berth's Python container (berth/python and SageMaker's framework images). */
  python: z.string().min(1),
  /**
   * pip-install a model's code/requirements.txt before it loads. Off: that runs the artifact's
   * packages' code with network access on this machine, and ties every start to an index.
   */
  pythonInstallRequirements: z.boolean(),
});

export type Config = Readonly<z.infer<typeof configSchema>>;

export const DEFAULTS: Omit<z.infer<typeof configSchema>, 'images' | 's3Endpoint' | 's3ForcePathStyle' | 'httpsCaFile' | 'multiModelMemoryBudgetBytes'> & { images: Record<string, never> } = {
  port: 8080,
  host: '127.0.0.1',
  dataDir: '.berth',
  region: 'us-east-1',
  accountId: '123456789012',
  logLevel: 'info',
  images: {},
  maxPayloadBytes: 6_291_456,
  invocationTimeoutMs: 60_000,
  spinWaitMicros: 1_000,
  spinWaitBackoffMs: 1_000,
  nativeFront: true,
  pingTimeoutMs: 2_000,
  healthCheckIntervalMs: 5_000,
  unhealthyThreshold: 3,
  startupHealthCheckTimeoutMs: 240_000,
  instanceStopGraceMs: 30_000,
  maxInstancesPerVariant: 16,
  artifactMaxDownloadBytes: 50 * 2 ** 30,
  artifactMaxUnpackedBytes: 100 * 2 ** 30,
  artifactMaxFiles: 100_000,
  multiModelMemoryFraction: 0.8,
  multiModelDiskBudgetBytes: 30 * 2 ** 30,
  multiModelLoadWaitMs: 60_000,
  multiModelLoadTimeoutMs: 360_000,
  multiModelRevalidateMs: 1_000,
  multiModelReplicaOutstanding: 4,
  python: 'python3',
  pythonInstallRequirements: false,
};
