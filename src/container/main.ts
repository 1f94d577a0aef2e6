// berth's model server: the program behind the built-in images berth/onnx and berth/node. It runs
// inside an instance like any other container (`… serve`, SAGEMAKER_BIND_TO_PORT, the model in
// SM_MODEL_DIR) and shares nothing with berth's server but that contract. This entry point is the
// container's composition root, so it alone reads its environment.
import type { Server } from 'node:http';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { AutoRuntime } from './auto.js';
import { HandlerRuntime } from './handlers.js';
import { OnnxRuntime, warmUpOnnxRuntime } from './onnx.js';
import { XgboostRuntime } from './xgboost/runtime.js';
import type { Runtime } from './runtime.js';
import { createContainerServer } from './server.js';

export const RUNTIMES = ['onnx', 'node', 'xgboost', 'auto'] as const;
export type RuntimeName = (typeof RUNTIMES)[number];

/* eslint-disable no-restricted-properties -- a container's configuration is its environment */
const env = process.env;

function modelDir(): string {
  return env['SM_MODEL_DIR'] ?? join(env['SAGEMAKER_BASE_DIR'] ?? '/opt/ml', 'model');
}

/** SageMaker sets SAGEMAKER_MULTI_MODEL=true on the containers of a multi-model endpoint. */
const multiModel = (env['SAGEMAKER_MULTI_MODEL'] ?? '').toLowerCase() === 'true';

function makeRuntime(name: RuntimeName): Runtime {
  if (name === 'auto') return new AutoRuntime((kind) => makeRuntime(kind));
  if (name === 'onnx') return new OnnxRuntime({ intraOpThreads: Number(env['BERTH_ONNX_INTRA_OP_THREADS'] ?? 1) || 1 });
  if (name === 'xgboost') {
    return new XgboostRuntime({
      ensemble: (env['SAGEMAKER_INFERENCE_ENSEMBLE'] ?? 'true').toLowerCase() !== 'false',
      // The MME handler takes its default from the inference toolkit (JSON), not the algorithm (CSV).
      defaultAccept: env['SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT'] ?? (multiModel ? 'application/json' : 'text/csv'),
      inferenceOutput: multiModel ? undefined : env['SAGEMAKER_INFERENCE_OUTPUT'],
      program: env['SAGEMAKER_PROGRAM'] || undefined,
      threads: Number(env['BERTH_XGBOOST_THREADS']) || availableParallelism(),
      multiModel,
    });
  }
  const program = env['BERTH_HANDLER'] ?? (/\.(m|c)?[jt]s$/.test(env['SAGEMAKER_PROGRAM'] ?? '') ? env['SAGEMAKER_PROGRAM'] : undefined);
  return new HandlerRuntime({ program, workDir: join(env['SAGEMAKER_BASE_DIR'] ?? process.cwd(), '.berth-handler') });
}
/* eslint-enable no-restricted-properties */

export async function main(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({ args: argv, options: { runtime: { type: 'string' } }, allowPositionals: true });
  if (positionals[0] !== 'serve') throw new Error(`usage: berth-model-server --runtime ${RUNTIMES.join('|')} serve`);
  const name = values.runtime as RuntimeName;
  if (!RUNTIMES.includes(name)) throw new Error(`--runtime must be one of ${RUNTIMES.join(', ')}`);
  // eslint-disable-next-line no-restricted-properties
  const port = Number(process.env['SAGEMAKER_BIND_TO_PORT'] ?? 8080);
  const stop = (server: Server) => () => {
    server.close(() => process.exit(0));
    server.closeIdleConnections();
    setTimeout(() => process.exit(0), 10_000).unref();
  };
  if (multiModel) {
    if (name === 'onnx' || name === 'auto') await warmUpOnnxRuntime();
    const { server } = createContainerServer({ newRuntime: () => makeRuntime(name), maxBodyBytes: 64 * 1024 * 1024 });
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
    console.log(`berth/${name}: multi-model container serving on port ${port}; models load through POST /models`);
    process.once('SIGTERM', stop(server));
    process.once('SIGINT', stop(server));
    return;
  }
  const runtime = makeRuntime(name);
  const container = createContainerServer({ runtime, maxBodyBytes: 64 * 1024 * 1024 });
  const server = container.server;
  // Listen first so /ping can say "not yet" (503) while a large model loads.
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  const dir = modelDir();
  const started = Date.now();
  try {
    await runtime.load(dir);
  } catch (err) {
    // Exiting (rather than failing /ping for minutes) puts the reason in FailureReason at once.
    console.error(`berth/${name}: cannot serve the model in ${dir}: ${(err as Error).message}`);
    process.exit(1);
  }
  container.markLoaded();
  console.log(`berth/${name}: model loaded from ${dir} in ${Date.now() - started} ms; serving on port ${port}`);
  process.once('SIGTERM', stop(server));
  process.once('SIGINT', stop(server));
}

main(process.argv.slice(2)).catch((err: unknown) => {
  console.error((err as Error).message);
  process.exit(2);
});
