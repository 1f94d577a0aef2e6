// Multi-model endpoints through the SDKs: 50 real models (25 ONNX, 25 XGBoost, made by
// test/fixtures/multimodel/make_*.py) under one S3 prefix, served by one endpoint on two instances
// whose memory budget holds about ten of them.
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import { PutObjectCommand, CreateBucketCommand } from '@aws-sdk/client-s3';
import type { S3Client } from '@aws-sdk/client-s3';
import { CreateEndpointCommand, CreateEndpointConfigCommand, CreateModelCommand, DescribeEndpointCommand, waitUntilEndpointInService } from '@aws-sdk/client-sagemaker';
import { InvokeEndpointCommand } from '@aws-sdk/client-sagemaker-runtime';
import { ROOT, startMoto, startTestBerth, waitFor } from './helpers.js';
import type { TestBerth } from './helpers.js';

// berth reads S3 with the SDK's default credential chain, as a user's shell would provide it.
process.env['AWS_ACCESS_KEY_ID'] ??= 'test';
process.env['AWS_SECRET_ACCESS_KEY'] ??= 'test';

const FIXTURES = join(ROOT, 'test', 'fixtures', 'multimodel');
const MODELS = join(FIXTURES, 'models');
interface Expected { rows: number[][]; models: Record<string, number[]> }
const expected: Record<string, number[]> = {
  ...(JSON.parse(readFileSync(join(FIXTURES, 'onnx-expected.json'), 'utf8')) as Expected).models,
  ...(JSON.parse(readFileSync(join(FIXTURES, 'xgb-expected.json'), 'utf8')) as Expected).models,
};
const ROWS = (JSON.parse(readFileSync(join(FIXTURES, 'onnx-expected.json'), 'utf8')) as Expected).rows;
const CSV = ROWS.map((r) => r.join(',')).join('\n');

interface InstanceView {
  variantName: string;
  instanceId: string;
  memoryBudgetBytes: number;
  memoryUsedBytes: number;
  models: { targetModel: string; state: string; memoryBytes: number; inUse: number }[];
}

async function loadedModels(tb: TestBerth, endpoint: string): Promise<InstanceView[]> {
  const res = await fetch(`${tb.url}/_berth/endpoints/${endpoint}/models`);
  return ((await res.json()) as { instances: InstanceView[] }).instances;
}

async function metric(tb: TestBerth, line: RegExp): Promise<number> {
  const text = await (await fetch(`${tb.url}/metrics`)).text();
  const m = line.exec(text);
  return m ? Number(m[1]) : 0;
}

/** The numbers a model answered: ONNX answers {"output": [...]}, XGBoost's MME handler a bare list. */
function numbers(body: Uint8Array | undefined): number[] {
  const parsed = JSON.parse(Buffer.from(body ?? []).toString('utf8')) as number[] | { output: number[] };
  return Array.isArray(parsed) ? parsed : parsed.output;
}

function assertClose(actual: number[], wanted: number[], what: string): void {
  assert.equal(actual.length, wanted.length, what);
  for (const [i, w] of wanted.entries()) {
    const a = actual[i] as number;
    assert.ok(Math.abs(a - w) <= 1e-5 * Math.max(1, Math.abs(w)), `${what}: row ${i} is ${a}, the library computed ${w}`);
  }
}

async function upload(s3: S3Client, key: string, file: string): Promise<void> {
  await s3.send(new PutObjectCommand({ Bucket: 'mme', Key: key, Body: readFileSync(file) }));
}

async function deployMultiModel(tb: TestBerth, name: string, opts: { image: string; prefix: string; count: number; cache?: 'Enabled' | 'Disabled' }): Promise<void> {
  await tb.sm.send(new CreateModelCommand({
    ModelName: name,
    PrimaryContainer: { Image: opts.image, Mode: 'MultiModel', ModelDataUrl: opts.prefix, MultiModelConfig: opts.cache ? { ModelCacheSetting: opts.cache } : undefined },
  }));
  await tb.sm.send(new CreateEndpointConfigCommand({
    EndpointConfigName: name, ProductionVariants: [{ VariantName: 'AllTraffic', ModelName: name, InstanceType: 'ml.m5.large', InitialInstanceCount: opts.count }],
  }));
  await tb.sm.send(new CreateEndpointCommand({ EndpointName: name, EndpointConfigName: name }));
  await waitUntilEndpointInService({ client: tb.sm, maxWaitTime: 60, minDelay: 1, maxDelay: 1 }, { EndpointName: name }).catch(() => undefined);
  const d = await tb.sm.send(new DescribeEndpointCommand({ EndpointName: name }));
  assert.equal(d.EndpointStatus, 'InService', d.FailureReason);
}

