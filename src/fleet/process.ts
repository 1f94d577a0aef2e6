// The process fleet: each instance is a child process in its own process group, speaking SageMaker's
// container contract on a loopback port. Its folder under <dataDir>/instances records the pid, so a
// berth that was killed with SIGKILL finds and stops the instances it left behind when it restarts.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { createWriteStream, existsSync } from 'node:fs';
import type { WriteStream } from 'node:fs';
import { mkdir, readFile, readdir, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { randomBytes } from 'node:crypto';
import { Pool } from 'undici';
import type { FleetProvider, Instance, InstanceEvents, InstanceExit, InstanceSpec, InstanceState } from './instance.js';
import { freePort } from './ports.js';

export interface ProcessFleetOptions {
  readonly dataDir: string;
  /** Timeout of one /ping (SageMaker: 2 s). */
  readonly pingTimeoutMs: number;
  /** How often ready instances are pinged. */
  readonly healthCheckIntervalMs: number;
  /** Consecutive failed pings after which a ready instance is declared failed. */
  readonly unhealthyThreshold: number;
  /** Environment every container inherits before its own (PATH, HOME, …). */
  readonly baseEnv: Readonly<Record<string, string | undefined>>;
}

const RING_LINES = 200;

class LineRing {
  private readonly lines: string[] = [];
  private partial = '';

  push(chunk: string): void {
    const parts = (this.partial + chunk).split('\n');
    this.partial = parts.pop() ?? '';
    for (const p of parts) {
      this.lines.push(p);
      if (this.lines.length > RING_LINES) this.lines.shift();
    }
  }

  tail(n: number): string[] {
    const all = this.partial ? [...this.lines, this.partial] : this.lines;
    return all.slice(-n);
  }
}

class ProcessInstance implements Instance {
  readonly id: string;
  readonly spec: InstanceSpec;
  readonly url: string;
  readonly dispatcher: Pool;
  outstanding = 0;
  private current: InstanceState = 'starting';
  private exitInfo: InstanceExit | undefined;
  private readonly events = new EventEmitter();
  private readonly ring = new LineRing();
  private readonly exited: Promise<void>;
  private failedPings = 0;

  constructor(
    id: string,
    spec: InstanceSpec,
    readonly port: number,
    private readonly child: ChildProcess,
    private readonly log: WriteStream,
    private readonly options: ProcessFleetOptions,
    private readonly dir: string,
    private readonly onStopped: () => void,
  ) {
    this.id = id;
    this.spec = spec;
    this.url = `http://127.0.0.1:${port}`;
    this.dispatcher = new Pool(this.url, { connections: 128, keepAliveTimeout: 60_000, connectTimeout: 2_000 });
    const onData = (chunk: Buffer) => {
      this.log.write(chunk);
      this.ring.push(chunk.toString('utf8'));
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.exitInfo = { code, signal };
        const wasActive = this.current !== 'stopped';
        if (wasActive) this.fail(describeExit(this.exitInfo));
        resolve();
      });
      child.once('error', (err) => {
        this.exitInfo = { code: null, signal: null };
        this.ring.push(`berth: could not start the container: ${err.message}\n`);
        this.fail(`could not start the container: ${err.message}`);
        resolve();
      });
    });
  }

  get state(): InstanceState {
    return this.current;
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get exit(): InstanceExit | undefined {
    return this.exitInfo;
  }

  on<E extends keyof InstanceEvents>(event: E, listener: InstanceEvents[E]): void {
    this.events.on(event, listener);
  }

  off<E extends keyof InstanceEvents>(event: E, listener: InstanceEvents[E]): void {
    this.events.off(event, listener);
  }

  logTail(lines: number): string[] {
    return this.ring.tail(lines);
  }

  /** One /ping: true on HTTP 200 within the ping timeout. */
  async ping(): Promise<boolean> {
    try {
      const res = await this.dispatcher.request({
        path: '/ping',
        method: 'GET',
        headersTimeout: this.options.pingTimeoutMs,
        bodyTimeout: this.options.pingTimeoutMs,
        signal: AbortSignal.timeout(this.options.pingTimeoutMs),
      });
      await res.body.dump();
      return res.statusCode === 200;
    } catch {
      return false;
    }
  }

  async waitUntilHealthy(timeoutMs: number, signal?: AbortSignal): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let delay = 20;
    for (;;) {
      if (this.current === 'failed' || this.current === 'stopped') {
        throw new Error(this.exitInfo ? describeExit(this.exitInfo) : `the instance is ${this.current}`);
      }
      if (signal?.aborted) throw new Error('startup was cancelled');
      if (await this.ping()) {
        if (this.current === 'starting') this.current = 'ready';
        return;
      }
      if (Date.now() >= deadline) {
        throw new Error(`the container did not answer GET /ping with 200 within ${Math.round(timeoutMs / 1000)} seconds`);
      }
      // Fast at first so a quick container is in service in milliseconds, then gentler.
      await sleep(delay);
      delay = Math.min(delay * 2, 500);
    }
  }

  /** Called by the fleet's health loop. */
  async check(): Promise<void> {
    if (this.current !== 'ready') return;
    if (await this.ping()) {
      this.failedPings = 0;
      return;
    }
    this.failedPings += 1;
    if (this.failedPings >= this.options.unhealthyThreshold && this.current === 'ready') {
      this.fail(`stopped answering GET /ping (${this.failedPings} checks in a row failed)`);
    }
  }

  async drain(timeoutMs: number): Promise<void> {
    if (this.current === 'ready' || this.current === 'starting') this.current = 'draining';
    const deadline = Date.now() + timeoutMs;
    while (this.outstanding > 0 && Date.now() < deadline) await sleep(10);
  }

  async stop(graceMs: number): Promise<void> {
    if (this.current !== 'failed') this.current = 'stopped';
    if (!this.exitInfo) {
      signalGroup(this.child.pid, 'SIGTERM');
      const killer = setTimeout(() => signalGroup(this.child.pid, 'SIGKILL'), graceMs);
      await this.exited;
      clearTimeout(killer);
    } else {
      // The leader is gone; workers it forked may not be.
      signalGroup(this.child.pid, 'SIGKILL');
    }
    await this.dispatcher.destroy().catch(() => undefined);
    await new Promise<void>((resolve) => this.log.end(resolve));
    await rm(this.dir, { recursive: true, force: true });
    this.onStopped();
  }

  private fail(reason: string): void {
    if (this.current === 'failed' || this.current === 'stopped') return;
    this.current = 'failed';
    this.events.emit('failed', reason);
  }
}

