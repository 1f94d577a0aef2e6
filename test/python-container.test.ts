// berth's Python container through the SDK: users' inference.py on SageMaker's scikit-learn, PyTorch
// and XGBoost image URIs, served from real artifacts (test/fixtures/python/make_models.py and
// make_xgboost.py), outputs checked against the predictions the libraries made for the fixtures.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { InvokeEndpointCommand } from '@aws-sdk/client-sagemaker-runtime';
import { artifact, deployModel, modelError, ROOT, startTestBerth } from './helpers.js';
import type { TestBerth } from './helpers.js';

const DIR = join(ROOT, 'test', 'fixtures', 'python');
const MODELS = join(DIR, 'models');
const HANDLERS = join(DIR, 'handlers');
interface Expected {
  iris_rows: number[][];
  diabetes_rows: number[][];
  iris_logreg_probabilities: number[][];
  iris_logreg_labels: string[];
  diabetes_ridge: number[];
  iris_mlp: number[][];
}
const expected = JSON.parse(readFileSync(join(DIR, 'expected.json'), 'utf8')) as Expected;
const expectedXgb = JSON.parse(readFileSync(join(DIR, 'expected-xgboost.json'), 'utf8')) as { csv_rows: string[]; predictions: number[] };
const ECR = (repo: string, tag: string) => `683313688378.dkr.ecr.us-east-1.amazonaws.com/${repo}:${tag}`;
const SKLEARN = ECR('sagemaker-scikit-learn', '1.2-1-cpu-py3');
const PYTORCH = `763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-inference:2.1.0-cpu-py310`;
const XGBOOST = ECR('sagemaker-xgboost', '1.7-1');

const code = (name: string) => ({ code: join(HANDLERS, name, 'code') });

const deploy = (tb: TestBerth, name: string, image: string, files: Record<string, string>, env?: Record<string, string>) =>
  deployModel(tb, name, { PrimaryContainer: { Image: image, ModelDataUrl: artifact(tb.dir, name, files), Environment: env } });

async function invoke(tb: TestBerth, name: string, body: string | Uint8Array, contentType = 'application/json', accept?: string, custom?: string): Promise<{ body: Buffer; contentType?: string; custom?: string }> {
  const out = await tb.rt.send(new InvokeEndpointCommand({
    EndpointName: name, Body: typeof body === 'string' ? Buffer.from(body) : body, ContentType: contentType, Accept: accept, CustomAttributes: custom,
  }));
  return { body: Buffer.from(out.Body ?? []), contentType: out.ContentType, custom: out.CustomAttributes };
}

const json = <T>(b: Buffer) => JSON.parse(b.toString('utf8')) as T;

function close(actual: number[], wanted: number[], tolerance = 1e-6): void {
  assert.equal(actual.length, wanted.length, `${actual.length} values, wanted ${wanted.length}`);
  actual.forEach((v, i) => assert.ok(Math.abs(v - (wanted[i] as number)) <= tolerance * Math.max(1, Math.abs(wanted[i] as number)), `[${i}] ${v} vs ${wanted[i]}`));
}

/** A minimal .npy file (format 1.0) of float64 rows, as numpy.save writes it. */
function npy(rows: number[][]): Buffer {
  const shape = `(${rows.length}, ${rows[0]?.length ?? 0})`;
  let header = `{'descr': '<f8', 'fortran_order': False, 'shape': ${shape}, }`;
  header += ' '.repeat(64 - ((10 + header.length + 1) % 64)) + '\n';
  const head = Buffer.alloc(10);
  Buffer.from([0x93]).copy(head, 0);
  head.write('NUMPY', 1, 'latin1');
  head.writeUInt8(1, 6);
  head.writeUInt8(0, 7);
  head.writeUInt16LE(header.length, 8);
  const data = Buffer.alloc(rows.length * (rows[0]?.length ?? 0) * 8);
  rows.flat().forEach((v, i) => data.writeDoubleLE(v, i * 8));
  return Buffer.concat([head, Buffer.from(header, 'latin1'), data]);
}