async function invoke(tb: TestBerth, endpoint: string, target: string | undefined, body = CSV): Promise<number[]> {
  const out = await tb.rt.send(new InvokeEndpointCommand({ EndpointName: endpoint, TargetModel: target, ContentType: 'text/csv', Accept: 'application/json', Body: Buffer.from(body) }));
  return numbers(out.Body);
}

async function setUp(t: TestContext, flags: Record<string, unknown>): Promise<{ tb: TestBerth; s3: S3Client }> {
  const moto = await startMoto(t);
  await moto.s3.send(new CreateBucketCommand({ Bucket: 'mme' }));
  for (const f of readdirSync(MODELS)) await upload(moto.s3, `models/${f}`, join(MODELS, f));
  const tb = await startTestBerth(t, { s3Endpoint: moto.endpoint, s3ForcePathStyle: true, ...flags });
  return { tb, s3: moto.s3 };
}

/**
 * About ten models' worth: the container reports what each model holds (ONNX about 260–530 kB,
 * XGBoost about 210–380 kB, measured after garbage collection), so the exact count varies a little.
 */
const BUDGET = 4_000_000;
/** No model holds less than its files (about 100 kB for the XGBoost JSON models): a hard ceiling. */
const MOST_MODELS = Math.floor(BUDGET / 100_000);

