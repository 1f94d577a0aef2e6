// berth's Python container as a process on its own, spoken to over HTTP as SageMaker's platform
// would: the multi-model container API with Multi Model Server's status codes, worker processes,
// SAGEMAKER_MODEL_SERVER_TIMEOUT, SAGEMAKER_MAX_PAYLOAD_IN_MB and a clean exit on SIGTERM.
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { cpSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { ROOT, tempDir, waitFor } from './helpers.js';

const DIR = join(ROOT, 'test', 'fixtures', 'python');
const ENTRY = join(ROOT, 'python', 'berth-python.py');
const expected = JSON.parse(readFileSync(join(DIR, 'expected.json'), 'utf8')) as {
  iris_rows: number[][]; diabetes_rows: number[][]; iris_logreg_probabilities: number[][]; diabetes_ridge: number[];
};

function freePort(): Promise<number> {
  return new Promise((res) => {
    const srv = createServer().listen(0, '127.0.0.1', () => {
      const p = (srv.address() as { port: number }).port;
      srv.close(() => res(p));
    });
  });
}

interface Container {
  readonly url: string;
  readonly exited: Promise<number | null>;
  readonly output: () => string;
  readonly kill: (signal: NodeJS.Signals) => void;
}

/** Starts the container as berth's fleet would (`… serve`, SAGEMAKER_BIND_TO_PORT) and waits for /ping. */
async function startContainer(t: TestContext, env: Record<string, string>, framework = 'sklearn'): Promise<Container> {
  const port = await freePort();
  const child = spawn('python3', [ENTRY, '--framework', framework, 'serve'], {
    env: { PATH: process.env['PATH'], HOME: process.env['HOME'], SAGEMAKER_BIND_TO_PORT: String(port), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (c: Buffer) => { output += c.toString(); });
  child.stderr.on('data', (c: Buffer) => { output += c.toString(); });
  const exited = new Promise<number | null>((res) => child.once('exit', (code) => res(code)));
  t.after(() => { if (child.exitCode === null) child.kill('SIGKILL'); });
  const url = `http://127.0.0.1:${port}`;
  await waitFor(async () => {
    if (child.exitCode !== null) throw new Error(`the container exited with ${child.exitCode}: ${output}`);
    const r = await fetch(`${url}/ping`).catch(() => undefined);
    return r?.status === 200 ? true : undefined;
  }, 30_000, `the container's /ping (${output.slice(-400)})`);
  return { url, exited, output: () => output, kill: (s) => child.kill(s) };
}

async function call(url: string, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<{ status: number; json: unknown; text: string }> {
  const res = await fetch(`${url}${path}`, {
    method,
    headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, json, text };
}

/** A model folder as SageMaker unpacks one for the container: `<dir>/<name>/model/{files, code/}`. */
function modelFolder(dir: string, name: string, handler: string, files: Record<string, string> = {}): string {
  const folder = join(dir, name, 'model');
  mkdirSync(folder, { recursive: true });
  cpSync(join(DIR, 'handlers', handler, 'code'), join(folder, 'code'), { recursive: true });
  for (const [to, from] of Object.entries(files)) cpSync(from, join(folder, to));
  return folder;
}

function close(actual: number[], wanted: number[], tolerance = 1e-6): void {
  assert.equal(actual.length, wanted.length);
  actual.forEach((v, i) => assert.ok(Math.abs(v - (wanted[i] as number)) <= tolerance * Math.max(1, Math.abs(wanted[i] as number)), `[${i}] ${v} vs ${wanted[i]}`));
}

test('multi-model mode: load, list, describe, invoke and unload, with the status codes of the multi-model contract', async (t) => {
  const dir = tempDir(t);
  const iris = modelFolder(dir, 'iris', 'sklearn-handlers', { 'iris-logreg.joblib': join(DIR, 'models', 'iris-logreg.joblib') });
  const ridge = modelFolder(dir, 'ridge', 'sklearn-defaults', { 'diabetes-ridge.joblib': join(DIR, 'models', 'diabetes-ridge.joblib') });
  const raises = modelFolder(dir, 'raises', 'model-fn-raises');
  const oom = modelFolder(dir, 'oom', 'memory-error');
  // /ping is healthy at once: there is no model to wait for.
  const c = await startContainer(t, { SAGEMAKER_MULTI_MODEL: 'true', SAGEMAKER_BASE_DIR: dir });

  assert.deepEqual((await call(c.url, 'GET', '/models')).json, { models: [] });
  // The image's framework is imported as the container starts, under the loads' lock: the probe's
  // model_fn, which imports none itself, finds scikit-learn there already.
  const probe = modelFolder(dir, 'probe', 'probe');
  assert.equal((await call(c.url, 'POST', '/models', { model_name: 'probe', url: probe })).status, 200);
  assert.deepEqual(((await call(c.url, 'POST', '/models/probe/invoke', {})).json as { frameworks: string[] }).frameworks, ['sklearn']);
  assert.equal((await call(c.url, 'DELETE', '/models/probe')).status, 200);
  assert.deepEqual(await call(c.url, 'POST', '/models', { model_name: 'iris', url: iris }), { status: 200, json: { status: 'Model "iris" registered' }, text: '{"status": "Model \\"iris\\" registered"}' });
  const again = await call(c.url, 'POST', '/models', { model_name: 'iris', url: iris });
  assert.equal(again.status, 409);
  assert.deepEqual(again.json, { code: 409, type: 'ConflictStatusException', message: 'Model iris is already registered.' });
  assert.equal((await call(c.url, 'POST', '/models', { model_name: 'ridge', url: ridge })).status, 200);

  const page1 = await call(c.url, 'GET', '/models?limit=1');
  assert.deepEqual(page1.json, { models: [{ modelName: 'iris', modelUrl: iris }], nextPageToken: '1' });
  assert.deepEqual((await call(c.url, 'GET', '/models?limit=1&next_page_token=1')).json, { models: [{ modelName: 'ridge', modelUrl: ridge }] });
  assert.deepEqual(await call(c.url, 'GET', '/models/ridge').then((r) => [r.status, r.json]), [200, { modelName: 'ridge', modelUrl: ridge }]);

  // Each model has its own handler module, with the header SageMaker forwards for logging.
  const target = { 'x-amzn-sagemaker-target-model': 'iris.tar.gz' };
  const a = await call(c.url, 'POST', '/models/iris/invoke', { rows: expected.iris_rows }, target);
  assert.equal(a.status, 200, a.text);
  close((a.json as { probabilities: number[][] }).probabilities.flat(), expected.iris_logreg_probabilities.flat(), 1e-9);
  const b = await call(c.url, 'POST', '/models/ridge/invoke', expected.diabetes_rows);
  close(b.json as number[], expected.diabetes_ridge);
  const handlerError = await call(c.url, 'POST', '/models/iris/invoke', { features: [] });
  assert.equal(handlerError.status, 422);

  const missing = await call(c.url, 'POST', '/models', { model_name: 'gone', url: join(dir, 'nowhere') });
  assert.deepEqual([missing.status, missing.json], [404, { code: 404, type: 'ModelNotFoundException', message: `Model not found at url: ${join(dir, 'nowhere')}` }]);
  const failed = await call(c.url, 'POST', '/models', { model_name: 'raises', url: raises });
  assert.equal(failed.status, 500);
  assert.deepEqual(Object.keys(failed.json as object).sort(), ['code', 'message', 'type']);
  assert.match((failed.json as { message: string }).message, /^Failed to load model raises: FileNotFoundError: \[Errno 2\] No such file or directory: '.*weights\.bin'$/);
  assert.equal((await call(c.url, 'GET', '/models/raises')).status, 404, 'a model whose model_fn raised is not loaded');
  const memory = await call(c.url, 'POST', '/models', { model_name: 'oom', url: oom });
  assert.deepEqual([memory.status, (memory.json as { type: string }).type], [507, 'InsufficientMemoryException']);
  assert.equal((await call(c.url, 'POST', '/models', { url: iris })).status, 400);

  assert.deepEqual(await call(c.url, 'DELETE', '/models/iris').then((r) => [r.status, r.json]), [200, { status: 'Model "iris" unregistered' }]);
  for (const [method, path] of [['POST', '/models/iris/invoke'], ['GET', '/models/iris'], ['DELETE', '/models/iris']] as const) {
    const r = await call(c.url, method, path, method === 'POST' ? { rows: [[1, 2, 3, 4]] } : undefined);
    assert.deepEqual([r.status, r.json], [404, { code: 404, type: 'ModelNotFoundException', message: 'Model not found: iris' }], `${method} ${path}`);
  }
  assert.deepEqual((await call(c.url, 'GET', '/models')).json, { models: [{ modelName: 'ridge', modelUrl: ridge }] });
  // Unloaded models load again, with their module imported afresh.
  assert.equal((await call(c.url, 'POST', '/models', { model_name: 'iris', url: iris })).status, 200);
  assert.equal((await call(c.url, 'POST', '/models/iris/invoke', { rows: expected.iris_rows })).status, 200);
  assert.match(c.output(), /model raises failed to load:\nTraceback \(most recent call last\):\n {2}File "[^"]+\/code\/inference\.py", line 10, in model_fn/);

  // A slow model_fn runs on a thread: /ping and loaded models answer while it loads.
  const slow = modelFolder(dir, 'slow', 'slow-load');
  const loading = call(c.url, 'POST', '/models', { model_name: 'slow', url: slow });
  await new Promise((r) => setTimeout(r, 300));
  const pingStarted = Date.now();
  assert.equal((await call(c.url, 'GET', '/ping')).status, 200);
  assert.equal((await call(c.url, 'POST', '/models/ridge/invoke', expected.diabetes_rows)).status, 200);
  assert.ok(Date.now() - pingStarted < 1_000, 'the container answered during the load');
  assert.equal((await call(c.url, 'POST', '/models', { model_name: 'slow', url: slow })).status, 409, 'a model being loaded is taken');
  assert.equal((await loading).status, 200);
  assert.deepEqual((await call(c.url, 'POST', '/models/slow/invoke', [[1, 2], [3, 4]])).json, [3, 7]);
  c.kill('SIGTERM');
  assert.equal(await c.exited, 0);
});

test('the image\'s framework is imported once, by the master before it forks the workers; one it cannot import is left to them', async (t) => {
  const dir = tempDir(t);
  // The probe handler imports no framework itself: a worker that has scikit-learn before its model_fn
  // runs got it from the master.
  const c = await startContainer(t, { SM_MODEL_DIR: modelFolder(dir, 'sklearn', 'probe'), SAGEMAKER_MODEL_SERVER_WORKERS: '2' }, 'sklearn');
  const agent = new Agent({ connections: 2 });
  t.after(() => agent.close());
  const answers = await Promise.all(Array.from({ length: 2 }, async () => {
    const r = await request(`${c.url}/invocations`, { method: 'POST', body: '{"sleep": 0.1}', headers: { 'content-type': 'application/json' }, dispatcher: agent });
    return (await r.body.json()) as { pid: number; loaded_by: number; frameworks: string[] };
  }));
  assert.equal(new Set(answers.map((a) => a.pid)).size, 2, 'both workers answered');
  for (const a of answers) assert.deepEqual(a.frameworks, ['sklearn']);
  assert.doesNotMatch(c.output(), /could not be imported before the workers start/);
  c.kill('SIGTERM');
  assert.equal(await c.exited, 0);

  // A value that is neither true nor false stops the container before anything starts, saying so.
  const refused = spawn('python3', [ENTRY, '--framework', 'sklearn', 'serve'], {
    env: { PATH: process.env['PATH'], HOME: process.env['HOME'], SAGEMAKER_BIND_TO_PORT: '0', SM_MODEL_DIR: modelFolder(dir, 'refused', 'probe'), BERTH_PRELOAD_FRAMEWORK: 'maybe' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  refused.stderr.on('data', (c: Buffer) => { stderr += c.toString(); });
  assert.equal(await new Promise((res) => refused.once('exit', res)), 1);
  assert.equal(stderr.trim(), 'berth/python: BERTH_PRELOAD_FRAMEWORK=maybe must be true or false.');

  // BERTH_PRELOAD_FRAMEWORK=false: each worker imports what its model_fn needs (here, nothing).
  const off = await startContainer(t, { SM_MODEL_DIR: modelFolder(dir, 'off', 'probe'), SAGEMAKER_MODEL_SERVER_WORKERS: '1', BERTH_PRELOAD_FRAMEWORK: 'false' }, 'sklearn');
  assert.deepEqual(((await call(off.url, 'POST', '/invocations', {})).json as { frameworks: string[] }).frameworks, []);
  off.kill('SIGTERM');
  assert.equal(await off.exited, 0);

  // XGBoost framework mode with an xgboost that fails to import (one on PYTHONPATH that raises): the
  // master says so in one line and the workers start anyway, since this handler's model_fn does not
  // need it.
  const broken = join(dir, 'broken', 'xgboost');
  mkdirSync(broken, { recursive: true });
  writeFileSync(join(broken, '__init__.py'), 'raise ImportError("this xgboost is broken on purpose")\n');
  const x = await startContainer(t, { SM_MODEL_DIR: modelFolder(dir, 'xgb', 'probe'), SAGEMAKER_MODEL_SERVER_WORKERS: '1', PYTHONPATH: join(dir, 'broken') }, 'xgboost');
  const served = await call(x.url, 'POST', '/invocations', {});
  assert.equal(served.status, 200);
  assert.deepEqual((served.json as { frameworks: string[] }).frameworks, []);
  assert.match(x.output(), /berth\/python: xgboost could not be imported before the workers start \(ImportError: this xgboost is broken on purpose\); each worker imports what its model_fn needs\./);
  x.kill('SIGTERM');
  assert.equal(await x.exited, 0);
});

test('single model: worker processes each run model_fn; timeout, payload limit and a clean SIGTERM', async (t) => {
  const dir = tempDir(t);
  const model = modelFolder(dir, 'probe', 'probe');
  const c = await startContainer(t, {
    SM_MODEL_DIR: model, SAGEMAKER_MODEL_SERVER_WORKERS: '2', SAGEMAKER_MODEL_SERVER_TIMEOUT: '1', SAGEMAKER_MAX_PAYLOAD_IN_MB: '0.01',
  }, 'auto');
  assert.equal((await call(c.url, 'GET', '/ping')).text, '');

  // Sixteen connections at once, each request holding its worker for a moment: the master hands the
  // connections out evenly (8 each, where SO_REUSEPORT's hashing often gave 11 and 5), and each
  // worker answers with the model its own model_fn loaded.
  const agent = new Agent({ connections: 16 });
  t.after(() => agent.close());
  const answers = await Promise.all(Array.from({ length: 16 }, async () => {
    const r = await request(`${c.url}/invocations`, { method: 'POST', body: '{"sleep": 0.05}', headers: { 'content-type': 'application/json' }, dispatcher: agent });
    return (await r.body.json()) as { pid: number; loaded_by: number; frameworks: string[] };
  }));
  const perWorker = new Map<number, number>();
  for (const a of answers) perWorker.set(a.pid, (perWorker.get(a.pid) ?? 0) + 1);
  assert.deepEqual([...perWorker.values()], [8, 8], `answers per worker: ${JSON.stringify([...perWorker])}`);
  for (const a of answers) assert.equal(a.loaded_by, a.pid, 'model_fn ran in the worker that serves');
  for (const a of answers) assert.deepEqual(a.frameworks, [], 'berth/python\'s generic defaults import no framework before the fork');

  const started = Date.now();
  const slow = await call(c.url, 'POST', '/invocations', { sleep: 5 });
  assert.equal(slow.status, 504);
  assert.equal(slow.text, 'The model did not answer within SAGEMAKER_MODEL_SERVER_TIMEOUT=1 seconds; the invocation was stopped.');
  assert.ok(Date.now() - started < 3_000, 'the timeout stopped the handler');
  assert.equal((await call(c.url, 'POST', '/invocations', {})).status, 200, 'the worker serves on after a timeout');

  const payload = JSON.stringify({ pad: 'x'.repeat(20_000) });
  const big = await call(c.url, 'POST', '/invocations', payload);
  assert.equal(big.status, 413);
  assert.equal(big.text, `The request body of ${Buffer.byteLength(payload)} bytes is larger than the limit of 10485 bytes (SAGEMAKER_MAX_PAYLOAD_IN_MB=0.01).`);
  const raised = await call(c.url, 'POST', '/invocations', { fail: 'no such row' });
  assert.deepEqual([raised.status, raised.text], [500, 'RuntimeError: no such row']);
  assert.equal((await call(c.url, 'GET', '/nowhere')).status, 404);

  // SIGTERM: the request in flight is answered, then every process exits 0.
  const inFlight = call(c.url, 'POST', '/invocations', { sleep: 0.5 });
  await new Promise((r) => setTimeout(r, 150));
  c.kill('SIGTERM');
  assert.equal((await inFlight).status, 200);
  assert.equal(await c.exited, 0);
  assert.match(c.output(), /stopping: the workers finish their requests/);
});
