// Multi-container endpoints through the SDK: a three-stage inference pipeline from real artifacts
// (JavaScript pre-processor, the XGBoost model, JavaScript post-processor) against the same three
// steps run one after another by the client, direct invocation of several kinds of container, and
// the error cases.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CreateModelCommand, DescribeEndpointCommand, DescribeModelCommand } from '@aws-sdk/client-sagemaker';
import { InvokeEndpointCommand, ModelError } from '@aws-sdk/client-sagemaker-runtime';
import { artifact, deployModel, isRunning, ROOT, startTestBerth, waitFor } from './helpers.js';
import type { TestBerth } from './helpers.js';

const FIX = join(ROOT, 'test', 'fixtures');
const bikeRows = readFileSync(join(FIX, 'xgboost', 'bike.csv'), 'utf8').trim().split('\n').map((l) => l.split(',').map(Number));
// The rows as a user records them: °F and %.
const userRows = bikeRows.map(([h, c, hum, w]) => [h, ((c as number) * 9) / 5 + 32, (hum as number) * 100, w].join(',')).join('\n');

const deploy = deployModel;

async function invoke(tb: TestBerth, name: string, body: string, contentType?: string, accept?: string, target?: string): Promise<{ body: string; contentType?: string }> {
  const out = await tb.rt.send(new InvokeEndpointCommand({ EndpointName: name, Body: Buffer.from(body), ContentType: contentType, Accept: accept, TargetContainerHostname: target }));
  return { body: Buffer.from(out.Body ?? []).toString(), contentType: out.ContentType };
}

test('a serial inference pipeline gives what its three stages give when run one after another', async (t) => {
  const tb = await startTestBerth(t);
  const pre = { ContainerHostname: 'pre', Image: 'berth/node', ModelDataUrl: artifact(tb.dir, 'pre', { code: join(FIX, 'handlers', 'pipeline-pre', 'code') }) };
  const model = { ContainerHostname: 'model', Image: '683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1', ModelDataUrl: artifact(tb.dir, 'model', { 'xgboost-model': join(FIX, 'xgboost', 'models', 'bike-v2.bin') }) };
  const post = { ContainerHostname: 'post', Image: 'berth/node', ModelDataUrl: artifact(tb.dir, 'post', { code: join(FIX, 'handlers', 'pipeline-post', 'code') }) };
  assert.deepEqual(await deploy(tb, 'bikes', { Containers: [pre, model, post] }), { status: 'InService', reason: undefined });
  const d = await tb.sm.send(new DescribeEndpointCommand({ EndpointName: 'bikes' }));
  assert.deepEqual(d.ProductionVariants?.[0]?.DeployedImages?.map((i) => i.SpecifiedImage), ['berth/node', model.Image, 'berth/node']);
  const described = await tb.sm.send(new DescribeModelCommand({ ModelName: 'bikes' }));
  assert.deepEqual(described.Containers?.map((c) => c.ContainerHostname), ['pre', 'model', 'post']);

  const piped = await invoke(tb, 'bikes', userRows, 'text/csv', 'application/json');
  assert.equal(piped.contentType, 'application/json');

  // The same three steps, each on its own endpoint, chained by the client.
  await deploy(tb, 'step-pre', { PrimaryContainer: { Image: pre.Image, ModelDataUrl: pre.ModelDataUrl } });
  await deploy(tb, 'step-model', { PrimaryContainer: { Image: model.Image, ModelDataUrl: model.ModelDataUrl } });
  await deploy(tb, 'step-post', { PrimaryContainer: { Image: post.Image, ModelDataUrl: post.ModelDataUrl } });
  const s1 = await invoke(tb, 'step-pre', userRows, 'text/csv');
  const s2 = await invoke(tb, 'step-model', s1.body, s1.contentType);
  const s3 = await invoke(tb, 'step-post', s2.body, s2.contentType, 'application/json');
  assert.equal(piped.body, s3.body);
  const labels = JSON.parse(piped.body) as { rentals: number; demand: string }[];
  assert.equal(labels.length, 24);
  // Rush hours on a working day are busier than the night.
  assert.ok((labels[8]?.rentals ?? 0) > (labels[3]?.rentals ?? Infinity));

  // A failing stage is named, with its status.
  const err = await invoke(tb, 'bikes', userRows, 'text/csv', 'text/csv').catch((e: unknown) => e);
  assert.ok(err instanceof ModelError);
  assert.equal(err.OriginalStatusCode, 406);
  assert.equal(err.message, 'Received client error (406) from post with message "this pipeline answers application/json, not text/csv". See the instance logs (berth logs bikes) for more information.');
});

