// bench/deploy: CreateEndpoint → InService, median of several runs, for two containers against the
// floor of each measured in the same run: starting the same container's process directly and waiting
// for its first 200 from /ping (what any deployment must pay).
//   - berth/onnx with the iris model: berth's own model server, in milliseconds. Target: InService in
//     under one second.
//   - berth's Python container with the scikit-learn model of bench/python (SageMaker's scikit-learn
//     image, code/inference.py with model_fn only): a container whose start is dominated by its own
//     imports, so what berth adds is its overhead alone (how soon it sees the first healthy /ping).
//     Its floor is measured twice: as it starts (the master imports scikit-learn before forking the
//     workers) and with BERTH_PRELOAD_FRAMEWORK=false (each worker imports it), what that import saves.
//     Then the same container in multi-model mode, started directly, both ways: its first model load.
//     Last, the container alone at 2 and 4 workers, scikit-learn and PyTorch, both ways: its start and
//     its workers' private memory just after.
//
// Usage: npm run bench:deploy [-- --runs 9]
import { execFileSync, spawn } from 'node:child_process';
import { cpSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  CreateEndpointCommand, CreateEndpointConfigCommand, CreateModelCommand, DeleteEndpointCommand, DescribeEndpointCommand, SageMakerClient,
  waitUntilEndpointDeleted,
} from '@aws-sdk/client-sagemaker';
import { ensurePythonModules, freePort, median, ROOT, startBerth, table, tempDir, waitForHttp } from './lib.js';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '9' } } });
const runs = Number(values.runs);

/** A container to deploy: how berth is told to run it, and how to start the same process directly. */
interface Case {
  /** Names the model, the config and the endpoints. */
  readonly key: string;
  readonly name: string;
  readonly image: string;
  /** The unpacked model folder; berth gets it as a tarball. */
  readonly modelDir: string;
  readonly command: string;
  readonly args: readonly string[];
  /** A second floor: the same process started with this environment added, what it costs or saves. */
  readonly variant?: { readonly label: string; readonly env: Readonly<Record<string, string>> } | undefined;
}

/** The floor: spawn the container's process with the contract's environment, poll /ping until 200. */
async function direct(c: Case, env: Readonly<Record<string, string>> = {}): Promise<number> {
  return (await startAlone(c, env)).ms;
}

/**
 * Starts the container's process directly and times it to its first /ping 200; then reads the
 * private memory (smaps_rollup) of each of its child processes, the Python container's workers.
 */
async function startAlone(c: Case, env: Readonly<Record<string, string>>): Promise<{ ms: number; privateMbPerWorker: number }> {
  const port = await freePort();
  const start = performance.now();
  const child = spawn(c.command, c.args, { env: { ...process.env, ...env, SAGEMAKER_BIND_TO_PORT: String(port), SM_MODEL_DIR: c.modelDir }, stdio: 'ignore', detached: true });
  try {
    for (;;) {
      const ok = await fetch(`http://127.0.0.1:${port}/ping`).then((r) => r.status === 200, () => false);
      if (ok) break;
      await sleep(2);
    }
    const ms = performance.now() - start;
    const workers = readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);
    const privateKb = workers.map((pid) => [...readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8').matchAll(/^Private_(?:Clean|Dirty):\s+(\d+) kB/gm)]
      .reduce((sum, m) => sum + Number(m[1]), 0));
    return { ms, privateMbPerWorker: privateKb.length ? median(privateKb) / 1024 : NaN };
  } finally {
    process.kill(-(child.pid as number), 'SIGKILL'); // the Python container's workers too
  }
}

function onnxCase(dir: string): Case {
  const modelDir = join(dir, 'onnx');
  mkdirSync(modelDir, { recursive: true });
  cpSync(join(ROOT, 'test', 'fixtures', 'models', 'iris-v1.onnx'), join(modelDir, 'model.onnx'));
  return { key: 'onnx', name: 'berth/onnx, iris-v1.onnx', image: 'berth/onnx', modelDir, command: process.execPath, args: [join(ROOT, 'dist', 'src', 'container', 'main.js'), '--runtime', 'onnx', 'serve'] };
}