/** Reads a 1-D or 2-D little-endian float .npy body. */
function readNpy(b: Buffer): number[] {
  assert.equal(b.subarray(1, 6).toString('latin1'), 'NUMPY');
  const len = b.readUInt16LE(8);
  const header = b.subarray(10, 10 + len).toString('latin1');
  const descr = /'descr': '([^']+)'/.exec(header)?.[1];
  const data = b.subarray(10 + len);
  const out: number[] = [];
  if (descr === '<f8') for (let i = 0; i < data.length; i += 8) out.push(data.readDoubleLE(i));
  else if (descr === '<f4') for (let i = 0; i < data.length; i += 4) out.push(data.readFloatLE(i));
  else throw new Error(`unexpected dtype ${descr}`);
  return out;
}

test('scikit-learn image with all four hooks: the toolkit errors, code/lib, the context and the status codes', async (t) => {
  const tb = await startTestBerth(t);
  assert.deepEqual(await deploy(tb, 'iris', SKLEARN, { ...code('sklearn-handlers'), 'iris-logreg.joblib': join(MODELS, 'iris-logreg.joblib') }), { status: 'InService', reason: undefined });
  const out = await invoke(tb, 'iris', JSON.stringify({ rows: expected.iris_rows }), 'application/json', undefined, 'trace=1');
  assert.equal(out.contentType, 'application/json');
  assert.equal(out.custom, 'rows=6;asked=trace=1', 'output_fn(prediction, accept, context) reads and sets headers');
  const parsed = json<{ probabilities: number[][]; labels: string[] }>(out.body);
  close(parsed.probabilities.flat(), expected.iris_logreg_probabilities.flat(), 1e-9);
  assert.deepEqual(parsed.labels, expected.iris_logreg_labels);

  const csv = await invoke(tb, 'iris', expected.iris_rows.map((r) => r.join(',')).join('\n'), 'text/csv', 'text/csv');
  assert.equal(csv.contentType, 'text/csv');
  const lines = csv.body.toString().split('\n');
  assert.deepEqual(lines.map((l) => l.split(',')[0]), expected.iris_logreg_labels);
  close(lines.flatMap((l) => l.split(',').slice(1).map(Number)), expected.iris_logreg_probabilities.flat(), 1e-12);

  const unprocessable = await modelError(invoke(tb, 'iris', JSON.stringify({ features: [] })));
  assert.equal(unprocessable.OriginalStatusCode, 422, 'GenericInferenceToolkitError(422, …) answers 422');
  assert.equal(unprocessable.OriginalMessage, 'expected {"rows": [[sepal length, sepal width, petal length, petal width], ...]}');
  const unsupported = await modelError(invoke(tb, 'iris', 'x', 'application/x-npy'));
  assert.equal(unsupported.OriginalStatusCode, 415, "the toolkit's UnsupportedFormatError from input_fn answers 415");
  const raised = await modelError(invoke(tb, 'iris', JSON.stringify({ rows: [[1, 2, 3]] })));
  assert.equal(raised.OriginalStatusCode, 500);
  assert.equal(raised.OriginalMessage, 'ValueError: the model scores rows of 4 features, not (1, 3)');
  const logs = await (await fetch(`${tb.url}/_berth/endpoints/iris/logs`)).text();
  assert.match(logs, /the handler raised during an invocation:\nTraceback \(most recent call last\):\n {2}File "[^"]+\/code\/inference\.py", line \d+, in predict_fn\n.*\nValueError: the model scores rows of 4 features, not \(1, 3\)/);
});

