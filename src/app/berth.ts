// The composition root: builds every context from one frozen Config and joins them. It is the only
// place that knows all of them, and the only place that wires one context's events to another.
import { existsSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ArtifactCache } from '../artifacts/index.js';
import type { Config } from '../config/index.js';
import { ControlPlane, EndpointStates } from '../control/index.js';
import { Reconciler } from '../deploy/index.js';
import { ImageTable, ProcessFleet, processAlive } from '../fleet/index.js';
import type { ImageCommand } from '../fleet/index.js';
import { ModelHost } from '../multimodel/index.js';
import { Router } from '../router/index.js';
import { SqliteStore } from '../store/index.js';
import { Metrics, silentLogger } from '../telemetry/index.js';
import type { Logger } from '../telemetry/index.js';
import { createWireServer } from '../wire/index.js';

/**
 * Images berth brings itself: its own model server (src/container) with one runtime each, and its
 * Python container (python/) for users' inference.py on SageMaker's framework images. A user's
 * image table entry of the same name wins.
 */
const MODEL_SERVER = fileURLToPath(new URL('../container/main.js', import.meta.url));
// From dist/src/app to the repository's python/ folder.
const PYTHON_CONTAINER = fileURLToPath(new URL('../../../python/berth-python.py', import.meta.url));

function builtinImages(config: Config): Record<string, ImageCommand> {
  const python = (framework: string) => [
    config.python, PYTHON_CONTAINER, '--framework', framework, ...(config.pythonInstallRequirements ? ['--install-requirements'] : []),
  ];
  const xgboost = { command: [process.execPath, '--expose-gc', MODEL_SERVER, '--runtime', 'xgboost'], programCommand: python('xgboost') };
  return {
    'berth/onnx': { command: [process.execPath, '--expose-gc', MODEL_SERVER, '--runtime', 'onnx'] },
    'berth/node': { command: [process.execPath, '--expose-gc', MODEL_SERVER, '--runtime', 'node'] },
    'berth/xgboost': { command: [process.execPath, '--expose-gc', MODEL_SERVER, '--runtime', 'xgboost'] },
    // Any of the above, chosen per model folder (a multi-model endpoint can mix them).
    'berth/model-server': { command: [process.execPath, '--expose-gc', MODEL_SERVER, '--runtime', 'auto'] },
    'berth/python': { command: python('auto') },
    // SageMaker's XGBoost images in any region or account (the built-in algorithm's current
    // repository and the older `xgboost` one): algorithm mode on berth's evaluator, framework mode
    // (SAGEMAKER_PROGRAM set) on the Python container.
    'sagemaker-xgboost': xgboost,
    xgboost,
    // SageMaker's scikit-learn and PyTorch inference images (the Graviton build and the pre-1.2
    // `sagemaker-pytorch` repository too).
    'sagemaker-scikit-learn': { command: python('sklearn') },
    'pytorch-inference': { command: python('pytorch') },
    'pytorch-inference-graviton': { command: python('pytorch') },
    'sagemaker-pytorch': { command: python('pytorch') },
  };
}

export interface BerthOptions {
  readonly logger?: Logger;
  /** Environment every container inherits (PATH, HOME, …); berth's own BERTH_* settings are left out. */
  readonly containerEnv?: Readonly<Record<string, string | undefined>>;
}

export interface Berth {
  /** Base URL clients point AWS_ENDPOINT_URL at. */
  readonly url: string;
  readonly port: number;
  /** Which front serves plain invocations: the native one (built at install) or the Node one. */
  readonly front: 'native' | 'node';
  readonly config: Config;
  /** Resolves once every scheduled reconcile has finished (for tests and tools). */
  idle(): Promise<void>;
  /** Stops serving, stops every instance (SIGTERM, then SIGKILL after the grace), closes the store. */
  close(): Promise<void>;
}

export class DataDirInUse extends Error {
  override readonly name = 'DataDirInUse';
}

/** One berth per data dir: two writers would each reconcile the same endpoints. */
function lockDataDir(dataDir: string): () => void {
  mkdirSync(dataDir, { recursive: true });
  const file = join(dataDir, 'berth.pid');
  if (existsSync(file)) {
    const pid = Number(readFileSync(file, 'utf8'));
    if (Number.isInteger(pid) && pid !== process.pid && processAlive(pid)) {
      throw new DataDirInUse(`Another berth (pid ${pid}) is using the data dir ${dataDir}; stop it or choose another --data-dir.`);
    }
  }
  writeFileSync(file, String(process.pid));
  return () => rmSync(file, { force: true });
}

