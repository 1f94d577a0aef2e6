// The XGBoost algorithm container through the SDK: SageMaker's XGBoost image URIs, the bike-rental
// model as two variants from two xgboost versions' artifacts, every content type in and out, selectable
// output, ensembles and the container's status codes. Predictions are checked against xgboost's own.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CreateEndpointCommand, CreateEndpointConfigCommand, CreateModelCommand, DescribeEndpointCommand, waitUntilEndpointInService } from '@aws-sdk/client-sagemaker';
import { InvokeEndpointCommand, ModelError } from '@aws-sdk/client-sagemaker-runtime';
import { artifact, ROOT, startTestBerth } from './helpers.js';
import type { TestBerth } from './helpers.js';

const DIR = join(ROOT, 'test', 'fixtures', 'xgboost');
const MODELS = join(DIR, 'models');
const expected = JSON.parse(readFileSync(join(DIR, 'expected.json'), 'utf8')) as { models: Record<string, { predictions: (number | number[])[] }> };
const want = (name: string) => (expected.models[name] as { predictions: (number | number[])[] }).predictions;
const csvRows = (file: string) => readFileSync(join(DIR, file), 'utf8').trim().split('\n');
const XGB_IMAGE = (tag: string) => `683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:${tag}`;

function close(actual: number[], wanted: number[]): void {
  assert.equal(actual.length, wanted.length);
  actual.forEach((v, i) => assert.ok(Math.abs(v - (wanted[i] as number)) <= 1e-6 * Math.max(1, Math.abs(wanted[i] as number)), `${i}: ${v} vs ${wanted[i]}`));
}

async function endpoint(tb: TestBerth, name: string, variants: { name: string; image: string; files: Record<string, string>; env?: Record<string, string> }[]): Promise<{ status?: string; reason?: string }> {
  for (const v of variants) {
    await tb.sm.send(new CreateModelCommand({ ModelName: `${name}-${v.name}`.toLowerCase(), PrimaryContainer: { Image: v.image, ModelDataUrl: artifact(tb.dir, `${name}-${v.name}`, v.files), Environment: v.env } }));
  }
  await tb.sm.send(new CreateEndpointConfigCommand({
    EndpointConfigName: name,
    ProductionVariants: variants.map((v) => ({ VariantName: v.name, ModelName: `${name}-${v.name}`.toLowerCase(), InstanceType: 'ml.m5.large', InitialInstanceCount: 1 })),
  }));
  await tb.sm.send(new CreateEndpointCommand({ EndpointName: name, EndpointConfigName: name }));
  await waitUntilEndpointInService({ client: tb.sm, maxWaitTime: 30, minDelay: 1, maxDelay: 1 }, { EndpointName: name }).catch(() => undefined);
  const d = await tb.sm.send(new DescribeEndpointCommand({ EndpointName: name }));
  return { status: d.EndpointStatus, reason: d.FailureReason };
}

async function invoke(tb: TestBerth, name: string, body: string | Buffer, contentType?: string, accept?: string, variant?: string): Promise<{ body: Buffer; contentType?: string; variant?: string }> {
  const out = await tb.rt.send(new InvokeEndpointCommand({ EndpointName: name, Body: typeof body === 'string' ? Buffer.from(body) : body, ContentType: contentType, Accept: accept, TargetVariant: variant }));
  return { body: Buffer.from(out.Body ?? []), contentType: out.ContentType, variant: out.InvokedProductionVariant };
}

/** A RecordIO-protobuf request as SageMaker's SDK writes one: Record.features["values"] = Float32Tensor. */
function recordioRequest(rows: number[][]): Buffer {
  const varint = (n: number) => { const o: number[] = []; while (n >= 0x80) { o.push((n & 0x7f) | 0x80); n >>>= 7; } o.push(n); return o; };
  const field = (f: number, b: Uint8Array | number[]) => Buffer.from([...varint((f << 3) | 2), ...varint(b.length), ...b]);
  return Buffer.concat(rows.map((row) => {
    const floats = Buffer.alloc(row.length * 4);
    row.forEach((v, i) => floats.writeFloatLE(v, i * 4));
    const entry = Buffer.concat([field(1, Buffer.from('values')), field(2, field(2, field(1, floats)))]);
    const rec = field(1, entry);
    const head = Buffer.alloc(8);
    head.writeUInt32LE(0xced7230a, 0);
    head.writeUInt32LE(rec.length, 4);
    return Buffer.concat([head, rec, Buffer.alloc((4 - (rec.length % 4)) % 4)]);
  }));
}

