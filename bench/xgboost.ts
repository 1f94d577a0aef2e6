// bench/xgboost: one XGBoost model and one set of rows, measured three ways in one run:
//   (a) berth's evaluator in process (trees compiled to JavaScript),
//   (b) berth's endpoint over HTTP (InvokeEndpoint with CSV, one request at a time),
//   (c) xgboost's own predict / inplace_predict in Python (Debian's python3-xgboost).
// Targets: (a) single-row latency ≥ 20× lower than xgboost's inplace_predict; (a) batch rows/s at
// least xgboost's for batches of 1, 100 and 100,000 rows.
//
// Usage: npm run bench:xgboost [-- --model test/fixtures/xgboost/models/bike-v2.bin]
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { compile } from '../src/container/xgboost/compile.js';
import type { CompiledModel } from '../src/container/xgboost/compile.js';
import { readModel } from '../src/container/xgboost/model.js';
import { ParallelModel } from '../src/container/xgboost/parallel.js';
import { createEndpoint, median, requireTool, ROOT, startBerth, table, tempDir } from './lib.js';

const { values } = parseArgs({ options: { model: { type: 'string', default: join('test', 'fixtures', 'xgboost', 'models', 'bike-v2.bin') }, rows: { type: 'string', default: '100000' } } });
const modelPath = resolve(ROOT, values.model);
const N = Number(values.rows);

function rows(cols: number): Float32Array {
  // Deterministic rows in the ranges of the bike model's features (hour, temperature, humidity, working day).
  let seed = 12345;
  const rand = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
  const data = new Float32Array(N * cols);
  for (let r = 0; r < N; r++) {
    for (let c = 0; c < cols; c++) data[r * cols + c] = Math.fround(c === 0 ? Math.floor(rand() * 24) : c === 1 ? rand() * 40 - 5 : c === 2 ? rand() : c === 3 ? Math.floor(rand() * 2) : rand() * 4 - 2);
  }
  return data;
}

function perRowNs(fn: () => void, calls: number): number {
  const samples: number[] = [];
  for (let i = 0; i < calls; i++) {
    const t = process.hrtime.bigint();
    fn();
    samples.push(Number(process.hrtime.bigint() - t));
  }
  return median(samples);
}

