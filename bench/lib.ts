// Shared pieces of berth's benchmarks: starting berth and baselines as their own processes, driving
// them with wrk (a separate C process, so the load generator does not share an event loop with what
// it measures), and printing tables. Absolute numbers drift on a shared machine; ratios measured in
// the same run are what the tables are for.
import { execFile, execFileSync, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';

export const ROOT = resolve(import.meta.dirname, '..', '..');

const children = new Set<ChildProcess>();
const dirs = new Set<string>();
export function cleanup(): void {
  for (const c of children) {
    if (c.exitCode !== null || c.pid === undefined) continue;
    // A child spawned `detached` leads its own process group: killing the group also ends the
    // workers it forked (uvicorn's, the Python container's), which would otherwise outlive the bench.
    try {
      process.kill(-c.pid, 'SIGKILL');
    } catch {
      c.kill('SIGKILL');
    }
  }
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
}
process.on('exit', cleanup);
process.on('SIGINT', () => process.exit(130));

export function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'berth-bench-'));
  dirs.add(d);
  return d;
}

export function freePort(): Promise<number> {
  return new Promise((res) => {
    const srv = createServer().listen(0, '127.0.0.1', () => {
      const p = (srv.address() as { port: number }).port;
      srv.close(() => res(p));
    });
  });
}

export function track(child: ChildProcess): ChildProcess {
  children.add(child);
  return child;
}

/**
 * The Node flags the `berth` command starts with: the `#!/usr/bin/env -S node …` line of bin/berth.js,
 * so that what a bench measures is what `berth serve` runs.
 */
export function berthNodeFlags(): string[] {
  const first = readFileSync(join(ROOT, 'bin', 'berth.js'), 'utf8').split('\n', 1)[0] ?? '';
  const m = /^#!\/usr\/bin\/env(?: -S)? node(.*)$/.exec(first);
  if (!m) throw new Error(`bin/berth.js does not start with "#!/usr/bin/env -S node …": ${first}`);
  return (m[1] ?? '').split(' ').filter(Boolean);
}

export interface StartBerthOptions {
  /** Arguments after `berth serve --port 0 --data-dir DIR`. */
  readonly args?: string[];
  readonly env?: Record<string, string>;
  /** Node flags instead of bin/berth.js's own. */
  readonly nodeFlags?: string[];
  /** Called with every line berth writes on stdout (its JSON logs, and what Node's --trace-* flags print). */
  readonly onLine?: (line: string) => void;
}

/**
 * Starts `berth serve` as its own process, in its own session like every server a bench compares it
 * with; resolves with its URL from its start-up log line. Its own session matters under load: where
 * the kernel groups scheduling by session (autogroup), a berth left in the bench's session shared one
 * group's CPU share with the load generator, while the servers it was compared with had a share each.
 */
export async function startBerth(dataDir: string, options: StartBerthOptions = {}): Promise<{ url: string; child: ChildProcess }> {
  const flags = options.nodeFlags ?? berthNodeFlags();
  const child = track(spawn(process.execPath, [...flags, join(ROOT, 'bin', 'berth.js'), 'serve', '--port', '0', '--data-dir', dataDir, ...(options.args ?? [])], {
    stdio: ['ignore', 'pipe', 'inherit'],
    detached: true,
    env: { ...process.env, ...options.env },
  }));
  // Reading every line also keeps stdout drained, so berth never blocks on a full pipe.
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  return new Promise((res, rej) => {
    child.once('exit', (c) => rej(new Error(`berth exited with ${c}`)));
    let listening = false;
    lines.on('line', (line) => {
      options.onLine?.(line);
      if (listening || !line.startsWith('{')) return;
      try {
        const log = JSON.parse(line) as { msg?: string; url?: string };
        if (log.msg === 'berth is listening' && log.url) {
          listening = true;
          res({ url: log.url, child });
        }
      } catch {
        // not a log line
      }
    });
  });
}

export async function waitForHttp(url: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await fetch(url).then((r) => r.ok, () => false);
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`${url} did not answer within ${timeoutMs} ms`);
    await sleep(50);
  }
}

export interface LoadResult {
  readonly rps: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly errors: number;
}

function toMs(value: string): number {
  const m = /^([\d.]+)(us|ms|s)$/.exec(value.trim());
  if (!m) return NaN;
  const n = Number(m[1]);
  return m[2] === 'us' ? n / 1000 : m[2] === 's' ? n * 1000 : n;
}

/**
 * Makes sure python3 can import `modules`, installing `packages` from the machine's configured
 * package indexes if not (named first, so pip does not wait on an index it cannot reach).
 */
export function ensurePythonModules(modules: string[], packages: string[]): void {
  try {
    execFileSync('python3', ['-c', `import ${modules.join(', ')}`], { stdio: 'ignore' });
  } catch {
    console.error(`installing ${packages.join(', ')} from the machine's package index…`);
    const extra = execFileSync('python3', ['-m', 'pip', 'config', 'get', 'global.extra-index-url'], { encoding: 'utf8' }).trim().split(/\s+/).filter(Boolean);
    const indexes = extra.length ? ['--index-url', extra[0] as string, ...extra.slice(1).flatMap((u) => ['--extra-index-url', u])] : [];
    execFileSync('python3', ['-m', 'pip', 'install', '--quiet', ...indexes, ...packages], { stdio: 'inherit' });
  }
}

