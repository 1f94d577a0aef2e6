// berth's model server through the SDK: ONNX models and JS/TS handlers served from real artifacts,
// predictions checked against outputs onnxruntime and numpy computed when the fixtures were made.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { InvokeEndpointCommand } from '@aws-sdk/client-sagemaker-runtime';
import { artifact, deployModel, modelError, ROOT, startTestBerth } from './helpers.js';
import type { TestBerth } from './helpers.js';

const MODELS = join(ROOT, 'test', 'fixtures', 'models');
const HANDLERS = join(ROOT, 'test', 'fixtures', 'handlers');
interface Expected {
  iris_rows: number[][];
  'iris-v1': { probabilities: number[][]; label: number[] };
  two_inputs: { a: number[][]; b: number[][]; outputs: { sum: number[][] } };
  handler: { probability: number[] };
}
const expected = JSON.parse(readFileSync(join(MODELS, 'expected.json'), 'utf8')) as Expected;

const deploy = (tb: TestBerth, name: string, image: string, url: string, env?: Record<string, string>) =>
  deployModel(tb, name, { PrimaryContainer: { Image: image, ModelDataUrl: url, Environment: env } });

async function invoke(tb: TestBerth, name: string, body: string, contentType = 'application/json', accept?: string): Promise<{ body: string; contentType?: string; custom?: string }> {
  const out = await tb.rt.send(new InvokeEndpointCommand({ EndpointName: name, Body: Buffer.from(body), ContentType: contentType, Accept: accept }));
  return { body: Buffer.from(out.Body ?? []).toString('utf8'), contentType: out.ContentType, custom: out.CustomAttributes };
}

function close(actual: number[][], wanted: number[][], tolerance = 1e-6): void {
  assert.equal(actual.length, wanted.length);
  actual.forEach((row, i) => row.forEach((v, j) => {
    const w = (wanted[i] as number[])[j] as number;
    assert.ok(Math.abs(v - w) <= tolerance * Math.max(1, Math.abs(w)), `[${i}][${j}] ${v} vs ${w}`);
  }));
}

test('berth/onnx serves an ONNX model: every JSON form, CSV in and out, outputs as onnxruntime computes them', async (t) => {
  const tb = await startTestBerth(t);
  assert.deepEqual(await deploy(tb, 'iris', 'berth/onnx:latest', artifact(tb.dir, 'iris', { 'model.onnx': join(MODELS, 'iris-v1.onnx') })), { status: 'InService', reason: undefined });
  const rows = expected.iris_rows;
  for (const body of [JSON.stringify(rows), JSON.stringify({ inputs: rows }), JSON.stringify({ instances: rows }), JSON.stringify({ features: rows })]) {
    const out = await invoke(tb, 'iris', body);
    assert.equal(out.contentType, 'application/json');
    const parsed = JSON.parse(out.body) as { probabilities: number[][]; label: number[] };
    close(parsed.probabilities, expected['iris-v1'].probabilities);
    assert.deepEqual(parsed.label, expected['iris-v1'].label);
  }
  // One example without its batch dimension.
  const one = JSON.parse((await invoke(tb, 'iris', JSON.stringify(rows[1]))).body) as { probabilities: number[][] };
  close(one.probabilities, [expected['iris-v1'].probabilities[1] as number[]]);
  // CSV in, CSV out (the first output, one row per line).
  const csv = await invoke(tb, 'iris', rows.map((r) => r.join(',')).join('\n'), 'text/csv', 'text/csv');
  assert.equal(csv.contentType, 'text/csv');
  close(csv.body.trim().split('\n').map((l) => l.split(',').map(Number)), expected['iris-v1'].probabilities);

  const wrongShape = await modelError(invoke(tb, 'iris', JSON.stringify([[1, 2, 3], [4, 5, 6]])));
  assert.equal(wrongShape.OriginalStatusCode, 400);
  assert.equal(wrongShape.OriginalMessage, 'Input "features" expects shape [batch, 4] of float32; got [2, 3].');
  const ragged = await modelError(invoke(tb, 'iris', JSON.stringify([[1, 2, 3, 4], [1, 2]])));
  assert.match(ragged.OriginalMessage ?? '', /is not a rectangular array/);
  const badType = await modelError(invoke(tb, 'iris', 'x', 'application/x-npy'));
  assert.equal(badType.OriginalStatusCode, 415);
  const badAccept = await modelError(invoke(tb, 'iris', JSON.stringify(rows), 'application/json', 'application/x-protobuf'));
  assert.equal(badAccept.OriginalStatusCode, 406);
  const badCsv = await modelError(invoke(tb, 'iris', '1,2,x,4', 'text/csv'));
  assert.equal(badCsv.OriginalMessage, 'CSV line 1, column 3 is not a number: "x".');
  const notJson = await modelError(invoke(tb, 'iris', '{oops'));
  assert.match(notJson.OriginalMessage ?? '', /^The body is not valid JSON/);
});