async function main(): Promise<void> {
  requireTool('/usr/bin/python3', 'python3-xgboost');
  const dir = tempDir();
  const parallel = new ParallelModel(readFileSync(modelPath));
  const model = parallel.compiled;
  const cols = model.model.numFeature;
  const data = rows(cols);
  const csvLines: string[] = [];
  for (let r = 0; r < N; r++) csvLines.push(Array.from(data.subarray(r * cols, (r + 1) * cols)).join(','));
  const csvPath = join(dir, 'rows.csv');
  writeFileSync(csvPath, csvLines.join('\n') + '\n');

  // (c) xgboost in Python, on the same file.
  const py = JSON.parse(execFileSync('/usr/bin/python3', [join(ROOT, 'bench', 'baselines', 'xgboost_predict.py'), modelPath, csvPath, '5000'], { encoding: 'utf8', maxBuffer: 1 << 20 })) as {
    single_inplace_us: number; single_predict_us: number; rows_per_s: Record<string, number>; checksum: number;
  };

  // (a) berth's evaluator in process.
  const one = { data: data.subarray(0, cols), rows: 1, cols };
  for (let i = 0; i < 20000; i++) model.predict(one); // warm-up: let V8 optimise the compiled trees
  const singleNs = perRowNs(() => model.predict(one), 20000);
  const check = model.predict({ data: data.subarray(0, 100 * cols), rows: 100, cols }).reduce((a, b) => a + b, 0);
  if (Math.abs(check - py.checksum) > 1e-3 * Math.abs(py.checksum)) throw new Error(`berth and xgboost disagree: ${check} vs ${py.checksum}`);
  // Batches go through ParallelModel, as the XGBoost runtime sends them: small ones stay on this
  // thread, large ones are split across the cores, as xgboost's own threads split them.
  const rate = async (size: number) => {
    const m = { data: data.subarray(0, size * cols), rows: size, cols };
    const reps = Math.max(20, Math.min(20000, Math.floor(2_000_000 / size)));
    for (let i = 0; i < reps; i++) await parallel.predict(m);
    const t = process.hrtime.bigint();
    for (let i = 0; i < reps; i++) await parallel.predict(m);
    return (size * reps) / (Number(process.hrtime.bigint() - t) / 1e9);
  };
  const berthRates: Record<string, number> = { '1': await rate(1), '100': await rate(100), [String(N)]: await rate(N) };
  await parallel.close();

  // The two engines on one thread: WebAssembly (tree models) against generated JavaScript (the
  // engine categorical models use).
  const oneThread = (engine: CompiledModel) => {
    const all = { data, rows: N, cols };
    for (let i = 0; i < 5; i++) engine.predict(all);
    const reps = 10;
    const t = process.hrtime.bigint();
    for (let i = 0; i < reps; i++) engine.predict(all);
    return (N * reps) / (Number(process.hrtime.bigint() - t) / 1e9);
  };
  const jsEngine = compile(readModel(readFileSync(modelPath)), { engine: 'js' });
  const wasmRowsPerS = oneThread(model);
  const jsRowsPerS = oneThread(jsEngine);

  // (b) berth's endpoint over HTTP.
  const tarball = join(dir, 'model.tar.gz');
  execFileSync('mkdir', ['-p', join(dir, 'm')]);
  execFileSync('cp', [modelPath, join(dir, 'm', 'xgboost-model')]);
  execFileSync('tar', ['-czf', tarball, '-C', join(dir, 'm'), '.']);
  const { url } = await startBerth(join(dir, 'data'));
  await createEndpoint(url, 'xgb', { Image: 'berth/xgboost', ModelDataUrl: `file://${tarball}` });
  const http = async (size: number, reps: number) => {
    const body = csvLines.slice(0, size).join('\n');
    const call = async () => {
      const res = await fetch(`${url}/endpoints/xgb/invocations`, { method: 'POST', body, headers: { 'content-type': 'text/csv' } });
      await res.arrayBuffer();
    };
    for (let i = 0; i < Math.min(reps, 20); i++) await call();
    const samples: number[] = [];
    for (let i = 0; i < reps; i++) {
      const t = process.hrtime.bigint();
      await call();
      samples.push(Number(process.hrtime.bigint() - t));
    }
    return { p50us: median(samples) / 1000, rowsPerS: (size * reps) / (samples.reduce((a, b) => a + b, 0) / 1e9) };
  };
  const h1 = await http(1, 2000);
  const h100 = await http(100, 500);
  const hN = await http(N, 5);

  const m = model.model;
  console.log(`\nbench/xgboost: ${values.model} (${m.trees.length} trees, ${m.objective}, ${cols} features), ${N} rows\n`);
  table(['single row', 'latency µs', 'vs xgboost inplace_predict'], [
    ['(a) berth evaluator, in process', singleNs / 1000, `${(py.single_inplace_us / (singleNs / 1000)).toFixed(1)}× lower`],
    ['(b) berth endpoint over HTTP (p50)', h1.p50us, ''],
    ['(c) xgboost inplace_predict', py.single_inplace_us, '1.0×'],
    ['(c) xgboost predict(DMatrix)', py.single_predict_us, ''],
  ]);
  console.log('');
  table(['batch rows', '(a) berth evaluator rows/s', '(b) berth endpoint rows/s', '(c) xgboost inplace_predict rows/s', '(a) / (c)'], ['1', '100', String(N)].map((k) => [
    k, Math.round(berthRates[k] as number), Math.round((k === '1' ? h1 : k === '100' ? h100 : hN).rowsPerS), Math.round(py.rows_per_s[k] as number), (berthRates[k] as number) / (py.rows_per_s[k] as number),
  ]));
  console.log('');
  table(['engine, one thread', `rows/s (${N} rows)`, 'vs JavaScript engine'], [
    ['WebAssembly (tree models)', Math.round(wasmRowsPerS), `${(wasmRowsPerS / jsRowsPerS).toFixed(2)}×`],
    ['generated JavaScript (categorical models)', Math.round(jsRowsPerS), '1.00×'],
  ]);
  console.log('');
  const worst = Math.min(...['1', '100', String(N)].map((k) => (berthRates[k] as number) / (py.rows_per_s[k] as number)));
  table(['target', 'measured', 'met'], [
    ['single-row latency ≥ 20× lower than inplace_predict', `${(py.single_inplace_us / (singleNs / 1000)).toFixed(1)}×`, py.single_inplace_us / (singleNs / 1000) >= 20 ? 'yes' : 'no'],
    ['batch rows/s ≥ xgboost (worst of 1, 100, all)', `${worst.toFixed(2)}×`, worst >= 1 ? 'yes' : 'no'],
  ]);
}

main().then(() => process.exit(0), (err: unknown) => {
  console.error(err);
  process.exit(1);
});
