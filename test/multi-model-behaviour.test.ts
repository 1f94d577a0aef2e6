// Multi-model behaviours that need a container to misbehave on cue (test/fixtures/mme-container.mjs):
// a container out of memory (507), a slow load (ModelNotReadyException), a failing load, the cache
// turned off, and berth's own model server's /models API spoken to directly.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { test } from 'node:test';
import { CreateEndpointCommand, CreateEndpointConfigCommand, CreateModelCommand, DescribeEndpointCommand, waitUntilEndpointInService } from '@aws-sdk/client-sagemaker';
import { InvokeEndpointCommand } from '@aws-sdk/client-sagemaker-runtime';
import { ROOT, artifact, makeModelTarGz, startTestBerth, tempDir, waitFor } from './helpers.js';
import type { TestBerth } from './helpers.js';

// berth reads S3 with the SDK's default credential chain, as a user's shell would provide it.
process.env['AWS_ACCESS_KEY_ID'] ??= 'test';
process.env['AWS_SECRET_ACCESS_KEY'] ??= 'test';

const MME = join(ROOT, 'test', 'fixtures', 'mme-container.mjs');

interface Answer { model: string; label: string | null; targetModel: string | null; loaded: number; instance: string }

/** A folder of model.tar.gz files, each with the given files, as a file:// prefix. */
function prefix(dir: string, models: Record<string, Record<string, string>>): string {
  const root = join(dir, 'prefix');
  mkdirSync(root, { recursive: true });
  for (const [name, files] of Object.entries(models)) makeModelTarGz(root, files, name);
  return pathToFileURL(root).href + '/';
}

async function deploy(tb: TestBerth, name: string, prefixUrl: string, opts: { env?: Record<string, string>; cache?: 'Enabled' | 'Disabled'; count?: number } = {}): Promise<void> {
  await tb.sm.send(new CreateModelCommand({
    ModelName: name,
    PrimaryContainer: { Image: 'mme', Mode: 'MultiModel', ModelDataUrl: prefixUrl, Environment: opts.env, MultiModelConfig: opts.cache ? { ModelCacheSetting: opts.cache } : undefined },
  }));
  await tb.sm.send(new CreateEndpointConfigCommand({
    EndpointConfigName: name, ProductionVariants: [{ VariantName: 'AllTraffic', ModelName: name, InstanceType: 'ml.m5.large', InitialInstanceCount: opts.count ?? 1 }],
  }));
  await tb.sm.send(new CreateEndpointCommand({ EndpointName: name, EndpointConfigName: name }));
  await waitUntilEndpointInService({ client: tb.sm, maxWaitTime: 30, minDelay: 1, maxDelay: 1 }, { EndpointName: name }).catch(() => undefined);
  const d = await tb.sm.send(new DescribeEndpointCommand({ EndpointName: name }));
  assert.equal(d.EndpointStatus, 'InService', d.FailureReason);
}

async function call(tb: TestBerth, endpoint: string, target: string): Promise<Answer> {
  const out = await tb.rt.send(new InvokeEndpointCommand({ EndpointName: endpoint, TargetModel: target, ContentType: 'application/json', Body: Buffer.from('{}') }));
  return JSON.parse(Buffer.from(out.Body ?? []).toString('utf8')) as Answer;
}

async function loadedOn(tb: TestBerth, endpoint: string): Promise<string[]> {
  const res = await fetch(`${tb.url}/_berth/endpoints/${endpoint}/models`);
  const body = (await res.json()) as { instances: { models: { targetModel: string; state: string }[] }[] };
  return body.instances.flatMap((i) => i.models.filter((m) => m.state === 'loaded').map((m) => m.targetModel));
}

test('a container that answers 507 gets its least recently used model unloaded and the load retried', async (t) => {
  const tb = await startTestBerth(t, { images: { mme: { command: [process.execPath, MME] } } });
  const models = Object.fromEntries(['a', 'b', 'c', 'd', 'e'].map((n) => [`${n}.tar.gz`, { 'label.txt': `model ${n}` }]));
  await deploy(tb, 'full', prefix(tb.dir, models), { env: { MME_MAX_MODELS: '2' } });
  for (const n of ['a', 'b', 'a', 'c', 'd', 'a', 'e']) {
    const answer = await call(tb, 'full', `${n}.tar.gz`);
    assert.equal(answer.label, `model ${n}`);
    assert.equal(answer.targetModel, `${n}.tar.gz`, 'the container sees TargetModel as X-Amzn-SageMaker-Target-Model');
    assert.ok(answer.loaded <= 2);
  }
  // `a` was used often and recently enough to stay; `d` was the least recently used of the others.
  assert.deepEqual((await loadedOn(tb, 'full')).sort(), ['a.tar.gz', 'e.tar.gz']);
});

