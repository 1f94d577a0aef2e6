// The same flows through boto3 and the AWS CLI, the clients most SageMaker users run.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { makeModelTarGz, ROOT, startTestBerth } from './helpers.js';

const run = promisify(execFile);

test('boto3: create, wait, invoke, errors, paginate, delete', async (t) => {
  const tb = await startTestBerth(t);
  const tarball = makeModelTarGz(tb.dir, { 'weights.txt': 'boto' });
  const { stdout } = await run('python3', [join(ROOT, 'test', 'fixtures', 'boto3_smoke.py'), tb.url, pathToFileURL(tarball).href], { timeout: 120_000 });
  const out = JSON.parse(stdout) as Record<string, unknown>;
  assert.equal(out['arn'], 'arn:aws:sagemaker:us-west-2:123456789012:endpoint/boto-ep');
  assert.equal(out['status'], 'InService');
  assert.equal(out['creation_time_type'], 'datetime');
  assert.equal(out['variant'], 'AllTraffic');
  assert.equal(out['content_type'], 'application/json');
  assert.equal(out['custom_attributes'], 'echoed=c=1');
  const echo = out['echo'] as Record<string, unknown>;
  assert.equal(echo['weights'], 'boto');
  assert.equal(Buffer.from(echo['bodyBase64'] as string, 'base64').toString(), '{"x": 1}');
  assert.equal((echo['env'] as Record<string, string>)['MY_SETTING'], 'from-boto3');
  assert.equal((echo['env'] as Record<string, string>)['AWS_REGION'], 'us-west-2');
  assert.deepEqual(out['model_error'], { code: 'ModelError', original_status: 400, original_message: 'no', http: 424 });
  assert.deepEqual(out['not_found'], { code: 'ValidationException', message: 'Could not find endpoint "arn:aws:sagemaker:us-west-2:123456789012:endpoint/missing".' });
  assert.equal(out['duplicate'], 'Cannot create already existing model "arn:aws:sagemaker:us-west-2:123456789012:model/boto-model".');
  assert.deepEqual(out['models'], ['boto-model']);
  assert.equal(out['deleted'], true);
});

test('AWS CLI: the README quick start', async (t) => {
  const tb = await startTestBerth(t);
  const tarball = makeModelTarGz(tb.dir, { 'weights.txt': 'cli' });
  const env = { ...process.env, AWS_ENDPOINT_URL: tb.url, AWS_ACCESS_KEY_ID: 'x', AWS_SECRET_ACCESS_KEY: 'x', AWS_DEFAULT_REGION: 'us-east-1', AWS_REGION: 'us-east-1' };
  const aws = async (...args: string[]) => (await run('aws', args, { env, cwd: tb.dir, timeout: 120_000 })).stdout;
  await aws('sagemaker', 'create-model', '--model-name', 'echo', '--primary-container', `Image=echo:latest,ModelDataUrl=${pathToFileURL(tarball).href}`);
  await aws('sagemaker', 'create-endpoint-config', '--endpoint-config-name', 'echo-cfg', '--production-variants', 'VariantName=AllTraffic,ModelName=echo,InstanceType=ml.m5.large,InitialInstanceCount=1');
  await aws('sagemaker', 'create-endpoint', '--endpoint-name', 'echo-ep', '--endpoint-config-name', 'echo-cfg');
  await aws('sagemaker', 'wait', 'endpoint-in-service', '--endpoint-name', 'echo-ep');
  const meta = JSON.parse(await aws('sagemaker-runtime', 'invoke-endpoint', '--endpoint-name', 'echo-ep', '--content-type', 'application/json', '--body', '{"hello": "cli"}', 'out.json')) as Record<string, string>;
  assert.equal(meta['InvokedProductionVariant'], 'AllTraffic');
  const { readFileSync } = await import('node:fs');
  const echo = JSON.parse(readFileSync(join(tb.dir, 'out.json'), 'utf8')) as Record<string, unknown>;
  assert.equal(echo['weights'], 'cli');
  const failure = await run('aws', ['sagemaker', 'describe-endpoint', '--endpoint-name', 'nope'], { env }).catch((e: { stderr: string }) => e);
  assert.match(failure.stderr, /An error occurred \(ValidationException\) when calling the DescribeEndpoint operation: Could not find endpoint "arn:aws:sagemaker:us-east-1:123456789012:endpoint\/nope"\./);
  await aws('sagemaker', 'delete-endpoint', '--endpoint-name', 'echo-ep');
  await aws('sagemaker', 'wait', 'endpoint-deleted', '--endpoint-name', 'echo-ep');
});