test('berth/onnx: named tensors of several types, and a model folder without a model fails the endpoint', async (t) => {
  const tb = await startTestBerth(t);
  await deploy(tb, 'two', 'berth/onnx', artifact(tb.dir, 'two', { 'sum.onnx': join(MODELS, 'two-inputs.onnx') }));
  const { a, b, outputs } = expected.two_inputs;
  const out = JSON.parse((await invoke(tb, 'two', JSON.stringify({ inputs: { a, b } }))).body) as { sum: number[][] };
  close(out.sum, outputs.sum);
  const bare = await modelError(invoke(tb, 'two', JSON.stringify(a)));
  assert.equal(bare.OriginalMessage, 'This model has 2 inputs (a, b); send them as named tensors {"name": array}.');
  const missing = await modelError(invoke(tb, 'two', JSON.stringify({ a })));
  assert.equal(missing.OriginalMessage, 'Input "b" is missing; this model takes "a" float32 [batch, 3] and "b" int64 [batch, 3].');
  const fractional = await modelError(invoke(tb, 'two', JSON.stringify({ a, b: [[1.5, 2, 3], [1, 2, 3]] })));
  assert.equal(fractional.OriginalMessage, 'Input "b" is int64 but holds 1.5 at position 0.');

  const empty = await deploy(tb, 'empty', 'berth/onnx', artifact(tb.dir, 'empty', { 'README.txt': join(MODELS, 'make_models.py') }));
  assert.equal(empty.status, 'Failed');
  assert.match(empty.reason ?? '', /exited with code 1\. .*Last log lines: berth\/onnx: cannot serve the model in \S+: no \.onnx file in the model folder/);
});

test('berth/node runs JavaScript and TypeScript handlers with the toolkit semantics', async (t) => {
  const tb = await startTestBerth(t);
  assert.equal((await deploy(tb, 'logreg', 'berth/node:1', artifact(tb.dir, 'logreg', {
    code: join(HANDLERS, 'logreg', 'code'), 'handler-weights.json': join(MODELS, 'handler-weights.json'),
  }))).status, 'InService');
  const out = await invoke(tb, 'logreg', JSON.stringify({ rows: expected.iris_rows }));
  const p = (JSON.parse(out.body) as { probability: number[] }).probability;
  close([p], [expected.handler.probability], 1e-12);
  assert.equal(out.custom, 'rows=4');
  const refused = await modelError(invoke(tb, 'logreg', 'a,b', 'text/csv'));
  assert.equal(refused.OriginalStatusCode, 415);
  assert.equal(refused.OriginalMessage, 'expected application/json, got text/csv');

  assert.equal((await deploy(tb, 'ts', 'berth/node', artifact(tb.dir, 'ts', { code: join(HANDLERS, 'typescript', 'code') }))).status, 'InService');
  // Default inputFn: a single CSV row is a flat array; default outputFn: JSON unless Accept asks for CSV.
  assert.deepEqual(JSON.parse((await invoke(tb, 'ts', '3,5', 'text/csv')).body), [[10, 20]]);
  assert.deepEqual(JSON.parse((await invoke(tb, 'ts', JSON.stringify([[1, 3], [5, 7]]))).body), [[0, 10], [20, 30]]);
  const csv = await invoke(tb, 'ts', '1,3\n5,7', 'text/csv', 'text/csv');
  assert.equal(csv.body, '0,10\n20,30\n');
  assert.equal(csv.contentType, 'text/csv');
  const noDecoder = await modelError(invoke(tb, 'ts', 'x', 'application/x-npy'));
  assert.equal(noDecoder.OriginalStatusCode, 415);

  const conflict = await deploy(tb, 'conflict', 'berth/node', artifact(tb.dir, 'conflict', { code: join(HANDLERS, 'conflict', 'code') }));
  assert.equal(conflict.status, 'Failed');
  assert.match(conflict.reason ?? '', /Cannot use transformFn implementation in conjunction with inputFn, predictFn, and\/or outputFn implementation/);

  await deploy(tb, 'failing', 'berth/node', artifact(tb.dir, 'failing', { code: join(HANDLERS, 'failing', 'code') }));
  assert.deepEqual(JSON.parse((await invoke(tb, 'failing', '{}')).body), { ok: true });
  const plain = await modelError(invoke(tb, 'failing', JSON.stringify({ fail: 'plain' })));
  assert.equal(plain.OriginalStatusCode, 500);
  assert.equal(plain.OriginalMessage, 'the model could not score this row');
  const own = await modelError(invoke(tb, 'failing', JSON.stringify({ fail: 'status' })));
  assert.equal(own.OriginalStatusCode, 422);
  const logs = await (await fetch(`${tb.url}/_berth/endpoints/failing/logs`)).text();
  assert.match(logs, /handler error: Error: the model could not score this row\n\s+at (Object\.)?transformFn/);

  const none = await deploy(tb, 'no-handler', 'berth/node', artifact(tb.dir, 'no-handler', { 'model.onnx': join(MODELS, 'iris-v1.onnx') }));
  assert.match(none.reason ?? '', /berth\/node needs a handler at code\/inference\.js or code\/inference\.mjs or code\/inference\.cjs or code\/inference\.ts in the model artifact; found: no code\/ folder/);
});
