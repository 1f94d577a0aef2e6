// bench/invoke: the same small ONNX model (test/fixtures/models/iris-v1.onnx) served by
//   (a) berth: InvokeEndpoint on a berth/onnx endpoint (gateway + router + model server process),
//   (b) a minimal single-process Node http + onnxruntime-node server,
//   (c) a hand-written FastAPI + uvicorn + onnxruntime Python server,
// each driven by wrk at concurrency 1 and 32 on loopback, in one run. Prints req/s, p50 and p99 and
// berth's ratios to (b) and (c).
//
// Usage: npm run bench:invoke [-- --seconds 10]
import { execFileSync, spawn } from 'node:child_process';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createEndpoint, ensurePythonModules, freePort, requireTool, ROOT, startBerth, table, tempDir, track, waitForHttp, wrk } from './lib.js';
import type { LoadResult } from './lib.js';

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '10' } } });
const seconds = Number(values.seconds);
const MODEL = join(ROOT, 'test', 'fixtures', 'models', 'iris-v1.onnx');
const BODY = JSON.stringify([[5.1, 3.5, 1.4, 0.2]]);

async function berthEndpoint(): Promise<string> {
  const dir = tempDir();
  const model = join(dir, 'model.tar.gz');
  execFileSync('tar', ['-czf', model, '-C', join(ROOT, 'test', 'fixtures', 'models'), '--transform', 's/iris-v1.onnx/model.onnx/', 'iris-v1.onnx']);
  const { url } = await startBerth(join(dir, 'data'));
  await createEndpoint(url, 'iris', { Image: 'berth/onnx', ModelDataUrl: `file://${model}` });
  return `${url}/endpoints/iris/invocations`;
}

async function nodeBaseline(): Promise<string> {
  const port = await freePort();
  track(spawn(process.execPath, [join(ROOT, 'bench', 'baselines', 'node-ort-server.mjs'), MODEL, String(port)], { stdio: 'ignore' }));
  await waitForHttp(`http://127.0.0.1:${port}/ping`);
  return `http://127.0.0.1:${port}/invocations`;
}

async function fastapiBaseline(): Promise<string> {
  const port = await freePort();
  track(spawn('python3', [join(ROOT, 'bench', 'baselines', 'fastapi_ort_server.py'), MODEL, String(port)], { stdio: 'ignore' }));
  await waitForHttp(`http://127.0.0.1:${port}/ping`);
  return `http://127.0.0.1:${port}/invocations`;
}

async function main(): Promise<void> {
  requireTool('wrk', 'wrk');
  ensurePythonModules(['fastapi', 'uvicorn', 'onnxruntime', 'numpy'], ['fastapi', 'uvicorn', 'onnxruntime', 'numpy']);
  const targets: [string, string][] = [
    ['(a) berth', await berthEndpoint()],
    ['(b) node http + onnxruntime-node', await nodeBaseline()],
    ['(c) FastAPI + uvicorn + onnxruntime', await fastapiBaseline()],
  ];
  // Sanity: all three answer the same request the same way before anything is timed.
  const answers = await Promise.all(targets.map(async ([, url]) => (await (await fetch(url, { method: 'POST', body: BODY, headers: { 'content-type': 'application/json' } })).json()) as { probabilities: number[][] }));
  for (const a of answers) {
    if (Math.abs((a.probabilities[0]?.[0] ?? NaN) - (answers[0]?.probabilities[0]?.[0] ?? NaN)) > 1e-6) throw new Error('the servers disagree on the prediction');
  }
  const results = new Map<string, LoadResult>();
  for (const connections of [1, 32]) {
    for (const [name, url] of targets) {
      wrk(url, BODY, connections, Math.min(2, seconds)); // warm-up
      results.set(`${name}@${connections}`, wrk(url, BODY, connections, seconds));
    }
  }
  console.log(`\nbench/invoke: iris-v1.onnx, one JSON row per request, wrk -t1, ${seconds}s per cell\n`);
  const rows: (string | number)[][] = [];
  for (const connections of [1, 32]) {
    for (const [name] of targets) {
      const r = results.get(`${name}@${connections}`) as LoadResult;
      rows.push([name, connections, Math.round(r.rps), r.p50Ms, r.p99Ms, r.errors]);
    }
  }
  table(['server', 'connections', 'req/s', 'p50 ms', 'p99 ms', 'errors'], rows);
  const get = (n: string, c: number) => results.get(`${targets.find(([x]) => x.startsWith(n))?.[0]}@${c}`) as LoadResult;
  const [a1, b1, a32, b32, c32] = [get('(a)', 1), get('(b)', 1), get('(a)', 32), get('(b)', 32), get('(c)', 32)];
  console.log('');
  table(['measure', 'value', 'target', 'met'], [
    ['p50 at c=1: berth − node baseline (ms)', a1.p50Ms - b1.p50Ms, '≤ 0.3', a1.p50Ms - b1.p50Ms <= 0.3 ? 'yes' : 'no'],
    ['req/s at c=32: berth / node baseline', a32.rps / b32.rps, '≥ 0.6', a32.rps / b32.rps >= 0.6 ? 'yes' : 'no'],
    ['req/s at c=32: berth / FastAPI baseline', a32.rps / c32.rps, '≥ 2', a32.rps / c32.rps >= 2 ? 'yes' : 'no'],
    ['req/s at c=1: berth / node baseline', a1.rps / b1.rps, '', ''],
  ]);
}

main().then(() => process.exit(0), (err: unknown) => {
  console.error(err);
  process.exit(1);
});