test('bike rentals: two xgboost versions as two variants, each reached with TargetVariant', async (t) => {
  const tb = await startTestBerth(t);
  assert.deepEqual(await endpoint(tb, 'bikes', [
    { name: 'V1', image: XGB_IMAGE('0.90-1'), files: { 'xgboost-model': join(MODELS, 'bike-v1.legacy.pkl') } },
    { name: 'V2', image: XGB_IMAGE('1.7-1'), files: { 'xgboost-model': join(MODELS, 'bike-v2.bin') } },
  ]), { status: 'InService', reason: undefined });
  const body = csvRows('bike.csv').join('\n');
  for (const [variant, model] of [['V1', 'bike-v1'], ['V2', 'bike-v2']] as const) {
    const out = await invoke(tb, 'bikes', body, 'text/csv', undefined, variant);
    assert.equal(out.variant, variant);
    assert.equal(out.contentType, 'text/csv');
    close(out.body.toString().trim().split('\n').map(Number), want(model) as number[]);
  }
});

test('content types in and out, selectable output and the container status codes', async (t) => {
  const tb = await startTestBerth(t);
  await endpoint(tb, 'fmt', [{ name: 'AllTraffic', image: 'berth/xgboost', files: { 'xgboost-model': join(MODELS, 'binary-logistic.json') } }]);
  const rows = csvRows('inputs.csv');
  const p = want('binary-logistic') as number[];
  const parseLines = (b: Buffer) => b.toString().trim().split('\n').map(Number);
  close(parseLines((await invoke(tb, 'fmt', rows.join('\n'), 'text/csv')).body), p);
  // Tab-separated rows are sniffed. (The first row is all missing, which as tabs is only white space,
  // and the container strips the body first, as berth does.)
  close(parseLines((await invoke(tb, 'fmt', rows.slice(1).join('\n').replace(/,/g, '\t'), 'text/csv; charset=utf-8')).body), p.slice(1));
  const json = JSON.parse((await invoke(tb, 'fmt', rows.join('\n'), 'text/csv', 'application/json')).body.toString()) as { predictions: { score: number }[] };
  close(json.predictions.map((x) => x.score), p);
  const lines = (await invoke(tb, 'fmt', rows.join('\n'), 'text/csv', 'application/jsonlines')).body.toString().trim().split('\n');
  close(lines.map((l) => (JSON.parse(l) as { score: number }).score), p);
  // libsvm: label first, 1-based indices, missing values simply absent.
  const libsvm = rows.map((r) => `0 ${r.split(',').map((v, i) => (v === '' ? '' : `${i + 1}:${v}`)).filter(Boolean).join(' ')}`).join('\n');
  close(parseLines((await invoke(tb, 'fmt', libsvm, 'text/libsvm')).body), p);
  // No Content-Type at all (boto3 sends none unless asked; the JS SDK always does): libsvm, the default.
  const bare = await fetch(`${tb.url}/endpoints/fmt/invocations`, { method: 'POST', body: Buffer.from(libsvm) });
  assert.equal(bare.status, 200);
  close(parseLines(Buffer.from(await bare.arrayBuffer())), p);
  const dense = rows.map((r) => r.split(',').map((v) => (v === '' ? NaN : Number(v))));
  close(parseLines((await invoke(tb, 'fmt', recordioRequest(dense), 'application/x-recordio-protobuf')).body), p);
  const rec = (await invoke(tb, 'fmt', rows.slice(0, 2).join('\n'), 'text/csv', 'application/x-recordio-protobuf')).body;
  assert.equal(rec.readUInt32LE(0), 0xced7230a);
  // The first record's label "score" holds the first prediction as a float32.
  assert.ok(rec.includes(Buffer.from('score')));
  assert.ok(rec.includes(Buffer.from(new Float32Array([p[0] as number]).buffer)));

  const status = async (body: string, contentType?: string, accept?: string): Promise<ModelError> => {
    try {
      await invoke(tb, 'fmt', body, contentType, accept);
    } catch (err) {
      assert.ok(err instanceof ModelError);
      return err;
    }
    throw new Error('expected an error');
  };
  const json415 = await status('{"instances": [[1,2,3,4,5]]}', 'application/json');
  assert.equal(json415.OriginalStatusCode, 415);
  assert.match(json415.OriginalMessage ?? '', /^Content-type application\/json is not supported/);
  const bad406 = await status(rows[2] as string, 'text/csv', 'image/png');
  assert.equal(bad406.OriginalStatusCode, 406);
  assert.equal(bad406.OriginalMessage, 'Accept type image/png is not supported. Please use supported accept types: [application/json, application/jsonlines, application/x-recordio-protobuf, text/csv].');
  const wide = await status('1,2,3,4,5,6,7', 'text/csv');
  assert.equal(wide.OriginalStatusCode, 400);
  assert.equal(wide.OriginalMessage, 'Unable to evaluate payload provided: Feature size of text/csv inference data 7 is not consistent with feature size of trained model 5.');
  const garbage = await status('1,2,x', 'text/csv');
  assert.equal(garbage.OriginalStatusCode, 415);
  assert.equal((await invoke(tb, 'fmt', '  ', 'text/csv')).body.length, 0, 'an empty body answers 204, no content');

  await endpoint(tb, 'sel', [{ name: 'AllTraffic', image: 'berth/xgboost', files: { 'xgboost-model': join(MODELS, 'binary-logistic.ubj') }, env: { SAGEMAKER_INFERENCE_OUTPUT: 'predicted_label, probabilities,predicted_score' } }]);
  const sel = (await invoke(tb, 'sel', rows.slice(0, 3).join('\n'), 'text/csv', 'application/json')).body.toString();
  const parsed = JSON.parse(sel.replace(/NaN/g, 'null')) as { predictions: { predicted_label: number; probabilities: number[]; predicted_score: null }[] };
  parsed.predictions.forEach((x, i) => {
    assert.equal(x.predicted_label, (p[i] as number) > 0.5 ? 1 : 0);
    close(x.probabilities, [1 - (p[i] as number), p[i] as number]);
    assert.equal(x.predicted_score, null, 'a key the objective lacks is NaN');
  });
  const selCsv = (await invoke(tb, 'sel', rows.slice(0, 2).join('\n'), 'text/csv', 'text/csv')).body.toString();
  assert.match(selCsv, /^[01],"\[[\d.e-]+, [\d.e-]+\]",nan\n[01],"\[[\d.e-]+, [\d.e-]+\]",nan$/);
});