test('a slow first load answers ModelNotReadyException while it goes on, then serves; a failing load is a ModelError', async (t) => {
  const tb = await startTestBerth(t, { images: { mme: { command: [process.execPath, MME] } }, multiModelLoadWaitMs: 300 });
  await deploy(tb, 'slow', prefix(tb.dir, {
    'slow.tar.gz': { slow: '1500', 'label.txt': 'patient' },
    'broken.tar.gz': { fail: 'model_fn raised ValueError: no weights' },
  }));
  const started = Date.now();
  await assert.rejects(call(tb, 'slow', 'slow.tar.gz'), (err: Error & { $metadata?: { httpStatusCode?: number } }) => {
    assert.equal(err.name, 'ModelNotReadyException');
    assert.equal(err.$metadata?.httpStatusCode, 429);
    assert.match(err.message, /still being downloaded and loaded/);
    return true;
  });
  assert.ok(Date.now() - started < 1_400, 'the first call did not wait for the whole load');
  const answer = await waitFor(() => call(tb, 'slow', 'slow.tar.gz').catch(() => undefined), 10_000, 'the slow model to load');
  assert.equal(answer.label, 'patient');
  const metrics = await (await fetch(`${tb.url}/metrics`)).text();
  assert.match(metrics, /^ModelLoadingTime_count\{EndpointName="slow",VariantName="AllTraffic",TargetModel="slow.tar.gz"\} 1$/m, 'the retries waited on the one load');

  await assert.rejects(call(tb, 'slow', 'broken.tar.gz'), (err: Error & { OriginalStatusCode?: number }) => {
    assert.equal(err.name, 'ModelError');
    assert.equal(err.OriginalStatusCode, 500);
    assert.match(err.message, /model_fn raised ValueError: no weights/);
    return true;
  });
});

test('a busy model gets a second copy on the other instance, and calls spread over both', async (t) => {
  const tb = await startTestBerth(t, { images: { mme: { command: [process.execPath, MME] } }, multiModelReplicaOutstanding: 3 });
  await deploy(tb, 'busy', prefix(tb.dir, { 'hot.tar.gz': { 'invoke-ms': '150', 'label.txt': 'hot' } }), { count: 2 });
  assert.equal((await call(tb, 'busy', 'hot.tar.gz')).label, 'hot');
  const answers: Answer[] = [];
  for (let wave = 0; wave < 3; wave++) answers.push(...(await Promise.all(Array.from({ length: 12 }, () => call(tb, 'busy', 'hot.tar.gz')))));
  const instances = new Set(answers.map((a) => a.instance));
  assert.equal(instances.size, 2, 'calls reached both instances');
  const res = await fetch(`${tb.url}/_berth/endpoints/busy/models`);
  const views = ((await res.json()) as { instances: { models: { targetModel: string }[] }[] }).instances;
  assert.deepEqual(views.map((v) => v.models.map((m) => m.targetModel)), [['hot.tar.gz'], ['hot.tar.gz']]);
});

test('the disk budget deletes unpacked models no instance holds, least recently used first', async (t) => {
  const tb = await startTestBerth(t, { images: { mme: { command: [process.execPath, MME] } }, multiModelDiskBudgetBytes: 2_500 });
  const weights = (n: string) => ({ 'label.txt': n, 'weights.bin': n.repeat(1_000) });
  await deploy(tb, 'disk', prefix(tb.dir, { 'a.tar.gz': weights('a'), 'b.tar.gz': weights('b'), 'c.tar.gz': weights('c') }), { env: { MME_MAX_MODELS: '1' } });
  const artifacts = join(tb.dir, 'data', 'artifacts');
  for (const n of ['a', 'b', 'c']) assert.equal((await call(tb, 'disk', `${n}.tar.gz`)).label, n);
  // Each unpacked model is about 1 kB: c is loaded, b fits beside it, a (the oldest) is gone.
  await waitFor(() => (readdirSync(artifacts).filter((f) => !f.includes('.partial-')).length === 2 ? true : undefined), 5_000, 'the oldest unpacked model to be deleted');
  assert.equal((await call(tb, 'disk', 'a.tar.gz')).label, 'a', 'a deleted model is fetched again when called');
});

