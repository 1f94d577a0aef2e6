// bench/python: the scikit-learn model of the Python container's tests (test/fixtures/python: Ridge
// regression, code/inference.py with only model_fn, so the container's defaults decode, predict and
// encode) served
//   (a) by berth: InvokeEndpoint on a sagemaker-scikit-learn endpoint, through the native front
//       (src/wire/native/front.c) to the container,
//   (b) by berth's Python container alone, without the gateway (what the gateway hop costs),
//   (c) by a hand-written FastAPI + uvicorn server (uvloop, httptools) with the same model,
//   (d) by berth with its Node front (nativeFront false: the JavaScript gateway with SpinWait),
//   (e) by a bare Node byte pipe in front of (b) (what any Node hop costs, before berth's own work),
//   (f) by a C byte pipe in front of (b), a thread per connection (about the least a hop costs in any language),
// with the same number of worker processes, driven by wrk at concurrency 1 and 16 on loopback, in one
// run. Prints req/s, p50 and p99 and berth's ratios to (c), paired within alternating rounds, and
// the CPU per request of the process in front of the container in (a) and (d)–(f), user and
// kernel time apart (the native front against the C pipe, the Node front against the Node pipe:
// what berth's own work costs). Then concurrency 1 once more from a blocking client
// (bench/baselines/blocking-client.c, one request at a time as an SDK sends them), because wrk's
// epoll loop sees a longer tail behind a hop, with the requests over 1 and 2 ms per 10,000 (the
// stalls wrk's p99 at one connection counts); and once more with the blocking client's requests
// paced at one rate for every server, half FastAPI's throughput at one connection, each timed from
// when it was due (wrk's correction holds each server to its own throughput, a faster one to a
// shorter interval; a common rate does not), and at a low rate, 3 ms between an answer and the next
// request (every request finds the gateway's caches cold and, for the Node front, calls after idle
// spells longer than spinWaitMicros). The header says how long this machine's idle CPUs poll before
// halting. Last, the young-generation collections of the Node processes in front of the container
// in (d) and (e) per 1000 invocations, counted from what --trace-gc prints (one short line per
// collection; those two run with it).
//
// Usage: npm run bench:python [-- --seconds 5 --rounds 5 --workers 2]
import { execFile, execFileSync, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { cpSync, mkdirSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs, promisify } from 'node:util';
import { berthNodeFlags, cpuTimes, createEndpoint, ensurePythonModules, freePort, median, requireTool, ROOT, startBerth, table, tempDir, track, waitForHttp, wrkAsync } from './lib.js';
import type { LoadResult } from './lib.js';

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '5' }, rounds: { type: 'string', default: '5' }, workers: { type: 'string', default: String(availableParallelism()) } } });
const seconds = Number(values.seconds);
const rounds = Number(values.rounds);
const CONCURRENCY = [1, 16];
const workers = Number(values.workers);
const FIXTURES = join(ROOT, 'test', 'fixtures', 'python');
const MODEL = join(FIXTURES, 'models', 'diabetes-ridge.joblib');
const ROW = [0.038, 0.0507, 0.0617, 0.0219, -0.0442, -0.0348, -0.0434, -0.0026, 0.0199, -0.0176];
const BODY = JSON.stringify([ROW]);

/** The model folder as SageMaker unpacks the artifact: the model file and code/inference.py. */
function modelFolder(dir: string): string {
  const folder = join(dir, 'model');
  mkdirSync(folder, { recursive: true });
  cpSync(MODEL, join(folder, 'diabetes-ridge.joblib'));
  cpSync(join(FIXTURES, 'handlers', 'sklearn-defaults', 'code'), join(folder, 'code'), { recursive: true });
  return folder;
}

const berthProcesses: ChildProcess[] = [];
/** The Node process in front of the container, for the URLs that have one: its CPU per request is measured. */
const gateways = new Map<string, number>();

/** The young-generation collections a Node process's --trace-gc lines have reported so far. */
interface GcCount {
  young: number;
  youngPauseMs: number;
}
/** The Node processes in front of the container that run with --trace-gc, by URL. */
const collectors = new Map<string, GcCount>();

/** Counts the young-generation collection `line` (one line of --trace-gc's output) reports, if any. */
function countGc(count: GcCount, line: string): void {
  // "[pid:0x…]  1234 ms: Scavenge 18.6 (20.3) -> 17.8 (20.3) MB, 0.17 / 0.00 ms  (…) task;"
  const m = /ms: (?:Scavenge|Minor Mark-Compact)\b.*? MB, ([\d.]+) \//.exec(line);
  if (!m) return;
  count.young += 1;
  count.youngPauseMs += Number(m[1]);
}