function pythonCase(dir: string): Case {
  ensurePythonModules(['sklearn', 'joblib'], ['scikit-learn', 'joblib']);
  const fixtures = join(ROOT, 'test', 'fixtures', 'python');
  const modelDir = join(dir, 'python');
  mkdirSync(modelDir, { recursive: true });
  cpSync(join(fixtures, 'models', 'diabetes-ridge.joblib'), join(modelDir, 'diabetes-ridge.joblib'));
  cpSync(join(fixtures, 'handlers', 'sklearn-defaults', 'code'), join(modelDir, 'code'), { recursive: true });
  return {
    key: 'python', name: 'Python container, scikit-learn Ridge', image: '683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3', modelDir,
    command: 'python3', args: [join(ROOT, 'python', 'berth-python.py'), '--framework', 'sklearn', 'serve'],
    variant: { label: 'BERTH_PRELOAD_FRAMEWORK=false', env: { BERTH_PRELOAD_FRAMEWORK: 'false' } },
  };
}

interface Result {
  readonly container: Case;
  /** CreateEndpoint → InService, ms, one per run. */
  readonly berth: number[];
  /** Spawn → first /ping 200, ms, one per run. */
  readonly floor: number[];
  /** The same with the case's variant environment, when it has one. */
  readonly variantFloor: number[];
}

function pytorchCase(dir: string): Case {
  ensurePythonModules(['torch'], ['torch']);
  const modelDir = join(dir, 'pytorch');
  mkdirSync(modelDir, { recursive: true });
  cpSync(join(ROOT, 'test', 'fixtures', 'python', 'models', 'iris-mlp.pt'), join(modelDir, 'model.pt'));
  return {
    key: 'pytorch', name: 'Python container, PyTorch TorchScript', image: '763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-inference:2.1-cpu-py310', modelDir,
    command: 'python3', args: [join(ROOT, 'python', 'berth-python.py'), '--framework', 'pytorch', 'serve'],
  };
}

/** CreateEndpoint → InService `runs` times, each followed by a direct start of the same process. */
async function measure(sm: SageMakerClient, dir: string, c: Case): Promise<Result> {
  const { key } = c;
  const tarball = join(dir, `${key}.tar.gz`);
  execFileSync('tar', ['-czf', tarball, '-C', c.modelDir, '.']);
  await sm.send(new CreateModelCommand({ ModelName: key, PrimaryContainer: { Image: c.image, ModelDataUrl: `file://${tarball}` } }));
  await sm.send(new CreateEndpointConfigCommand({ EndpointConfigName: key, ProductionVariants: [{ VariantName: 'AllTraffic', ModelName: key, InstanceType: 'ml.c5.large', InitialInstanceCount: 1 }] }));
  const berth: number[] = [];
  const floor: number[] = [];
  const variantFloor: number[] = [];
  for (let i = 0; i < runs; i++) {
    const name = `${key}-${i}`;
    const start = performance.now();
    await sm.send(new CreateEndpointCommand({ EndpointName: name, EndpointConfigName: key }));
    for (;;) {
      const d = await sm.send(new DescribeEndpointCommand({ EndpointName: name }));
      if (d.EndpointStatus === 'InService') break;
      if (d.EndpointStatus === 'Failed') throw new Error(d.FailureReason);
      await sleep(5);
    }
    berth.push(performance.now() - start);
    await sm.send(new DeleteEndpointCommand({ EndpointName: name }));
    await waitUntilEndpointDeleted({ client: sm, maxWaitTime: 60, minDelay: 1, maxDelay: 1 }, { EndpointName: name });
    floor.push(await direct(c));
    if (c.variant) variantFloor.push(await direct(c, c.variant.env));
  }
  return { container: c, berth, floor, variantFloor };
}

/**
 * The Python container in multi-model mode, started directly: the time of its first model load
 * (POST /models) 2 s after /ping first answered, by when the framework imported as it starts
 * (unless `env` turns that off) is in place.
 */
async function firstMultiModelLoad(c: Case, env: Readonly<Record<string, string>>): Promise<number> {
  const port = await freePort();
  const child = spawn(c.command, c.args, {
    env: { ...process.env, ...env, SAGEMAKER_BIND_TO_PORT: String(port), SAGEMAKER_MULTI_MODEL: 'true', SAGEMAKER_BASE_DIR: tempDir() },
    stdio: 'ignore', detached: true,
  });
  try {
    await waitForHttp(`http://127.0.0.1:${port}/ping`);
    await sleep(2000);
    const start = performance.now();
    const res = await fetch(`http://127.0.0.1:${port}/models`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model_name: 'm', url: c.modelDir }) });
    if (res.status !== 200) throw new Error(`POST /models answered ${res.status}: ${await res.text()}`);
    return performance.now() - start;
  } finally {
    process.kill(-(child.pid as number), 'SIGKILL');
  }
}

