// bench/pipeline: what a stage of a serial inference pipeline costs. Three endpoints of passthrough
// stages (berth/node, transformFn returns its input) are measured in one run:
//   one stage (a single container), a pipeline of three stages, and a client that invokes the
//   one-stage endpoint three times in a row, passing each answer on (what a pipeline replaces).
// Per extra stage: (three-stage latency − one-stage latency) / 2, for the pipeline and for the client.
// Target: under 0.3 ms per extra stage inside berth.
//
// Usage: npm run bench:pipeline [-- --requests 3000]
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Pool } from 'undici';
import { CreateEndpointCommand, CreateEndpointConfigCommand, CreateModelCommand, SageMakerClient, waitUntilEndpointInService } from '@aws-sdk/client-sagemaker';
import { median, ROOT, startBerth, table, tempDir } from './lib.js';

const { values } = parseArgs({ options: { requests: { type: 'string', default: '3000' } } });
const requests = Number(values.requests);
const BODY = JSON.stringify([[5.1, 3.5, 1.4, 0.2]]);

async function main(): Promise<void> {
  const dir = tempDir();
  const tarball = join(dir, 'passthrough.tar.gz');
  execFileSync('tar', ['-czf', tarball, '-C', join(ROOT, 'bench', 'fixtures', 'passthrough'), '.']);
  const { url } = await startBerth(join(dir, 'data'));
  const sm = new SageMakerClient({ endpoint: url, region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'x' } });
  const stage = (name: string) => ({ ContainerHostname: name, Image: 'berth/node', ModelDataUrl: `file://${tarball}` });
  await sm.send(new CreateModelCommand({ ModelName: 'one', PrimaryContainer: { Image: 'berth/node', ModelDataUrl: `file://${tarball}` } }));
  await sm.send(new CreateModelCommand({ ModelName: 'three', Containers: [stage('a'), stage('b'), stage('c')] }));
  for (const m of ['one', 'three']) {
    await sm.send(new CreateEndpointConfigCommand({ EndpointConfigName: m, ProductionVariants: [{ VariantName: 'AllTraffic', ModelName: m, InstanceType: 'ml.m5.large', InitialInstanceCount: 1 }] }));
    await sm.send(new CreateEndpointCommand({ EndpointName: m, EndpointConfigName: m }));
    await waitUntilEndpointInService({ client: sm, maxWaitTime: 60, minDelay: 1, maxDelay: 1 }, { EndpointName: m });
  }
  sm.destroy();
  const pool = new Pool(url, { connections: 1 });
  const call = async (endpoint: string, body: string | Buffer, contentType: string): Promise<{ body: Buffer; contentType: string }> => {
    const res = await pool.request({ path: `/endpoints/${endpoint}/invocations`, method: 'POST', body, headers: { 'content-type': contentType } });
    const out = Buffer.from(await res.body.arrayBuffer());
    if (res.statusCode !== 200) throw new Error(`${endpoint}: ${res.statusCode} ${out.toString()}`);
    return { body: out, contentType: String(res.headers['content-type']) };
  };
  const measure = async (fn: () => Promise<void>): Promise<number> => {
    for (let i = 0; i < Math.min(500, requests); i++) await fn();
    const samples: number[] = [];
    for (let i = 0; i < requests; i++) {
      const t = process.hrtime.bigint();
      await fn();
      samples.push(Number(process.hrtime.bigint() - t) / 1e6);
    }
    return median(samples);
  };
  const one = await measure(async () => { await call('one', BODY, 'application/json'); });
  const three = await measure(async () => { await call('three', BODY, 'application/json'); });
  const chained = await measure(async () => {
    let r = await call('one', BODY, 'application/json');
    r = await call('one', r.body, r.contentType);
    await call('one', r.body, r.contentType);
  });
  await pool.close();
  const perStagePipeline = (three - one) / 2;
  const perStageClient = (chained - one) / 2;
  console.log(`\nbench/pipeline: passthrough berth/node stages, one request at a time, ${requests} requests each, p50\n`);
  table(['measure', 'p50 ms'], [
    ['one stage (single container)', one],
    ['pipeline of three stages (berth chains them)', three],
    ['client chaining the one-stage endpoint three times', chained],
  ]);
  console.log('');
  table(['per extra stage', 'ms', 'target', 'met'], [
    ['inside berth\'s pipeline', perStagePipeline, '< 0.3', perStagePipeline < 0.3 ? 'yes' : 'no'],
    ['client chaining (baseline)', perStageClient, '', ''],
    ['pipeline / client', perStagePipeline / perStageClient, '', ''],
  ]);
}

main().then(() => process.exit(0), (err: unknown) => {
  console.error(err);
  process.exit(1);
});