/** berth serving the model; `traced`: with --trace-gc, its collections counted (rows a and f). */
async function berthEndpoint({ env = {}, nodeFlags = berthNodeFlags(), traced = false }: { env?: Record<string, string>; nodeFlags?: string[]; traced?: boolean } = {}): Promise<string> {
  const dir = tempDir();
  const model = join(dir, 'model.tar.gz');
  execFileSync('tar', ['-czf', model, '-C', modelFolder(dir), '.']);
  const count: GcCount = { young: 0, youngPauseMs: 0 };
  const { url, child } = await startBerth(join(dir, 'data'), { env, nodeFlags: traced ? [...nodeFlags, '--trace-gc'] : nodeFlags, onLine: (line) => countGc(count, line) });
  berthProcesses.push(child);
  gateways.set(`${url}/endpoints/ridge/invocations`, child.pid as number);
  if (traced) collectors.set(`${url}/endpoints/ridge/invocations`, count);
  await createEndpoint(url, 'ridge', {
    Image: '683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3',
    ModelDataUrl: `file://${model}`,
    Environment: { SAGEMAKER_MODEL_SERVER_WORKERS: String(workers) },
  });
  return `${url}/endpoints/ridge/invocations`;
}

async function containerAlone(): Promise<string> {
  const port = await freePort();
  track(spawn('python3', [join(ROOT, 'python', 'berth-python.py'), '--framework', 'sklearn', 'serve'], {
    stdio: 'ignore', detached: true,
    env: { ...process.env, SM_MODEL_DIR: modelFolder(tempDir()), SAGEMAKER_BIND_TO_PORT: String(port), SAGEMAKER_MODEL_SERVER_WORKERS: String(workers) },
  }));
  await waitForHttp(`http://127.0.0.1:${port}/ping`);
  return `http://127.0.0.1:${port}/invocations`;
}

async function nodePipe(containerUrl: string): Promise<string> {
  const port = await freePort();
  const child = track(spawn(process.execPath, ['--trace-gc', join(ROOT, 'bench', 'baselines', 'node-byte-pipe.mjs'), String(port), new URL(containerUrl).port], { stdio: ['ignore', 'pipe', 'ignore'], detached: true }));
  const count: GcCount = { young: 0, youngPauseMs: 0 };
  createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => countGc(count, line));
  await waitForHttp(`http://127.0.0.1:${port}/ping`);
  gateways.set(`http://127.0.0.1:${port}/invocations`, child.pid as number);
  collectors.set(`http://127.0.0.1:${port}/invocations`, count);
  return `http://127.0.0.1:${port}/invocations`;
}

interface GatewayCpu {
  readonly userUs: number;
  readonly systemUs: number;
}

interface BlockingResult {
  readonly requests: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly p999Ms: number;
  /** The p99 of the requests after the run's first 0.5 s (see blocking-client.c). */
  readonly p99SettledMs: number;
  /** Requests over 1 ms and over 2 ms, per 10,000: how many stalls, and whether a tick's or longer. */
  readonly over1PerTenThousand: number;
  readonly over2PerTenThousand: number;
}

/** Builds bench/baselines/`name`.c; returns the program's path. */
function buildC(name: string, flags: string[] = []): string {
  requireTool('cc', 'gcc');
  const program = join(tempDir(), name);
  execFileSync('cc', ['-O2', ...flags, '-o', program, join(ROOT, 'bench', 'baselines', `${name}.c`)]);
  return program;
}

/** (h): the C byte pipe in front of the container at `containerUrl`. */
async function cPipe(containerUrl: string): Promise<string> {
  const port = await freePort();
  const child = track(spawn(buildC('c-byte-pipe', ['-pthread']), [String(port), new URL(containerUrl).port], { stdio: 'ignore', detached: true }));
  await waitForHttp(`http://127.0.0.1:${port}/ping`);
  gateways.set(`http://127.0.0.1:${port}/invocations`, child.pid as number);
  return `http://127.0.0.1:${port}/invocations`;
}