async function main(): Promise<void> {
  const dir = tempDir();
  const [onnx, python] = [onnxCase(dir), pythonCase(dir)];
  const { url } = await startBerth(join(dir, 'data'));
  const sm = new SageMakerClient({ endpoint: url, region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'x' } });
  const results = [await measure(sm, dir, onnx), await measure(sm, dir, python)];
  sm.destroy();
  console.log(`\nbench/deploy: CreateEndpoint → InService (1 instance), ${runs} runs per container\n`);
  table(['container', 'measure', 'median ms', 'min ms', 'max ms'], results.flatMap((r) => [
    [r.container.name, 'berth: CreateEndpoint → DescribeEndpoint says InService', median(r.berth), Math.min(...r.berth), Math.max(...r.berth)],
    [r.container.name, 'floor: spawn the container → first /ping 200', median(r.floor), Math.min(...r.floor), Math.max(...r.floor)],
    ...(r.container.variant ? [[r.container.name, `floor, ${r.container.variant.label}`, median(r.variantFloor), Math.min(...r.variantFloor), Math.max(...r.variantFloor)]] : []),
  ]));
  console.log('');
  const onnxMedian = median((results[0] as Result).berth);
  table(['measure', 'value', 'target', 'met'], [
    ['berth/onnx InService median (ms)', onnxMedian, '< 1000', onnxMedian < 1000 ? 'yes' : 'no'],
    ...results.map((r): (string | number)[] => [`${r.container.name}: berth / floor`, median(r.berth) / median(r.floor), '', '']),
    ...results.map((r): (string | number)[] => [`${r.container.name}: berth − floor (ms)`, median(r.berth) - median(r.floor), '', '']),
    ...results.flatMap((r): (string | number)[][] => (r.container.variant ? [[`${r.container.name}: floor / floor with ${r.container.variant.label}`, median(r.floor) / median(r.variantFloor), '', '']] : [])),
  ]);

  // Multi-model mode: what the framework imported as the container starts saves the first load.
  const on: number[] = [];
  const off: number[] = [];
  for (let i = 0; i < Math.min(runs, 5); i++) {
    on.push(await firstMultiModelLoad(python, {}));
    off.push(await firstMultiModelLoad(python, { BERTH_PRELOAD_FRAMEWORK: 'false' }));
  }
  console.log(`\n${python.name} in multi-model mode, started directly: its first POST /models, 2 s after /ping first answered, ${on.length} runs each\n`);
  table(['measure', 'median ms', 'min ms', 'max ms'], [
    ['first load', median(on), Math.min(...on), Math.max(...on)],
    ['first load, BERTH_PRELOAD_FRAMEWORK=false', median(off), Math.min(...off), Math.max(...off)],
    ['ratio', median(on) / median(off), '', ''],
  ]);

  // The container alone, its start and its workers' private memory, with the framework imported by
  // the master before the fork and without, at 2 and 4 workers.
  const startRuns = Math.min(runs, 3);
  const rows: (string | number)[][] = [];
  for (const c of [python, pytorchCase(dir)]) {
    for (const workers of ['2', '4']) {
      const withImport: { ms: number; privateMbPerWorker: number }[] = [];
      const without: { ms: number; privateMbPerWorker: number }[] = [];
      for (let i = 0; i < startRuns; i++) {
        withImport.push(await startAlone(c, { SAGEMAKER_MODEL_SERVER_WORKERS: workers }));
        without.push(await startAlone(c, { SAGEMAKER_MODEL_SERVER_WORKERS: workers, BERTH_PRELOAD_FRAMEWORK: 'false' }));
      }
      const [a, b] = [median(withImport.map((r) => r.ms)), median(without.map((r) => r.ms))];
      rows.push([c.name, workers, a, b, a / b, median(withImport.map((r) => r.privateMbPerWorker)), median(without.map((r) => r.privateMbPerWorker))]);
    }
  }
  console.log(`\nThe Python container alone: spawn → first /ping 200, the framework imported by the master before the fork or not (BERTH_PRELOAD_FRAMEWORK=false), ${startRuns} runs each (medians)\n`);
  table(['container', 'workers', 'ms with', 'ms without', 'ratio', 'private MB per worker with', 'without'], rows);
}

main().then(() => process.exit(0), (err: unknown) => {
  console.error(err);
  process.exit(1);
});