test('ModelCacheSetting Disabled unloads a model and deletes its files after each call', async (t) => {
  const tb = await startTestBerth(t, { images: { mme: { command: [process.execPath, MME] } } });
  await deploy(tb, 'nocache', prefix(tb.dir, { 'once.tar.gz': { 'label.txt': 'once' } }), { cache: 'Disabled' });
  assert.equal((await call(tb, 'nocache', 'once.tar.gz')).label, 'once');
  await waitFor(async () => ((await loadedOn(tb, 'nocache')).length === 0 ? true : undefined), 5_000, 'the model to be unloaded');
  const artifacts = join(tb.dir, 'data', 'artifacts');
  await waitFor(() => (readdirSync(artifacts).length === 0 ? true : undefined), 5_000, 'the unpacked model to be deleted');
  assert.equal((await call(tb, 'nocache', 'once.tar.gz')).label, 'once', 'and it loads again when called');
});

test("berth's model server speaks the multi-model container API", async (t) => {
  const dir = tempDir(t);
  const model = join(dir, 'iris');
  mkdirSync(model);
  copyFileSync(join(ROOT, 'test', 'fixtures', 'models', 'iris-v1.onnx'), join(model, 'model.onnx'));
  const port = 20_000 + Math.floor(Math.random() * 20_000);
  const child = spawn(process.execPath, ['--expose-gc', join(ROOT, 'dist', 'src', 'container', 'main.js'), '--runtime', 'onnx', 'serve'], {
    env: { ...process.env, SAGEMAKER_MULTI_MODEL: 'true', SAGEMAKER_BIND_TO_PORT: String(port) },
    stdio: 'ignore',
  });
  t.after(() => { child.kill('SIGKILL'); });
  const base = `http://127.0.0.1:${port}`;
  await waitFor(async () => ((await fetch(`${base}/ping`).catch(() => undefined))?.status === 200 ? true : undefined), 10_000, 'the container to listen');
  const req = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(base + path, { method, body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body), headers: { 'content-type': 'application/json' } });
    return { status: res.status, json: (await res.json()) as Record<string, unknown> };
  };
  assert.equal((await req('POST', '/models', { model_name: 'iris', url: join(dir, 'missing') })).status, 404);
  assert.equal((await req('POST', '/models', 'not json')).status, 400);
  const loaded = await req('POST', '/models', { model_name: 'iris', url: model });
  assert.equal(loaded.status, 200);
  assert.ok(typeof loaded.json['memoryBytes'] === 'number' && loaded.json['memoryBytes'] > 0, 'the load answer says what the model holds');
  assert.equal((await req('POST', '/models', { model_name: 'iris', url: model })).status, 409);
  assert.equal((await req('POST', '/models', { model_name: 'iris2', url: model })).status, 200);
  const page = await req('GET', '/models?limit=1');
  assert.deepEqual(page.json, { models: [{ modelName: 'iris', modelUrl: model }], nextPageToken: '1' });
  assert.deepEqual((await req('GET', '/models?limit=1&next_page_token=1')).json, { models: [{ modelName: 'iris2', modelUrl: model }] });
  assert.deepEqual((await req('GET', '/models/iris')).json, { modelName: 'iris', modelUrl: model });
  const out = await req('POST', '/models/iris/invoke', [[5.1, 3.5, 1.4, 0.2]]);
  assert.equal(out.status, 200);
  assert.ok(Array.isArray(out.json['probabilities']), JSON.stringify(out.json));
  assert.equal((await req('DELETE', '/models/iris')).status, 200);
  const gone = await req('POST', '/models/iris/invoke', [[5.1, 3.5, 1.4, 0.2]]);
  assert.equal(gone.status, 404);
  assert.equal(gone.json['type'], 'ModelNotFoundException');
  assert.equal((await req('DELETE', '/models/iris')).status, 404);
  assert.equal((await req('GET', '/models/iris')).status, 404);
  assert.equal(existsSync(model), true, 'unloading leaves the files to berth');
});