/** One run of the blocking client; with `rate`, its requests paced at that many per second (see blocking-client.c). */
async function blocking(program: string, url: string, seconds: number, rate?: number): Promise<BlockingResult> {
  const u = new URL(url);
  const args = [u.port, u.pathname, String(seconds), BODY, ...(rate === undefined ? [] : [String(rate)])];
  const { stdout: out } = await promisify(execFile)(program, args, { encoding: 'utf8' });
  const raw = (name: string) => Number(new RegExp(`\\b${name}=(\\d+)`).exec(out)?.[1]);
  const ms = (name: string) => raw(name) / 1000;
  const requests = raw('n');
  return {
    requests, p50Ms: ms('p50'), p99Ms: ms('p99'), p999Ms: ms('p999'), p99SettledMs: ms('p99_settled'),
    over1PerTenThousand: (raw('over1ms') * 10_000) / requests, over2PerTenThousand: (raw('over2ms') * 10_000) / requests,
  };
}

async function fastapiBaseline(): Promise<string> {
  const port = await freePort();
  track(spawn('python3', [join(ROOT, 'bench', 'baselines', 'fastapi_sklearn_server.py'), String(port), String(workers)], {
    stdio: 'ignore', detached: true, env: { ...process.env, BENCH_MODEL: MODEL },
  }));
  await waitForHttp(`http://127.0.0.1:${port}/ping`);
  return `http://127.0.0.1:${port}/invocations`;
}

/**
 * How long this machine's idle virtual CPUs poll before they halt, for the run's header. At one
 * connection the ratios to FastAPI depend on it more than on anything berth does: a task woken on a
 * halted virtual CPU waits for the host to run it again, and berth's chain (client, gateway,
 * container) hands a request over three or four times where FastAPI's does twice. Set to 200 µs by
 * hand on the eighth development VM, it moved berth's throughput at one connection from 1.0–1.2x
 * FastAPI's to 1.6x (docs/python-speed.md), so a run's ratios are read with it.
 */
function guestIdlePolling(): string {
  try {
    const ns = Number(readFileSync('/sys/module/haltpoll/parameters/guest_halt_poll_ns', 'utf8').trim());
    return `guest idle polling (haltpoll guest_halt_poll_ns): ${Math.round(ns / 1000)} µs before an idle virtual CPU halts`;
  } catch {
    return 'guest idle polling: no haltpoll driver on this machine';
  }
}

