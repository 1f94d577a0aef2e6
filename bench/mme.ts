// bench/mme: 1,000 small ONNX models (bench/fixtures/make_mme_models.py) under one S3 prefix
// (moto_server on loopback) behind one multi-model endpoint (berth/onnx, one instance) whose memory
// budget holds only a part of them. Measures, in one run:
//   - cold loads: the first call of each model (HEAD, download, unpack, POST /models, invoke), p50/p99;
//   - memory: the most any instance held against its budget, sampled through the whole cold pass;
//   - warm overhead: one loaded model invoked through the multi-model endpoint against the same
//     artifact on a single-model endpoint, with wrk at concurrency 1 and 8.
//
// Usage: npm run bench:mme [-- --models 1000 --seconds 3 --budget-mb 32]
import { execFileSync, spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { CreateBucketCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { createEndpoint, ensurePythonModules, freePort, median, requireTool, ROOT, startBerth, table, tempDir, track, waitForHttp, wrk } from './lib.js';
import type { LoadResult } from './lib.js';

const { values } = parseArgs({ options: { models: { type: 'string', default: '1000' }, seconds: { type: 'string', default: '3' }, 'budget-mb': { type: 'string', default: '32' } } });
const count = Number(values.models);
const seconds = Number(values.seconds);
const budget = Number(values['budget-mb']) * 2 ** 20;
const BODY = JSON.stringify([[5.1, 3.5, 1.4, 0.2]]);
const CREDENTIALS = { AWS_ACCESS_KEY_ID: 'bench', AWS_SECRET_ACCESS_KEY: 'bench', AWS_REGION: 'us-east-1' };

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] as number;
}

