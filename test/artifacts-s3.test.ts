// Model data from S3 (a real S3 API on loopback) through the SDK: served, refreshed by ETag, and each
// failure mode with its FailureReason.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { CreateBucketCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import type { ContainerDefinition } from '@aws-sdk/client-sagemaker';
import { InvokeEndpointCommand } from '@aws-sdk/client-sagemaker-runtime';
import { deployModel, makeModelTarGz, ROOT, startMoto, startTestBerth } from './helpers.js';
import type { TestBerth } from './helpers.js';

const deploy = (tb: TestBerth, name: string, container: ContainerDefinition) => deployModel(tb, name, { PrimaryContainer: { Image: 'echo', ...container } });

async function weights(tb: TestBerth, name: string): Promise<unknown> {
  const out = await tb.rt.send(new InvokeEndpointCommand({ EndpointName: name, Body: Buffer.from('{}'), ContentType: 'application/json' }));
  const echo = JSON.parse(Buffer.from(out.Body ?? []).toString()) as { weights: unknown; modelFiles: string[] };
  return { weights: echo.weights, files: echo.modelFiles };
}

// berth reads S3 with the SDK's default credential chain, as a user's shell would provide it.
process.env['AWS_ACCESS_KEY_ID'] ??= 'test';
process.env['AWS_SECRET_ACCESS_KEY'] ??= 'test';

test('s3:// model data: served, cached by ETag, prefixes and uncompressed objects, and clear failures', async (t) => {
  const { endpoint, s3 } = await startMoto(t);
  const tb = await startTestBerth(t, { s3Endpoint: endpoint });
  await s3.send(new CreateBucketCommand({ Bucket: 'models' }));
  const tarball = readFileSync(makeModelTarGz(tb.dir, { 'weights.txt': 's3-v1' }));
  await s3.send(new PutObjectCommand({ Bucket: 'models', Key: 'bike/model.tar.gz', Body: tarball }));

  assert.deepEqual(await deploy(tb, 'from-s3', { ModelDataUrl: 's3://models/bike/model.tar.gz' }), { status: 'InService', reason: undefined });
  assert.deepEqual(await weights(tb, 'from-s3'), { weights: 's3-v1', files: ['weights.txt'] });

  // A new object under the same key has a new ETag: a new endpoint gets the new bytes.
  await s3.send(new PutObjectCommand({ Bucket: 'models', Key: 'bike/model.tar.gz', Body: readFileSync(makeModelTarGz(tb.dir, { 'weights.txt': 's3-v2' }, 'v2.tar.gz')) }));
  await deploy(tb, 'from-s3-again', { ModelDataUrl: 's3://models/bike/model.tar.gz' });
  assert.deepEqual(await weights(tb, 'from-s3-again'), { weights: 's3-v2', files: ['weights.txt'] });

  // ModelDataSource: uncompressed objects under a prefix, laid out by their relative keys.
  await s3.send(new PutObjectCommand({ Bucket: 'models', Key: 'raw/weights.txt', Body: 'raw-prefix' }));
  await s3.send(new PutObjectCommand({ Bucket: 'models', Key: 'raw/tokenizer/vocab.txt', Body: 'a b c' }));
  assert.equal((await deploy(tb, 'prefix', { ModelDataSource: { S3DataSource: { S3Uri: 's3://models/raw/', S3DataType: 'S3Prefix', CompressionType: 'None' } } })).status, 'InService');
  assert.deepEqual(await weights(tb, 'prefix'), { weights: 'raw-prefix', files: ['tokenizer', 'weights.txt'] });
  assert.equal((await deploy(tb, 'single', { ModelDataSource: { S3DataSource: { S3Uri: 's3://models/raw/weights.txt', S3DataType: 'S3Object', CompressionType: 'None' } } })).status, 'InService');
  assert.deepEqual(await weights(tb, 'single'), { weights: 'raw-prefix', files: ['weights.txt'] });

  const missing = await deploy(tb, 'missing', { ModelDataUrl: 's3://models/nope/model.tar.gz' });
  assert.equal(missing.status, 'Failed');
  assert.equal(missing.reason, 'Variant AllTraffic: Failed to download model data for container "primary" from URL: "s3://models/nope/model.tar.gz": no object exists at that URL.');
  const noBucket = await deploy(tb, 'no-bucket', { ModelDataUrl: 's3://no-such-bucket/model.tar.gz' });
  assert.match(noBucket.reason ?? '', /from URL: "s3:\/\/no-such-bucket\/model\.tar\.gz": (the bucket "no-such-bucket" does not exist|no object exists at that URL)\.$/);

  await s3.send(new PutObjectCommand({ Bucket: 'models', Key: 'plain/model.tar.gz', Body: 'this is not an archive' }));
  const notGzip = await deploy(tb, 'not-gzip', { ModelDataUrl: 's3://models/plain/model.tar.gz' });
  assert.equal(notGzip.reason, 'Variant AllTraffic: Model data for container "primary" from URL "s3://models/plain/model.tar.gz" was refused: it is not gzip-compressed (the first bytes are not 1f 8b); ModelDataUrl must name a model.tar.gz.');

  const hostile = join(tb.dir, 'hostile');
  execFileSync('python3', [join(ROOT, 'test', 'fixtures', 'make_hostile_tars.py'), hostile]);
  await s3.send(new PutObjectCommand({ Bucket: 'models', Key: 'evil/model.tar.gz', Body: readFileSync(join(hostile, 'dotdot.tar.gz')) }));
  const unsafe = await deploy(tb, 'unsafe', { ModelDataUrl: 's3://models/evil/model.tar.gz' });
  assert.equal(unsafe.reason, 'Variant AllTraffic: Model data for container "primary" from URL "s3://models/evil/model.tar.gz" was refused: entry "../../escaped.txt" climbs out of the model folder with "..".');
});