async function main(): Promise<void> {
  requireTool('wrk', 'wrk');
  ensurePythonModules(['fastapi', 'uvicorn', 'uvloop', 'httptools', 'sklearn', 'joblib'], ['fastapi', 'uvicorn', 'uvloop', 'httptools', 'scikit-learn', 'joblib']);
  const alone = await containerAlone();
  const targets: [string, string][] = [
    ['(a) berth (native front + Python container)', await berthEndpoint()],
    ['(b) berth\'s Python container alone', alone],
    ['(c) FastAPI + uvicorn', await fastapiBaseline()],
    ['(d) berth with its Node front (nativeFront false)', await berthEndpoint({ env: { BERTH_NATIVE_FRONT: 'false' }, traced: true })],
    ['(e) a bare Node byte pipe in front of (b)', await nodePipe(alone)],
    ['(f) a C byte pipe in front of (b)', await cPipe(alone)],
  ];
  const program = buildC('blocking-client');
  // Sanity: every server answers the same request the same way before anything is timed.
  const answers = await Promise.all(targets.map(async ([, url]) => (await (await fetch(url, { method: 'POST', body: BODY, headers: { 'content-type': 'application/json' } })).json()) as number[]));
  for (const a of answers) {
    if (Math.abs((a[0] ?? NaN) - (answers[0]?.[0] ?? NaN)) > 1e-6) throw new Error(`the servers disagree on the prediction: ${JSON.stringify(answers)}`);
  }
  for (const [, url] of targets) for (const c of CONCURRENCY) await wrkAsync(url, BODY, c, 2); // warm-up
  // One offered load for every server at one connection: half what FastAPI sustains there. wrk's
  // correction for coordinated omission takes its interval from each server's own throughput, so
  // its p99 at one connection holds a faster server to a shorter interval; at a common rate the
  // tails compare on equal footing (blocking-client.c).
  const fastapiUrl = targets.find(([name]) => name.startsWith('(c)'))?.[1] as string;
  const fastapiAlone = await wrkAsync(fastapiUrl, BODY, 1, 2);
  const rate = Math.round(fastapiAlone.rps / 2);
  // And a low rate: each request about 3 ms after the answer before it, three times the default
  // spinWaitMicros, so that every call comes after an idle spell (SpinWait's class comment).
  const lowRate = Math.round(1000 / (fastapiAlone.p50Ms + 3));
  // The machine's speed drifts between runs (shared, with CPU steal), so each round runs every
  // server back to back, the order rotating, and berth's ratio to FastAPI is taken within a round.
  const results = new Map<string, LoadResult[]>();
  const gatewayCpu = new Map<string, GatewayCpu[]>();
  const blockingResults = new Map<string, BlockingResult[]>();
  const pacedResults = new Map<string, BlockingResult[]>();
  const lowRateResults = new Map<string, BlockingResult[]>();
  /** Young-generation collections per 1000 invocations (and their mean pause) of the traced gateways, by load. */
  const gcRates = new Map<string, { perThousand: number; pauseMs: number }[]>();
  /** Runs `load` against `url`; for a traced gateway, records its collections per 1000 of `requests(result)`. */
  const counted = async <T>(key: string, url: string, load: () => Promise<T>, requests: (r: T) => number): Promise<T> => {
    const count = collectors.get(url);
    const before = count && { ...count };
    const result = await load();
    if (count && before) {
      await new Promise((res) => setTimeout(res, 100)); // the last lines of the run, still in the pipe
      const young = count.young - before.young;
      gcRates.set(key, [...(gcRates.get(key) ?? []), { perThousand: (1000 * young) / requests(result), pauseMs: young ? (count.youngPauseMs - before.youngPauseMs) / young : 0 }]);
    }
    return result;
  };
  for (let round = 0; round < rounds; round++) {
    for (const c of CONCURRENCY) {
      for (let k = 0; k < targets.length; k++) {
        const [name, url] = targets[(k + round) % targets.length] as [string, string];
        const key = `${name}@${c}`;
        const pid = gateways.get(url);
        const before = pid === undefined ? undefined : cpuTimes(pid);
        const load = await counted(key, url, () => wrkAsync(url, BODY, c, seconds), (r) => r.rps * seconds);
        results.set(key, [...(results.get(key) ?? []), load]);
        if (pid !== undefined && before !== undefined) {
          const after = cpuTimes(pid);
          const requests = load.rps * seconds;
          gatewayCpu.set(key, [...(gatewayCpu.get(key) ?? []), { userUs: (after.userUs - before.userUs) / requests, systemUs: (after.systemUs - before.systemUs) / requests }]);
        }
      }
    }
    for (let k = 0; k < targets.length; k++) {
      const [name, url] = targets[(k + round) % targets.length] as [string, string];
      const result = await counted(`${name}@blocking`, url, () => blocking(program, url, seconds), (r) => r.requests);
      blockingResults.set(name, [...(blockingResults.get(name) ?? []), result]);
    }
    for (let k = 0; k < targets.length; k++) {
      const [name, url] = targets[(k + round) % targets.length] as [string, string];
      pacedResults.set(name, [...(pacedResults.get(name) ?? []), await blocking(program, url, seconds, rate)]);
    }
    for (let k = 0; k < targets.length; k++) {
      const [name, url] = targets[(k + round) % targets.length] as [string, string];
      lowRateResults.set(name, [...(lowRateResults.get(name) ?? []), await blocking(program, url, seconds, lowRate)]);
    }
  }
  console.log(`\nbench/python: Ridge regression (scikit-learn), one JSON row per request, ${workers} worker process(es) each, wrk -t1, ${rounds} rounds of ${seconds}s per cell (medians)`);
  console.log(`${guestIdlePolling()}\n`);
  const rows: (string | number)[][] = [];
  for (const c of CONCURRENCY) {
    for (const [name] of targets) {
      const rs = results.get(`${name}@${c}`) as LoadResult[];
      rows.push([name, c, Math.round(median(rs.map((r) => r.rps))), median(rs.map((r) => r.p50Ms)), median(rs.map((r) => r.p99Ms)), rs.reduce((n, r) => n + r.errors, 0)]);
    }
  }
  table(['server', 'connections', 'req/s', 'p50 ms', 'p99 ms', 'errors'], rows);
  const runs = (n: string, c: number) => results.get(`${targets.find(([x]) => x.startsWith(n))?.[0]}@${c}`) as LoadResult[];
  const paired = <T>(a: T[], b: T[], f: (r: T) => number) => median(a.map((r, i) => f(r) / f(b[i] as T)));
  console.log('');
  const ratios: (string | number)[][] = [];
  for (const c of CONCURRENCY) {
    const [a, b, f, d, e, h] = [runs('(a)', c), runs('(b)', c), runs('(c)', c), runs('(d)', c), runs('(e)', c), runs('(f)', c)];
    const rps = paired(a, f, (r) => r.rps);
    const p50 = paired(a, f, (r) => r.p50Ms);
    const p99 = paired(a, f, (r) => r.p99Ms);
    ratios.push([`req/s at c=${c}: berth / FastAPI`, rps, '≥ 1', rps >= 1 ? 'yes' : 'no']);
    ratios.push([`p50 at c=${c}: berth / FastAPI`, p50, '≤ 1', p50 <= 1 ? 'yes' : 'no']);
    ratios.push([`p99 at c=${c}: berth / FastAPI`, p99, '≤ 1', p99 <= 1 ? 'yes' : 'no']);
    // About the least a Node gateway (e) and a gateway in any language (h) cost, against the same
    // target: where a pipe that does nothing is already behind FastAPI, a gateway doing berth's work
    // in front of this container can hardly be level there on that machine.
    for (const [pipe, label] of [[d, 'berth with its Node front'], [e, 'bare Node pipe'], [h, 'C byte pipe']] as const) {
      ratios.push([`req/s at c=${c}: ${label} / FastAPI`, paired(pipe, f, (r) => r.rps), '', '']);
      ratios.push([`p50 at c=${c}: ${label} / FastAPI`, paired(pipe, f, (r) => r.p50Ms), '', '']);
      ratios.push([`p99 at c=${c}: ${label} / FastAPI`, paired(pipe, f, (r) => r.p99Ms), '', '']);
    }
    ratios.push([`req/s at c=${c}: berth / C byte pipe`, paired(a, h, (r) => r.rps), '', '']);
    ratios.push([`req/s at c=${c}: container alone / FastAPI`, paired(b, f, (r) => r.rps), '', '']);
    ratios.push([`req/s at c=${c}: berth / container alone`, paired(a, b, (r) => r.rps), '', '']);
    ratios.push([`req/s at c=${c}: berth / berth with its Node front`, paired(a, d, (r) => r.rps), '', '']);
    ratios.push([`p50 at c=${c}: berth / berth with its Node front`, paired(a, d, (r) => r.p50Ms), '', '']);
    ratios.push([`p99 at c=${c}: berth / berth with its Node front`, paired(a, d, (r) => r.p99Ms), '', '']);
  }
  table(['measure (median of per-round ratios)', 'value', 'target', 'met'], ratios);

  // What the process in front of the container spends per request, user and kernel time apart: the
  // native front against the C pipe shows what berth's own work costs there, the Node front against
  // the bare Node pipe the same for Node.
  console.log(`\nCPU per request of the process in front of the container (from /proc; medians; at c=1 the Node front's includes SpinWait's polling)\n`);
  const cpuRows: (string | number)[][] = [];
  for (const c of CONCURRENCY) {
    for (const [name] of targets) {
      const cs = gatewayCpu.get(`${name}@${c}`);
      if (cs) cpuRows.push([name, c, median(cs.map((x) => x.userUs)), median(cs.map((x) => x.systemUs))]);
    }
  }
  table(['server', 'connections', 'user µs', 'kernel µs'], cpuRows);
  console.log('');
  const cpuRuns = (n: string, c: number) => gatewayCpu.get(`${targets.find(([x]) => x.startsWith(n))?.[0]}@${c}`) as GatewayCpu[];
  table(['measure (median of per-round ratios)', 'value'], CONCURRENCY.flatMap((c) => [
    [`gateway user time per request at c=${c}: berth / C byte pipe`, paired(cpuRuns('(a)', c), cpuRuns('(f)', c), (r) => r.userUs)],
    [`gateway kernel time per request at c=${c}: berth / C byte pipe`, paired(cpuRuns('(a)', c), cpuRuns('(f)', c), (r) => r.systemUs)],
    [`gateway user time per request at c=${c}: berth with its Node front / bare Node pipe`, paired(cpuRuns('(d)', c), cpuRuns('(e)', c), (r) => r.userUs)],
    [`gateway CPU per request at c=${c}: berth / berth with its Node front`, paired(cpuRuns('(a)', c), cpuRuns('(d)', c), (r) => r.userUs + r.systemUs)],
  ]));

  /** Every server's medians over the runs of the blocking client in `runs`. */
  const blockingTable = (runs: Map<string, BlockingResult[]>) => table(['server', 'p50 ms', 'p99 ms', 'p99.9 ms', 'p99 after the first 0.5 s', 'over 1 ms per 10,000', 'over 2 ms per 10,000'], targets.map(([name]) => {
    const rs = runs.get(name) as BlockingResult[];
    return [name, median(rs.map((r) => r.p50Ms)), median(rs.map((r) => r.p99Ms)), median(rs.map((r) => r.p999Ms)), median(rs.map((r) => r.p99SettledMs)),
      median(rs.map((r) => r.over1PerTenThousand)), median(rs.map((r) => r.over2PerTenThousand))];
  }));
  console.log(`\nThe same at concurrency 1 from a blocking client (one keep-alive connection, one request at a time), ${rounds} rounds of ${seconds}s (medians)\n`);
  blockingTable(blockingResults);
  /** The runs in `runs` of the server whose name starts with `n`. */
  const of = (runs: Map<string, BlockingResult[]>, n: string) => runs.get(targets.find(([x]) => x.startsWith(n))?.[0] as string) as BlockingResult[];
  /** berth's p50 and p99 against FastAPI's (the targets), then both pipes', from the runs in `runs`. */
  const againstFastapi = (runs: Map<string, BlockingResult[]>): (string | number)[][] => {
    const fastapi = of(runs, '(c)');
    const p50 = paired(of(runs, '(a)'), fastapi, (r) => r.p50Ms);
    const p99 = paired(of(runs, '(a)'), fastapi, (r) => r.p99Ms);
    return [
      ['p50: berth / FastAPI', p50, '≤ 1', p50 <= 1 ? 'yes' : 'no'],
      ['p99: berth / FastAPI', p99, '≤ 1', p99 <= 1 ? 'yes' : 'no'],
      ...([['(d)', 'berth with its Node front'], ['(e)', 'bare Node pipe'], ['(f)', 'C byte pipe']] as const).flatMap(([row, label]) => [
        [`p50: ${label} / FastAPI`, paired(of(runs, row), fastapi, (r) => r.p50Ms), '', ''],
        [`p99: ${label} / FastAPI`, paired(of(runs, row), fastapi, (r) => r.p99Ms), '', ''],
      ]),
    ];
  };
  console.log('');
  const [ba, bc, be] = [of(blockingResults, '(a)'), of(blockingResults, '(c)'), of(blockingResults, '(e)')];
  table(['measure, blocking client at c=1 (median of per-round ratios)', 'value', 'target', 'met'], [
    ...againstFastapi(blockingResults),
    ['p99 after each run\'s first 0.5 s: berth / FastAPI', paired(ba, bc, (r) => r.p99SettledMs), '', ''],
    ['p99 after each run\'s first 0.5 s: bare Node pipe / FastAPI', paired(be, bc, (r) => r.p99SettledMs), '', ''],
  ]);

  console.log(`\nThe blocking client at one offered load for every server, ${rate} requests per second (half FastAPI's throughput at c=1 by wrk), each request timed from when it was due; ${rounds} rounds of ${seconds}s (medians)\n`);
  blockingTable(pacedResults);
  console.log('');
  table([`measure, ${rate} requests per second at c=1 (median of per-round ratios)`, 'value', 'target', 'met'], againstFastapi(pacedResults));

  console.log(`\nThe blocking client at a low rate, ${lowRate} requests per second (about 3 ms between an answer and the next request), each request timed from when it was due; ${rounds} rounds of ${seconds}s (medians)\n`);
  blockingTable(lowRateResults);
  console.log('');
  table([`measure, ${lowRate} requests per second at c=1 (median of per-round ratios)`, 'value', 'target', 'met'], [
    ...againstFastapi(lowRateResults),
  ]);

  console.log(`\nYoung-generation collections of the Node process in front of the container, per 1000 invocations, and their mean pause (--trace-gc; medians of the runs)\n`);
  table(['server', 'load', 'collections per 1000', 'mean pause ms'], targets.flatMap(([name]) => ['1', '16', 'blocking'].flatMap((load) => {
    const rs = gcRates.get(`${name}@${load}`);
    return rs ? [[name, load === 'blocking' ? 'blocking client' : `wrk c=${load}`, median(rs.map((r) => r.perThousand)), median(rs.map((r) => r.pauseMs))]] : [];
  })));
}

/** berth stops its instances on SIGTERM; the SIGKILL of bench/lib's cleanup would orphan them. */
async function stopBerth(): Promise<void> {
  await Promise.all(berthProcesses.filter((child) => child.exitCode === null).map((child) => {
    const exited = new Promise((res) => child.once('exit', res));
    child.kill('SIGTERM');
    return exited;
  }));
}

main().then(stopBerth).then(() => process.exit(0), (err: unknown) => {
  console.error(err);
  process.exit(1);
});