async function main(): Promise<void> {
  requireTool('wrk', 'wrk');
  requireTool('moto_server', 'python3-moto (or pip install "moto[server]")');
  ensurePythonModules(['onnx', 'numpy'], ['onnx', 'numpy']);
  const dir = tempDir();
  const models = join(dir, 'models');
  execFileSync('python3', [join(ROOT, 'bench', 'fixtures', 'make_mme_models.py'), String(count), models], { stdio: 'inherit' });

  console.error('models written; starting moto_server');
  const port = await freePort();
  track(spawn('moto_server', ['-H', '127.0.0.1', '-p', String(port)], { stdio: 'ignore' }));
  const s3Url = `http://127.0.0.1:${port}`;
  await waitForHttp(`${s3Url}/`);
  const s3 = new S3Client({ endpoint: s3Url, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: 'bench', secretAccessKey: 'bench' } });
  await s3.send(new CreateBucketCommand({ Bucket: 'bench' }));
  const files = readdirSync(models).sort();
  for (let i = 0; i < files.length; i += 16) {
    await Promise.all(files.slice(i, i + 16).map((f) => s3.send(new PutObjectCommand({ Bucket: 'bench', Key: `models/${f}`, Body: readFileSync(join(models, f)) }))));
  }
  s3.destroy();
  console.error('models uploaded; starting berth');

  const { url } = await startBerth(join(dir, 'data'), {
    env: { ...CREDENTIALS, AWS_ENDPOINT_URL_S3: s3Url, BERTH_MULTI_MODEL_MEMORY_BUDGET_BYTES: String(budget) },
  });
  await createEndpoint(url, 'mme', { Image: 'berth/onnx', Mode: 'MultiModel', ModelDataUrl: 's3://bench/models/' });
  await createEndpoint(url, 'single', { Image: 'berth/onnx', ModelDataUrl: 's3://bench/models/m-0000.tar.gz' });

  console.error('endpoints in service; cold pass');
  // Cold: every model's first call, one at a time.
  const cold: number[] = [];
  let mostHeld = 0;
  let mostModels = 0;
  let overBudget = 0;
  const sample = async () => {
    const view = (await (await fetch(`${url}/_berth/endpoints/mme/models`)).json()) as { instances: { memoryUsedBytes: number; memoryBudgetBytes: number; models: unknown[] }[] };
    for (const i of view.instances) {
      mostHeld = Math.max(mostHeld, i.memoryUsedBytes);
      mostModels = Math.max(mostModels, i.models.length);
      if (i.memoryUsedBytes > i.memoryBudgetBytes) overBudget += 1;
    }
  };
  for (const [i, f] of files.entries()) {
    const started = process.hrtime.bigint();
    const res = await fetch(`${url}/endpoints/mme/invocations`, { method: 'POST', body: BODY, headers: { 'content-type': 'application/json', 'x-amzn-sagemaker-target-model': f } });
    await res.arrayBuffer();
    cold.push(Number(process.hrtime.bigint() - started) / 1e6);
    if (res.status !== 200) throw new Error(`${f}: HTTP ${res.status}`);
    if (i % 10 === 9) await sample();
  }
  await sample();
  const metrics = await (await fetch(`${url}/metrics`)).text();
  const avg = (name: string) => {
    const sum = Number(new RegExp(`^${name}_sum\\{EndpointName="mme",VariantName="AllTraffic"\\} (\\S+)`, 'm').exec(metrics)?.[1] ?? NaN);
    const n = Number(new RegExp(`^${name}_count\\{EndpointName="mme",VariantName="AllTraffic"\\} (\\S+)`, 'm').exec(metrics)?.[1] ?? NaN);
    return { avgMs: sum / n / 1000, n };
  };

  console.log(`\n${count} models, memory budget ${(budget / 2 ** 20).toFixed(0)} MiB on one instance\n`);
  table(['cold first call', 'ms'], [
    ['p50', median(cold)],
    ['p99', percentile(cold, 99)],
    ['of which download + unpack (mean)', avg('ModelDownloadingTime').avgMs],
    ['of which POST /models (mean)', avg('ModelLoadingTime').avgMs],
  ]);
  console.log('');
  table(['memory', 'value'], [
    ['budget MiB', budget / 2 ** 20],
    ['most held MiB', mostHeld / 2 ** 20],
    ['held / budget', mostHeld / budget],
    ['samples over budget', overBudget],
    ['most models loaded at once', mostModels],
    ['unloads', avg('ModelUnloadingTime').n],
  ]);

  // Warm: the same model, loaded, through each endpoint. The machine is shared and noisy, so the two
  // endpoints run back to back in six short rounds (alternating which goes first); each round gives a
  // paired ratio, and the medians are reported.
  const rows: (string | number)[][] = [];
  const mmeHeaders = { 'X-Amzn-SageMaker-Target-Model': 'm-0000.tar.gz' };
  for (const c of [1, 8]) {
    wrk(`${url}/endpoints/single/invocations`, BODY, c, 2);
    wrk(`${url}/endpoints/mme/invocations`, BODY, c, 2, mmeHeaders);
    const singles: LoadResult[] = [];
    const multis: LoadResult[] = [];
    for (let round = 0; round < 6; round++) {
      const runSingle = () => singles.push(wrk(`${url}/endpoints/single/invocations`, BODY, c, seconds));
      const runMulti = () => multis.push(wrk(`${url}/endpoints/mme/invocations`, BODY, c, seconds, mmeHeaders));
      if (round % 2 === 0) { runSingle(); runMulti(); } else { runMulti(); runSingle(); }
    }
    const errors = [...singles, ...multis].reduce((n, r) => n + r.errors, 0);
    if (errors) throw new Error(`${errors} errors during the warm runs`);
    const p50Ratio = median(multis.map((m, i) => m.p50Ms / (singles[i] as LoadResult).p50Ms));
    const rpsRatio = median(multis.map((m, i) => m.rps / (singles[i] as LoadResult).rps));
    const pick = (rs: LoadResult[]) => [median(rs.map((r) => r.rps)), median(rs.map((r) => r.p50Ms)), median(rs.map((r) => r.p99Ms))];
    rows.push([`single-model, c=${c}`, ...pick(singles), '', '']);
    rows.push([`multi-model, c=${c}`, ...pick(multis), p50Ratio, rpsRatio]);
  }
  console.log('');
  table(['warm, same model (medians of 6 rounds)', 'req/s', 'p50 ms', 'p99 ms', 'p50 multi/single (paired)', 'req/s multi/single (paired)'], rows);
}

main().then(() => process.exit(0), (err: unknown) => {
  console.error(err);
  process.exit(1);
});