test('direct invocation reaches each container by hostname; errors name what to fix', async (t) => {
  const tb = await startTestBerth(t);
  assert.equal((await deploy(tb, 'many', {
    InferenceExecutionConfig: { Mode: 'Direct' },
    Containers: [
      { ContainerHostname: 'iris', Image: 'berth/onnx', ModelDataUrl: artifact(tb.dir, 'iris', { 'model.onnx': join(FIX, 'models', 'iris-v1.onnx') }) },
      { ContainerHostname: 'bikes', Image: 'berth/xgboost', ModelDataUrl: artifact(tb.dir, 'bikes', { 'xgboost-model': join(FIX, 'xgboost', 'models', 'bike-v2.bin') }) },
      { ContainerHostname: 'echo', Image: 'echo' },
    ],
  })).status, 'InService');
  const iris = JSON.parse((await invoke(tb, 'many', '[[5.1, 3.5, 1.4, 0.2]]', 'application/json', undefined, 'iris')).body) as { label: number[] };
  assert.deepEqual(iris.label, [2]);
  const bikes = (await invoke(tb, 'many', bikeRows.map((r) => r.join(',')).join('\n'), 'text/csv', undefined, 'bikes')).body.trim().split('\n');
  assert.equal(bikes.length, 24);
  const echo = JSON.parse((await invoke(tb, 'many', 'hello', 'text/plain', undefined, 'echo')).body) as { bodyBase64: string };
  assert.equal(Buffer.from(echo.bodyBase64, 'base64').toString(), 'hello');

  // Per-container metrics, under SageMaker's names and dimensions.
  await invoke(tb, 'many', '[[5.1, 3.5, 1.4, 0.2]]', 'application/json', undefined, 'iris');
  await invoke(tb, 'many', 'not json', 'application/json', undefined, 'iris').catch(() => undefined);
  const metrics = await (await fetch(`${tb.url}/metrics`)).text();
  assert.match(metrics, /^Invocations\{EndpointName="many",VariantName="AllTraffic",ContainerName="iris"\} 3$/m);
  assert.match(metrics, /^Invocations\{EndpointName="many",VariantName="AllTraffic",ContainerName="bikes"\} 1$/m);
  assert.match(metrics, /^Invocations\{EndpointName="many",VariantName="AllTraffic",ContainerName="echo"\} 1$/m);
  assert.match(metrics, /^Invocation4XXErrors\{EndpointName="many",VariantName="AllTraffic",ContainerName="iris"\} 1$/m);
  assert.match(metrics, /^ModelLatency_count\{EndpointName="many",VariantName="AllTraffic",ContainerName="iris"\} 2$/m);

  await assert.rejects(invoke(tb, 'many', '{}', 'application/json'), {
    name: 'ValidationError', message: 'Endpoint many invokes its containers directly (InferenceExecutionConfig Mode Direct): set TargetContainerHostname to one of: iris, bikes, echo.',
  });
  await assert.rejects(invoke(tb, 'many', '{}', 'application/json', undefined, 'nope'), {
    name: 'ValidationError', message: 'The container hostname "nope" is not present on endpoint many; its containers are: iris, bikes, echo.',
  });
  await deploy(tb, 'single', { PrimaryContainer: { Image: 'echo' } });
  await assert.rejects(invoke(tb, 'single', '{}', 'application/json', undefined, 'echo'), { name: 'ValidationError', message: /is not a multi-container endpoint in Direct mode/ });
});