test('model_fn only: the scikit-learn defaults for JSON, CSV (one row and many), NPY in and out, Accept and status codes', async (t) => {
  const tb = await startTestBerth(t);
  const files = { ...code('sklearn-defaults'), 'diabetes-ridge.joblib': join(MODELS, 'diabetes-ridge.joblib') };
  const [ridge, csvDefault, noCode] = await Promise.all([
    deploy(tb, 'ridge', SKLEARN, files),
    deploy(tb, 'ridge-csv', SKLEARN, files, { SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT: 'text/csv' }),
    // berth/python with no code at all: the model file decides (model.joblib → scikit-learn).
    deploy(tb, 'ridge-nocode', 'berth/python', { 'model.joblib': join(MODELS, 'diabetes-ridge.joblib') }),
  ]);
  assert.equal(ridge.status, 'InService', ridge.reason);
  assert.equal(csvDefault.status, 'InService', csvDefault.reason);
  assert.equal(noCode.status, 'InService', noCode.reason);
  const rows = expected.diabetes_rows;
  const want = expected.diabetes_ridge;

  const many = await invoke(tb, 'ridge', JSON.stringify(rows));
  assert.equal(many.contentType, 'application/json');
  close(json<number[]>(many.body), want);
  // One JSON example without its batch dimension is one row.
  close(json<number[]>((await invoke(tb, 'ridge', JSON.stringify(rows[0]))).body), want.slice(0, 1));
  // One CSV row is a 2-D array of one row (SageMaker's image squeezes it to 1-D and fails).
  close(json<number[]>((await invoke(tb, 'ridge', (rows[2] as number[]).join(','), 'text/csv')).body), [want[2] as number]);
  const csvOut = await invoke(tb, 'ridge', rows.map((r) => r.join(',')).join('\n'), 'text/csv; charset=utf-8', 'text/csv');
  assert.equal(csvOut.contentType, 'text/csv');
  close(csvOut.body.toString().trim().split('\n').map(Number), want);
  // NPY round trip: application/x-npy in and out.
  const npyOut = await invoke(tb, 'ridge', npy(rows), 'application/x-npy', 'application/x-npy');
  assert.equal(npyOut.contentType, 'application/x-npy');
  close(readNpy(npyOut.body), want);
  // The first supported type of a list wins; */* and no Accept mean SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT.
  assert.equal((await invoke(tb, 'ridge', JSON.stringify(rows), 'application/json', 'image/png, text/csv;q=0.9')).contentType, 'text/csv');
  assert.equal((await invoke(tb, 'ridge', JSON.stringify(rows), 'application/json', '*/*')).contentType, 'application/json');
  const star = await invoke(tb, 'ridge-csv', JSON.stringify(rows), 'application/json', '*/*');
  assert.equal(star.contentType, 'text/csv');
  close(star.body.toString().trim().split('\n').map(Number), want);
  assert.equal((await invoke(tb, 'ridge-csv', JSON.stringify(rows))).contentType, 'text/csv');
  close(json<number[]>((await invoke(tb, 'ridge-nocode', JSON.stringify(rows))).body), want);

  const badType = await modelError(invoke(tb, 'ridge', 'a b c', 'text/plain'));
  assert.equal(badType.OriginalStatusCode, 415);
  assert.match(badType.OriginalMessage ?? '', /^Content type text\/plain is not supported by this model's default input_fn; supported: application\/json, text\/csv, application\/x-npy, application\/x-npz/);
  const badAccept = await modelError(invoke(tb, 'ridge', JSON.stringify(rows), 'application/json', 'application/xml'));
  assert.equal(badAccept.OriginalStatusCode, 406);
  assert.match(badAccept.OriginalMessage ?? '', /^Accept application\/xml is not supported by this model's default output_fn; supported: application\/json, text\/csv, application\/x-npy/);
  const wrongWidth = await modelError(invoke(tb, 'ridge', '1,2,3', 'text/csv'));
  assert.equal(wrongWidth.OriginalStatusCode, 500);
  assert.match(wrongWidth.OriginalMessage ?? '', /^ValueError: X has 3 features, but Ridge is expecting 10 features as input/);
});

test('transform_fn with the context argument; bodies decoded only for exactly application/json and text/csv', async (t) => {
  const tb = await startTestBerth(t);
  const files = { ...code('sklearn-transform'), 'iris-logreg.joblib': join(MODELS, 'iris-logreg.joblib') };
  assert.equal((await deploy(tb, 'transform', 'sagemaker-scikit-learn', files)).status, 'InService');
  const out = await invoke(tb, 'transform', JSON.stringify(expected.iris_rows), 'application/json', '*/*');
  assert.deepEqual(json<{ labels: number[] }>(out.body).labels, expected.iris_logreg_labels.map((l) => ['setosa', 'versicolor', 'virginica'].indexOf(l)));
  assert.equal(out.custom, 'accept=application/json', 'Accept */* reached transform_fn as the default');
  const raw = json<{ body_type: string; content_type: string }>((await invoke(tb, 'transform', '[[1,2,3,4]]', 'application/json; charset=utf-8')).body);
  assert.deepEqual(raw, { body_type: 'bytes', content_type: 'application/json; charset=utf-8' });
});

test('PyTorch image: a TorchScript model.pt served by the defaults, JSON and CSV in, JSON and CSV out', async (t) => {
  const tb = await startTestBerth(t);
  assert.deepEqual(await deploy(tb, 'mlp', PYTORCH, { 'model.pt': join(MODELS, 'iris-mlp.pt') }), { status: 'InService', reason: undefined });
  close(json<number[][]>((await invoke(tb, 'mlp', JSON.stringify(expected.iris_rows))).body).flat(), expected.iris_mlp.flat(), 1e-5);
  const csv = await invoke(tb, 'mlp', expected.iris_rows.map((r) => r.join(',')).join('\n'), 'text/csv', 'text/csv');
  assert.equal(csv.contentType, 'text/csv');
  close(csv.body.toString().trim().split('\n').flatMap((l) => l.split(',').map(Number)), expected.iris_mlp.flat(), 1e-5);
  const one = await invoke(tb, 'mlp', (expected.iris_rows[4] as number[]).join(','), 'text/csv');
  close(json<number[][]>(one.body).flat(), expected.iris_mlp[4] as number[], 1e-5);
});

test('XGBoost image: SAGEMAKER_PROGRAM selects framework mode on the Python container; without it, algorithm mode', async (t) => {
  // Debian's python3-xgboost is the interpreter with the xgboost module on this machine.
  const tb = await startTestBerth(t, { python: '/usr/bin/python3' });
  const files = { ...code('xgboost-framework'), 'xgboost-model': join(MODELS, 'xgboost-model') };
  const [framework, algorithm] = await Promise.all([
    deploy(tb, 'xgb-framework', XGBOOST, files, { SAGEMAKER_PROGRAM: 'inference.py' }),
    deploy(tb, 'xgb-algorithm', XGBOOST, { 'xgboost-model': join(MODELS, 'xgboost-model') }),
  ]);
  assert.equal(framework.status, 'InService', framework.reason);
  assert.equal(algorithm.status, 'InService', algorithm.reason);
  const body = expectedXgb.csv_rows.join('\n');
  const out = await invoke(tb, 'xgb-framework', body, 'text/csv');
  assert.equal(out.contentType, 'application/json', "framework mode answers in the toolkit's default Accept");
  close(json<number[]>(out.body), expectedXgb.predictions);
  close(json<number[]>((await invoke(tb, 'xgb-framework', expectedXgb.csv_rows[1] as string, 'text/csv')).body), expectedXgb.predictions.slice(1, 2));
  const libsvm = expectedXgb.csv_rows.map((r) => `0 ${r.split(',').map((v, i) => `${i + 1}:${v}`).join(' ')}`).join('\n');
  close(json<number[]>((await invoke(tb, 'xgb-framework', libsvm, 'text/libsvm')).body), expectedXgb.predictions);
  const alg = await invoke(tb, 'xgb-algorithm', body, 'text/csv');
  assert.equal(alg.contentType, 'text/csv');
  close(alg.body.toString().trim().split('\n').map(Number), expectedXgb.predictions);
  const described = await fetch(`${tb.url}/_berth/endpoints/xgb-framework/logs`).then((r) => r.text());
  assert.match(described, /berth\/python: xgboost framework, \d+ worker\(s\)/);
});

test('errors a person can act on: the endpoint fails with the Python error in FailureReason', async (t) => {
  const tb = await startTestBerth(t);
  const model = { 'model.joblib': join(MODELS, 'iris-logreg.joblib') };
  const [conflict, importError, raises, missing, noModel] = await Promise.all([
    deploy(tb, 'conflict', SKLEARN, { ...model, ...code('transform-conflict') }),
    deploy(tb, 'import-error', SKLEARN, { ...model, ...code('import-error') }),
    deploy(tb, 'raises', SKLEARN, { ...model, ...code('model-fn-raises') }),
    deploy(tb, 'missing', SKLEARN, { ...model, ...code('sklearn-defaults') }, { SAGEMAKER_PROGRAM: 'serve.py' }),
    deploy(tb, 'no-model', PYTORCH, { 'README.txt': join(DIR, 'make_models.py') }),
  ]);
  for (const r of [conflict, importError, raises, missing, noModel]) assert.equal(r.status, 'Failed');
  assert.match(conflict.reason ?? '', /Last log lines: .*berth\/python: Cannot use transform_fn implementation in conjunction with input_fn, predict_fn, and\/or output_fn implementation/);
  assert.match(importError.reason ?? '', /berth\/python: cannot import the handler module code\/inference\.py: \| Traceback \(most recent call last\): \| {3}File "[^"]+\/code\/inference\.py", line 3, in <module> \| {5}import berth_no_such_module {2}# noqa: F401 \| ModuleNotFoundError: No module named 'berth_no_such_module'$/);
  assert.match(raises.reason ?? '', /berth\/python: model_fn failed in worker \d \(pid \d+\): \| Traceback \(most recent call last\): \| {3}File "[^"]+\/code\/inference\.py", line 10, in model_fn \| .* \| {3}File "[^"]+\/code\/inference\.py", line 5, in load_weights \| .* \| FileNotFoundError: \[Errno 2\] No such file or directory: '[^']+\/weights\.bin'$/);
  assert.match(missing.reason ?? '', /SAGEMAKER_PROGRAM=serve\.py names code\/serve\.py, which is not in the model artifact \(code\/ holds: inference\.py\)\.$/);
  assert.match(noModel.reason ?? '', /the PyTorch default needs model\.pt or exactly one \.pth or \.pt file in the model folder, which holds: README\.txt\.$/);
  for (const r of [conflict, importError, raises, missing, noModel]) assert.match(r.reason ?? '', /exited with code 1/);
});

test('code/requirements.txt is installed only when the operator turns pythonInstallRequirements on', async (t) => {
  const off = await startTestBerth(t);
  const files = code('requirements');
  const skipped = await deploy(off, 'reqs', SKLEARN, files);
  assert.equal(skipped.status, 'Failed');
  assert.match(skipped.reason ?? '', /code\/requirements\.txt is not installed: berth's pythonInstallRequirements setting is off.*ModuleNotFoundError: No module named 'berth_tinydep'/);
  const on = await startTestBerth(t, { pythonInstallRequirements: true });
  assert.deepEqual(await deploy(on, 'reqs', SKLEARN, files), { status: 'InService', reason: undefined });
  assert.deepEqual(json<{ greeting: string }>((await invoke(on, 'reqs', '{}')).body), { greeting: 'installed from code/requirements.txt' });
});