test("Python models (users' inference.py) on a multi-model endpoint with SageMaker's scikit-learn image", { timeout: 120_000 }, async (t) => {
  const python = join(ROOT, 'test', 'fixtures', 'python');
  const wanted = JSON.parse(readFileSync(join(python, 'expected.json'), 'utf8')) as { diabetes_rows: number[][]; diabetes_ridge: number[] };
  const tb = await startTestBerth(t);
  const root = join(tb.dir, 'python-prefix');
  mkdirSync(root, { recursive: true });
  const files = { code: join(python, 'handlers', 'sklearn-defaults', 'code'), 'diabetes-ridge.joblib': join(python, 'models', 'diabetes-ridge.joblib') };
  artifact(root, 'ridge-a', files);
  artifact(root, 'ridge-b', files);
  await tb.sm.send(new CreateModelCommand({
    ModelName: 'py-mme',
    PrimaryContainer: { Image: '683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3', Mode: 'MultiModel', ModelDataUrl: pathToFileURL(root).href + '/' },
  }));
  await tb.sm.send(new CreateEndpointConfigCommand({
    EndpointConfigName: 'py-mme', ProductionVariants: [{ VariantName: 'AllTraffic', ModelName: 'py-mme', InstanceType: 'ml.m5.large', InitialInstanceCount: 1 }],
  }));
  await tb.sm.send(new CreateEndpointCommand({ EndpointName: 'py-mme', EndpointConfigName: 'py-mme' }));
  await waitUntilEndpointInService({ client: tb.sm, maxWaitTime: 60, minDelay: 1, maxDelay: 1 }, { EndpointName: 'py-mme' }).catch(() => undefined);
  for (const target of ['ridge-a.tar.gz', 'ridge-b.tar.gz', 'ridge-a.tar.gz']) {
    const out = await tb.rt.send(new InvokeEndpointCommand({ EndpointName: 'py-mme', TargetModel: target, ContentType: 'application/json', Body: Buffer.from(JSON.stringify(wanted.diabetes_rows)) }));
    const got = JSON.parse(Buffer.from(out.Body ?? []).toString('utf8')) as number[];
    assert.equal(got.length, wanted.diabetes_ridge.length);
    got.forEach((v, i) => assert.ok(Math.abs(v - (wanted.diabetes_ridge[i] as number)) < 1e-6 * Math.abs(wanted.diabetes_ridge[i] as number), `${target} row ${i}: ${v}`));
  }
  assert.deepEqual((await loadedOn(tb, 'py-mme')).sort(), ['ridge-a.tar.gz', 'ridge-b.tar.gz']);
});

test('a model bigger than the memory budget and a store that cannot be reached give errors that say so', async (t) => {
  const tb = await startTestBerth(t, { images: { mme: { command: [process.execPath, MME] } }, multiModelMemoryBudgetBytes: 500 });
  await deploy(tb, 'small', prefix(tb.dir, { 'big.tar.gz': { 'weights.bin': 'w'.repeat(2_000) } }));
  await assert.rejects(call(tb, 'small', 'big.tar.gz'), (err: Error & { OriginalStatusCode?: number }) => {
    assert.equal(err.name, 'ModelError');
    assert.equal(err.OriginalStatusCode, 507);
    assert.match(err.message, /Model big\.tar\.gz needs about 0\.0 MiB of memory, more than the 0\.0 MiB budget of an instance of this endpoint; raise multiModelMemoryBudgetBytes/);
    return true;
  });

  // An S3 prefix on a store nobody answers: the check fails with SageMaker's dependency error, retryable.
  const closed = await new Promise<number>((resolve) => {
    const srv = createServer().listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
  const down = await startTestBerth(t, { images: { mme: { command: [process.execPath, MME] } }, s3Endpoint: `http://127.0.0.1:${closed}`, s3ForcePathStyle: true });
  await deploy(down, 'nostore', 's3://nowhere/models/');
  await assert.rejects(call(down, 'nostore', 'a.tar.gz'), (err: Error & { $metadata?: { httpStatusCode?: number } }) => {
    assert.equal(err.name, 'InternalDependencyException');
    assert.equal(err.$metadata?.httpStatusCode, 530);
    assert.match(err.message, /^Could not check model a\.tar\.gz at s3:\/\/nowhere\/models\/a\.tar\.gz: /);
    return true;
  });
});