test('validation of multi-container models, and a crashing container replaces the whole instance', async (t) => {
  const tb = await startTestBerth(t);
  await assert.rejects(tb.sm.send(new CreateModelCommand({
    ModelName: 'mme-pipe', Containers: [{ Image: 'echo', Mode: 'MultiModel', ModelDataUrl: 's3://b/models/' }, { Image: 'echo' }],
  })), { name: 'ValidationException', message: /MultiModel mode must be the only container/ });
  await assert.rejects(tb.sm.send(new CreateModelCommand({
    ModelName: 'direct-unnamed', InferenceExecutionConfig: { Mode: 'Direct' }, Containers: [{ Image: 'echo' }, { Image: 'echo' }],
  })), { name: 'ValidationException', message: /Mode Direct needs a ContainerHostname on every container/ });
  const tooMany = Array.from({ length: 16 }, () => ({ Image: 'echo' }));
  await assert.rejects(tb.sm.send(new CreateModelCommand({ ModelName: 'too-many', Containers: tooMany })),
    { name: 'ValidationException', message: "1 validation error detected: Value '[{\"Image\":\"echo\"}, {\"Image\":\"echo\"}, {\"Image\":\"echo\"}, {\"Image\":\"echo\"}, {\"Image\":\"echo\"}, {\"Image\":\"echo\"}, {\"Image\":\"echo\"}, {\"Image\":\"echo\"}, {\"Image\":\"echo\"}, {\"Image\":\"echo\"}, {\"Image\":\"echo\"}, {\"Image\":\"echo\"}, {\"Image\":\"echo\"}, {\"Image\":\"echo\"}, {\"Image\":\"echo\"}, {\"Image\":\"echo\"}]' at 'containers' failed to satisfy constraint: Member must have length less than or equal to 15" });

  // Two echo containers as a pipeline; unnamed, they are container_1 and container_2.
  assert.equal((await deploy(tb, 'pair', { Containers: [{ Image: 'echo', Environment: { ECHO_LABEL: 'first' } }, { Image: 'echo', Environment: { ECHO_LABEL: 'second' } }] })).status, 'InService');
  const last = JSON.parse((await invoke(tb, 'pair', 'x', 'text/plain')).body) as { label: string; pid: number; contentType: string };
  assert.equal(last.label, 'second');
  assert.equal(last.contentType, 'application/json', "the first container's Content-Type reaches the second");
  // At most 5 MB passes between the containers of a pipeline, as on SageMaker.
  const big = await invoke(tb, 'pair', JSON.stringify({ action: 'big', bytes: 5_500_000 }), 'application/json').catch((e: unknown) => e);
  assert.ok(big instanceof ModelError);
  assert.match(big.message, /^Received server error \(500\) from container_1 with message "the answer of container container_1 is 5500000 bytes, more than the 5242880 bytes one container of an inference pipeline may pass to the next"/);
  const crash = await invoke(tb, 'pair', JSON.stringify({ action: 'crash' }), 'application/json').catch((e: unknown) => e);
  assert.ok(crash instanceof ModelError);
  assert.match(crash.message, /^Received server error \(0\) from container_1 with message "The connection to container container_1 closed before it answered/);
  // The healthy second container goes with the first: the instance is replaced whole.
  await waitFor(() => (isRunning(last.pid) ? undefined : true), 10_000, 'the second container of the failed instance to stop');
  const again = await waitFor(async () => {
    const out = await invoke(tb, 'pair', 'x', 'text/plain').catch(() => undefined);
    return out ? (JSON.parse(out.body) as { pid: number }) : undefined;
  }, 15_000, 'a replacement instance');
  assert.notEqual(again.pid, last.pid);

  // A container that cannot start fails the endpoint, naming it.
  const broken = await deploy(tb, 'broken-pair', { Containers: [{ ContainerHostname: 'ok', Image: 'echo' }, { ContainerHostname: 'bad', Image: 'echo', Environment: { ECHO_FAIL_AT_START: '1' } }] });
  assert.equal(broken.status, 'Failed');
  assert.match(broken.reason ?? '', /^The containers for production variant AllTraffic did not pass the ping health check: container bad: the container process exited with code 3\. Commands: ok: \S+ \S+ serve; bad: \S+ \S+ serve\./);
  assert.match(broken.reason ?? '', /\[bad\] echo-container: refusing to start/);
});