function describeExit(exit: InstanceExit): string {
  return exit.signal ? `the container process was killed by ${exit.signal}` : `the container process exited with code ${exit.code}`;
}

function signalGroup(pid: number | undefined, sig: NodeJS.Signals): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, sig);
  } catch {
    // Already gone.
  }
}

export class ProcessFleet implements FleetProvider {
  private readonly instances = new Set<ProcessInstance>();
  private readonly timer: NodeJS.Timeout;
  private checking = false;

  private constructor(private readonly options: ProcessFleetOptions) {
    this.timer = setInterval(() => void this.checkAll(), options.healthCheckIntervalMs);
    this.timer.unref();
  }

  /** Creates the fleet after stopping any instance a previous berth left running. */
  static async open(options: ProcessFleetOptions): Promise<ProcessFleet> {
    await reapOrphans(join(options.dataDir, 'instances'));
    return new ProcessFleet(options);
  }

  async start(spec: InstanceSpec): Promise<Instance> {
    const id = `i-${randomBytes(8).toString('hex')}`;
    const dir = join(this.options.dataDir, 'instances', id);
    await mkdir(dir, { recursive: true });
    if (spec.modelDir) await symlink(spec.modelDir, join(dir, 'model'), 'dir');
    else await mkdir(join(dir, 'model'));
    const logDir = join(this.options.dataDir, 'logs', spec.endpointName.toLowerCase());
    await mkdir(logDir, { recursive: true });
    const log = createWriteStream(join(logDir, `${spec.variantName}.${spec.containerName}.${id}.log`), { flags: 'a' });
    const port = await freePort();
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(this.options.baseEnv)) if (v !== undefined) env[k] = v;
    Object.assign(env, spec.env, {
      SAGEMAKER_BIND_TO_PORT: String(port),
      // There is no /opt/ml without Docker: SAGEMAKER_BASE_DIR re-roots it for the inference
      // toolkits, SM_MODEL_DIR names the model folder directly.
      SAGEMAKER_BASE_DIR: dir,
      SM_MODEL_DIR: join(dir, 'model'),
      BERTH_INSTANCE_ID: id,
    });
    const [cmd, ...args] = spec.command;
    const child = spawn(cmd as string, [...args, 'serve'], {
      cwd: dir,
      env,
      detached: true, // its own process group, so stop() reaches the workers it forks
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    await writeFile(join(dir, 'instance.json'), JSON.stringify({ id, pid: child.pid, endpoint: spec.endpointName, port }));
    const instance: ProcessInstance = new ProcessInstance(id, spec, port, child, log, this.options, dir, () => this.instances.delete(instance));
    this.instances.add(instance);
    return instance;
  }

  async stopAll(graceMs: number): Promise<void> {
    await Promise.all([...this.instances].map((i) => i.stop(graceMs)));
  }

  async readLogs(endpointName: string, lines: number): Promise<string> {
    const dir = join(this.options.dataDir, 'logs', endpointName.toLowerCase());
    if (!existsSync(dir)) return '';
    const files = await readdir(dir);
    const withTimes = await Promise.all(files.map(async (f) => ({ f, t: (await stat(join(dir, f))).birthtimeMs })));
    withTimes.sort((a, b) => a.t - b.t);
    const parts: string[] = [];
    for (const { f } of withTimes) {
      const text = await readFile(join(dir, f), 'utf8');
      const all = text.split('\n');
      if (all[all.length - 1] === '') all.pop();
      parts.push(`==> ${f} <==`, ...all.slice(-lines));
    }
    return parts.join('\n') + (parts.length ? '\n' : '');
  }

  close(): Promise<void> {
    clearInterval(this.timer);
    return Promise.resolve();
  }

  private async checkAll(): Promise<void> {
    if (this.checking) return;
    this.checking = true;
    try {
      await Promise.all([...this.instances].map((i) => i.check()));
    } finally {
      this.checking = false;
    }
  }
}

/** Stops instances recorded under `dir` whose process still runs and is really ours. */
async function reapOrphans(dir: string): Promise<void> {
  if (!existsSync(dir)) return;
  for (const id of await readdir(dir)) {
    const folder = join(dir, id);
    try {
      const info = JSON.parse(await readFile(join(folder, 'instance.json'), 'utf8')) as { pid?: number };
      if (info.pid && (await isOurs(info.pid, id))) {
        signalGroup(info.pid, 'SIGKILL');
      }
    } catch {
      // No record or no such process: nothing to stop.
    }
    await rm(folder, { recursive: true, force: true });
  }
}

/** A pid can be reused by an unrelated process; only one carrying our instance id is stopped. */
async function isOurs(pid: number, id: string): Promise<boolean> {
  try {
    const environ = await readFile(`/proc/${pid}/environ`, 'utf8');
    return environ.split('\0').includes(`BERTH_INSTANCE_ID=${id}`);
  } catch {
    return false;
  }
}