test('fifty real models behind one endpoint on two instances: correct answers, LRU inside the memory budget, one load per model', { timeout: 240_000 }, async (t) => {
  const { tb, s3 } = await setUp(t, { multiModelMemoryBudgetBytes: BUDGET, multiModelRevalidateMs: 300 });
  await deployMultiModel(tb, 'mme', { image: 'berth/model-server', prefix: 's3://mme/models/', count: 2 });
  const names = Object.keys(expected).sort();
  assert.equal(names.length, 50);

  // Every model, in an interleaved order, twice in a row (the second call is a cache hit).
  const order = names.filter((_, i) => i % 2 === 0).concat(names.filter((_, i) => i % 2 === 1));
  const placedOn = new Map<string, string>();
  const history: string[] = [];
  let evictions = 0;
  let most = 0;
  let previous = new Set<string>();
  for (const name of order) {
    assertClose(await invoke(tb, 'mme', name), expected[name] as number[], name);
    assertClose(await invoke(tb, 'mme', name), expected[name] as number[], `${name} again`);
    history.push(name);
    const views = await loadedModels(tb, 'mme');
    assert.equal(views.length, 2, 'two instances');
    const now = new Set<string>();
    for (const v of views) {
      assert.ok(v.memoryUsedBytes <= v.memoryBudgetBytes, `instance ${v.instanceId} holds ${v.memoryUsedBytes} bytes, over its budget of ${v.memoryBudgetBytes}`);
      assert.ok(v.models.length <= MOST_MODELS, `instance ${v.instanceId} holds ${v.models.length} models`);
      most = Math.max(most, v.models.length);
      for (const m of v.models) {
        now.add(m.targetModel);
        if (m.targetModel === name) placedOn.set(name, v.instanceId);
      }
    }
    assert.ok(placedOn.has(name), `${name} is loaded on an instance right after its call`);
    for (const m of previous) if (!now.has(m)) evictions += 1;
    previous = now;
  }
  assert.ok(most >= 5 && most <= 25, `an instance held at most ${most} models at once: about ten fit the budget`);
  assert.ok(evictions >= 10, `models were evicted to stay inside the budget (${evictions} evictions)`);
  assert.ok(new Set(placedOn.values()).size === 2, 'models are spread over both instances');

  // LRU: on each instance, what is loaded is exactly the most recently used models placed there.
  for (const v of await loadedModels(tb, 'mme')) {
    const placedHere = history.filter((n) => placedOn.get(n) === v.instanceId);
    const mostRecent = placedHere.slice(-v.models.length).sort();
    assert.deepEqual(v.models.map((m) => m.targetModel).sort(), mostRecent, `instance ${v.instanceId} kept the least recently used models`);
    // Listed least recently used first: the order eviction takes.
    assert.deepEqual(v.models.map((m) => m.targetModel), placedHere.slice(-v.models.length));
  }

  // Metrics under SageMaker's names: every call counted, the repeated calls were hits.
  assert.equal(await metric(tb, /^ModelCacheHit_count\{EndpointName="mme",VariantName="AllTraffic"\} (\d+)/m), 100);
  assert.ok(await metric(tb, /^ModelCacheHit_sum\{EndpointName="mme",VariantName="AllTraffic"\} (\d+)/m) >= 50);
  assert.ok(await metric(tb, /^ModelLoadingTime_count\{EndpointName="mme",VariantName="AllTraffic"\} (\d+)/m) >= 50);
  assert.ok(await metric(tb, /^ModelUnloadingTime_count\{EndpointName="mme",VariantName="AllTraffic"\} (\d+)/m) >= 10);
  assert.ok(await metric(tb, /^LoadedModelCount\{EndpointName="mme",VariantName="AllTraffic"\} (\d+)/m) > 0);
  assert.equal(await metric(tb, /^ModelDownloadingTime_count\{EndpointName="mme",VariantName="AllTraffic",TargetModel="onnx-00.tar.gz"\} (\d+)/m), 1, 'downloaded once, however often it was loaded');

  // Concurrent first calls for one new model wait on a single load.
  await upload(s3, 'models/fresh/xgb-03.tar.gz', join(MODELS, 'xgb-03.tar.gz'));
  const answers = await Promise.all(Array.from({ length: 12 }, () => invoke(tb, 'mme', 'fresh/xgb-03.tar.gz')));
  for (const a of answers) assertClose(a, expected['xgb-03.tar.gz'] as number[], 'fresh/xgb-03.tar.gz');
  assert.equal(await metric(tb, /^ModelLoadingTime_count\{EndpointName="mme",VariantName="AllTraffic",TargetModel="fresh\/xgb-03.tar.gz"\} (\d+)/m), 1, 'twelve concurrent first calls, one load');

  // An artifact replaced under the same key is reloaded on its next use once its ETag changed.
  await upload(s3, 'models/swap.tar.gz', join(MODELS, 'onnx-01.tar.gz'));
  assertClose(await invoke(tb, 'mme', 'swap.tar.gz'), expected['onnx-01.tar.gz'] as number[], 'swap before');
  await upload(s3, 'models/swap.tar.gz', join(MODELS, 'onnx-02.tar.gz'));
  await new Promise((r) => setTimeout(r, 400));
  assertClose(await invoke(tb, 'mme', 'swap.tar.gz'), expected['onnx-02.tar.gz'] as number[], 'swap after the upload');

  // A missing object fails fast with SageMaker's error; a call without TargetModel is refused.
  const started = Date.now();
  await assert.rejects(invoke(tb, 'mme', 'nope/missing.tar.gz'), (err: Error & { $metadata?: { httpStatusCode?: number } }) => {
    assert.equal(err.name, 'ValidationError');
    assert.match(err.message, /Failed to download model data\(bucket: mme, key: models\/nope\/missing.tar.gz\)/);
    return true;
  });
  assert.ok(Date.now() - started < 3_000, 'a missing model is reported at once');
  await assert.rejects(invoke(tb, 'mme', undefined), /is missing a target model header/);
  await assert.rejects(invoke(tb, 'mme', '../escape.tar.gz'), /without "\." or "\.\." parts/);

  // Killing an instance loses no model: the next calls load it on a live instance.
  const holder = (await loadedModels(tb, 'mme')).find((v) => v.models.some((m) => m.targetModel === 'swap.tar.gz')) as InstanceView;
  const info = JSON.parse(readFileSync(join(tb.dir, 'data', 'instances', holder.instanceId, 'instance.json'), 'utf8')) as { pids: number[] };
  process.kill(info.pids[0] as number, 'SIGKILL');
  const after = await waitFor(async () => invoke(tb, 'mme', 'swap.tar.gz').catch(() => undefined), 30_000, 'the model to answer again after its instance died');
  assertClose(after, expected['onnx-02.tar.gz'] as number[], 'swap after its instance was killed');
});