export function requireTool(tool: string, debianPackage: string): void {
  try {
    execFileSync('which', [tool], { stdio: 'ignore' });
  } catch {
    throw new Error(`${tool} is needed: apt-get install -y ${debianPackage}`);
  }
}

/** Drives POST `url` with `body` from wrk: one thread, `connections` connections, for `seconds`. */
export function wrk(url: string, body: string, connections: number, seconds: number, headers: Record<string, string> = {}): LoadResult {
  return parseWrk(execFileSync('wrk', wrkArgs(url, body, connections, seconds, headers), { encoding: 'utf8' }));
}

/**
 * wrk as above, without blocking the event loop meanwhile: for a bench that reads what a server
 * prints while it is under load (a blocked loop stops draining the server's stdout, and a server
 * whose stdout pipe fills up stalls on its next write).
 */
export async function wrkAsync(url: string, body: string, connections: number, seconds: number, headers: Record<string, string> = {}): Promise<LoadResult> {
  return parseWrk((await promisify(execFile)('wrk', wrkArgs(url, body, connections, seconds, headers), { encoding: 'utf8' })).stdout);
}

function wrkArgs(url: string, body: string, connections: number, seconds: number, headers: Record<string, string>): string[] {
  const dir = tempDir();
  const script = join(dir, 'post.lua');
  const extra = Object.entries(headers).map(([k, v]) => `wrk.headers[${JSON.stringify(k)}] = ${JSON.stringify(v)}\n`).join('');
  writeFileSync(script, `wrk.method = "POST"\nwrk.body = ${JSON.stringify(body)}\nwrk.headers["Content-Type"] = "application/json"\n${extra}` +
    'done = function(summary, latency, requests)\n  io.write(string.format("ERRORS %d\\n", summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))\nend\n');
  return ['-t1', `-c${connections}`, `-d${seconds}s`, '--latency', '-s', script, url];
}

function parseWrk(out: string): LoadResult {
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1]);
  const p50 = toMs(/\n\s+50%\s+(\S+)/.exec(out)?.[1] ?? '');
  const p99 = toMs(/\n\s+99%\s+(\S+)/.exec(out)?.[1] ?? '');
  const errors = Number(/ERRORS (\d+)/.exec(out)?.[1] ?? 0) + Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0);
  return { rps, p50Ms: p50, p99Ms: p99, errors };
}

let clockTicks: number | undefined;

/**
 * CPU time a process (all its threads) has used so far, in µs, user and kernel apart, from
 * /proc/<pid>/stat. Read around a load run, it tells what a server spent per request and where.
 */
export function cpuTimes(pid: number): { userUs: number; systemUs: number } {
  clockTicks ??= Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
  // The fields after the command name (which may hold spaces) start at field 3; utime and stime are 14 and 15.
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ').at(-1)?.split(' ') ?? [];
  const tick = 1e6 / clockTicks;
  return { userUs: Number(fields[11]) * tick, systemUs: Number(fields[12]) * tick };
}

/** Prints a Markdown table, which reads well in a terminal and pastes into notes. */
export function table(headers: string[], rows: (string | number)[][]): void {
  const fmt = (v: string | number) => (typeof v === 'number' ? (Number.isInteger(v) ? String(v) : v.toFixed(3)) : v);
  console.log(`| ${headers.join(' | ')} |`);
  console.log(`|${headers.map(() => '---').join('|')}|`);
  for (const r of rows) console.log(`| ${r.map(fmt).join(' | ')} |`);
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

/** Creates a one-instance endpoint `name` for `container` on the berth at `url` and waits for InService. */
export async function createEndpoint(url: string, name: string, container: { Image: string; ModelDataUrl?: string; Mode?: 'SingleModel' | 'MultiModel'; Environment?: Record<string, string> }): Promise<void> {
  const { CreateEndpointCommand, CreateEndpointConfigCommand, CreateModelCommand, SageMakerClient, waitUntilEndpointInService } = await import('@aws-sdk/client-sagemaker');
  const sm = new SageMakerClient({ endpoint: url, region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'x' } });
  try {
    await sm.send(new CreateModelCommand({ ModelName: name, PrimaryContainer: container }));
    await sm.send(new CreateEndpointConfigCommand({ EndpointConfigName: name, ProductionVariants: [{ VariantName: 'AllTraffic', ModelName: name, InstanceType: 'ml.m5.large', InitialInstanceCount: 1 }] }));
    await sm.send(new CreateEndpointCommand({ EndpointName: name, EndpointConfigName: name }));
    await waitUntilEndpointInService({ client: sm, maxWaitTime: 60, minDelay: 1, maxDelay: 1 }, { EndpointName: name });
  } finally {
    sm.destroy();
  }
}