test('softprob output, an ensemble of two model files, and load failures', async (t) => {
  const tb = await startTestBerth(t);
  await endpoint(tb, 'multi', [{ name: 'AllTraffic', image: 'berth/xgboost:1', files: { 'xgboost-model': join(MODELS, 'multi-softprob.ubj') } }]);
  const rows = csvRows('inputs.csv');
  const probs = (await invoke(tb, 'multi', rows.join('\n'), 'text/csv')).body.toString().trim().split('\n').map((l) => l.split(',').map(Number));
  close(probs.flat(), (want('multi-softprob') as number[][]).flat());

  // Two files in the model folder: predictions are averaged, as SageMaker's container does.
  await endpoint(tb, 'ens', [{ name: 'AllTraffic', image: 'berth/xgboost', files: { 'model-a': join(MODELS, 'reg-squarederror.json'), 'model-b': join(MODELS, 'random-forest.ubj'), code: join(ROOT, 'test', 'fixtures', 'handlers', 'failing', 'code') } }]);
  const mean = (want('reg-squarederror') as number[]).map((v, i) => Math.fround((Math.fround(v) + Math.fround((want('random-forest') as number[])[i] as number)) / 2));
  close((await invoke(tb, 'ens', rows.join('\n'), 'text/csv')).body.toString().trim().split('\n').map(Number), mean);

  const broken = await endpoint(tb, 'broken', [{ name: 'AllTraffic', image: 'berth/xgboost', files: { 'xgboost-model': join(DIR, 'inputs.csv') } }]);
  assert.equal(broken.status, 'Failed');
  assert.match(broken.reason ?? '', /Model xgboost-model cannot be loaded: /);
  // berth/xgboost is algorithm mode only; SageMaker's XGBoost image URIs run framework mode on the
  // Python container instead (test/python-container.test.ts).
  const framework = await endpoint(tb, 'framework', [{ name: 'AllTraffic', image: 'berth/xgboost', files: { 'xgboost-model': join(MODELS, 'bike-v2.bin') }, env: { SAGEMAKER_PROGRAM: 'inference.py' } }]);
  assert.equal(framework.status, 'Failed');
  assert.match(framework.reason ?? '', /SAGEMAKER_PROGRAM=inference\.py selects XGBoost framework mode \(your own inference\.py\), which runs on berth's Python container/);
});