export async function startBerth(config: Config, options: BerthOptions = {}): Promise<Berth> {
  const logger = options.logger ?? silentLogger();
  const unlock = lockDataDir(config.dataDir);
  const containerEnv = Object.fromEntries(Object.entries(options.containerEnv ?? {}).filter(([k]) => !k.startsWith('BERTH_')));
  const store = new SqliteStore(join(config.dataDir, 'berth.db'));
  const fleet = await ProcessFleet.open({
    dataDir: config.dataDir,
    pingTimeoutMs: config.pingTimeoutMs,
    healthCheckIntervalMs: config.healthCheckIntervalMs,
    unhealthyThreshold: config.unhealthyThreshold,
    baseEnv: containerEnv,
    spinWaitMicros: config.spinWaitMicros,
    spinWaitBackoffMs: config.spinWaitBackoffMs,
  });
  const metrics = new Metrics();
  const artifacts = new ArtifactCache({
    dataDir: config.dataDir,
    s3: { endpoint: config.s3Endpoint, forcePathStyle: config.s3ForcePathStyle ?? false, region: config.region },
    httpsCa: config.httpsCaFile ? readFileSync(config.httpsCaFile, 'utf8') : undefined,
    maxDownloadBytes: config.artifactMaxDownloadBytes,
    maxUnpackedBytes: config.artifactMaxUnpackedBytes,
    maxEntries: config.artifactMaxFiles,
  });
  const models = new ModelHost({
    artifacts,
    metrics,
    logger: logger.child({ context: 'multimodel' }),
    settings: {
      memoryBudgetBytes: config.multiModelMemoryBudgetBytes,
      memoryFraction: config.multiModelMemoryFraction,
      diskBudgetBytes: config.multiModelDiskBudgetBytes,
      loadWaitMs: config.multiModelLoadWaitMs,
      loadTimeoutMs: config.multiModelLoadTimeoutMs,
      revalidateMs: config.multiModelRevalidateMs,
      replicaOutstanding: config.multiModelReplicaOutstanding,
    },
  });
  const router = new Router({
    metrics,
    models,
    accountId: config.accountId,
    invocationTimeoutMs: config.invocationTimeoutMs,
    maxResponseBytes: config.maxPayloadBytes,
  });
  const reconciler = new Reconciler({
    states: new EndpointStates(store),
    fleet,
    artifacts,
    images: new ImageTable({ ...builtinImages(config), ...config.images }),
    routes: router,
    logger: logger.child({ context: 'deploy' }),
    startupHealthCheckTimeoutMs: config.startupHealthCheckTimeoutMs,
    instanceStopGraceMs: config.instanceStopGraceMs,
  });
  const control = new ControlPlane({
    store,
    maxInstancesPerVariant: config.maxInstancesPerVariant,
    onEndpointChange: (name) => reconciler.notify(name),
  });
  const server = createWireServer({
    control,
    router,
    logs: (name, lines) => fleet.readLogs(name, lines),
    models: (name) => models.describe(name),
    metrics: () => metrics.render(),
    logger: logger.child({ context: 'wire' }),
    region: config.region,
    accountId: config.accountId,
    maxPayloadBytes: config.maxPayloadBytes,
    invocationTimeoutMs: config.invocationTimeoutMs,
    host: config.host,
    nativeFront: config.nativeFront,
  });
  await reconciler.start();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const host = config.host.includes(':') ? `[${config.host}]` : config.host;
  const url = `http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${port}`;
  logger.info({ url, dataDir: config.dataDir, region: config.region, accountId: config.accountId, front: server.front }, 'berth is listening');

  let closing: Promise<void> | undefined;
  return {
    url,
    port,
    config,
    front: server.front,
    idle: () => reconciler.idle(),
    close() {
      closing ??= (async () => {
        await new Promise<void>((resolve) => {
          // Also ends idle keep-alive connections; busy ones close after their answer.
          server.close(() => resolve());
        });
        await reconciler.close();
        await fleet.close();
        await store.close();
        unlock();
        logger.info('berth stopped');
      })();
      return closing;
    },
  };
}
