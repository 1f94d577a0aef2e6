// The process fleet: each container of an instance is a child process in its own process group,
// speaking SageMaker's container contract on a loopback port. The instance folder under
// <dataDir>/instances records the pids, so a berth that was killed with SIGKILL finds and stops the
// instances it left behind when it restarts.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { createWriteStream, existsSync } from 'node:fs';
import type { WriteStream } from 'node:fs';
import { mkdir, readFile, readdir, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { randomBytes } from 'node:crypto';
import { ContainerClient, SpinWait } from './client.js';
import type { ContainerHandle, ContainerSpec, FleetProvider, Instance, InstanceEvents, InstanceExit, InstanceSpec, InstanceState } from './instance.js';
import { freePortBlock } from './ports.js';
import type { PortBlock } from './ports.js';

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
  /** How long the gateway polls for a lone call's answer before sleeping (SpinWait); 0: never. */
  readonly spinWaitMicros?: number;
  /** How long it stops polling after finding itself off the CPU mid-wait; 0: never stops. */
  readonly spinWaitBackoffMs?: number;
}

const RING_LINES = 200;
/** Ports per container: the one it binds, then its SAGEMAKER_SAFE_PORT_RANGE. */
const PORTS_PER_CONTAINER = 10;

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

/** One container process of an instance. */
class ContainerProcess implements ContainerHandle {
  readonly client: ContainerClient;
  readonly ring = new LineRing();
  exitInfo: InstanceExit | undefined;
  readonly exited: Promise<void>;

  constructor(
    readonly name: string,
    private readonly ports: PortBlock,
    private readonly child: ChildProcess,
    private readonly log: WriteStream,
    spinWait: SpinWait,
    onExit: (c: ContainerProcess) => void,
  ) {
    this.client = new ContainerClient('127.0.0.1', ports.port, { spinWait });
    const onData = (chunk: Buffer) => {
      this.log.write(chunk);
      this.ring.push(chunk.toString('utf8'));
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.exitInfo = { code, signal };
        onExit(this);
        resolve();
      });
      child.once('error', (err) => {
        this.exitInfo = { code: null, signal: null };
        this.ring.push(`berth: could not start the container: ${err.message}\n`);
        onExit(this);
        resolve();
      });
    });
  }

  get port(): number {
    return this.ports.port;
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  async ping(timeoutMs: number): Promise<boolean> {
    try {
      const res = await this.client.request({ path: '/ping', method: 'GET', timeoutMs, maxResponseBytes: 1024 * 1024, poll: false });
      return res.status === 200;
    } catch {
      return false;
    }
  }

  async stop(graceMs: number): Promise<void> {
    if (!this.exitInfo) {
      signalGroup(this.child.pid, 'SIGTERM');
      const killer = setTimeout(() => signalGroup(this.child.pid, 'SIGKILL'), graceMs);
      await this.exited;
      clearTimeout(killer);
    } else {
      // The leader is gone; workers it forked may not be.
      signalGroup(this.child.pid, 'SIGKILL');
    }
    this.client.close();
    this.ports.release();
    await new Promise<void>((resolve) => this.log.end(resolve));
  }
}

class ProcessInstance implements Instance {
  outstanding = 0;
  containers: ContainerProcess[] = [];
  private current: InstanceState = 'starting';
  private readonly events = new EventEmitter();
  private failedPings = 0;
  private readonly inFlightSources: (() => number)[] = [];

  constructor(
    readonly id: string,
    readonly spec: InstanceSpec,
    private readonly options: ProcessFleetOptions,
    private readonly dir: string,
    private readonly onStopped: () => void,
  ) {}

  get state(): InstanceState {
    return this.current;
  }

  /** Every change of state is announced (`state` event): copies of the routes follow it. */
  private become(state: InstanceState): void {
    if (state === this.current) return;
    this.current = state;
    this.events.emit('state', state);
  }

  countInFlight(source: () => number): void {
    this.inFlightSources.push(source);
  }

  private inFlight(): number {
    let n = this.outstanding;
    for (const source of this.inFlightSources) n += source();
    return n;
  }

  on<E extends keyof InstanceEvents>(event: E, listener: InstanceEvents[E]): void {
    this.events.on(event, listener);
  }

  off<E extends keyof InstanceEvents>(event: E, listener: InstanceEvents[E]): void {
    this.events.off(event, listener);
  }

  /** Called when a container process exits: unless the instance is stopping, it has failed. */
  containerExited(c: ContainerProcess): void {
    if (this.current === 'stopped') return;
    this.fail(this.describe(c, describeExit(c.exitInfo as InstanceExit)));
  }

  private describe(c: ContainerProcess, what: string): string {
    return this.containers.length > 1 ? `container ${c.name}: ${what}` : what;
  }

  logTail(lines: number): string[] {
    if (this.containers.length === 1) return (this.containers[0] as ContainerProcess).ring.tail(lines);
    return this.containers.flatMap((c) => c.ring.tail(lines).map((l) => `[${c.name}] ${l}`)).slice(-lines);
  }

  async waitUntilHealthy(timeoutMs: number, signal?: AbortSignal): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const healthy = new Set<ContainerProcess>();
    let delay = 20;
    for (;;) {
      if (this.current === 'failed' || this.current === 'stopped') {
        const gone = this.containers.find((c) => c.exitInfo);
        throw new Error(gone ? this.describe(gone, describeExit(gone.exitInfo as InstanceExit)) : `the instance is ${this.current}`);
      }
      if (signal?.aborted) throw new Error('startup was cancelled');
      await Promise.all(this.containers.filter((c) => !healthy.has(c)).map(async (c) => {
        if (await c.ping(this.options.pingTimeoutMs)) healthy.add(c);
      }));
      if (healthy.size === this.containers.length) {
        if (this.current === 'starting') this.become('ready');
        return;
      }
      if (Date.now() >= deadline) {
        const waiting = this.containers.filter((c) => !healthy.has(c));
        const what = `the container did not answer GET /ping with 200 within ${Math.round(timeoutMs / 1000)} seconds`;
        throw new Error(this.containers.length > 1 ? `${waiting.map((c) => c.name).join(', ')}: ${what}` : what);
      }
      // Fast at first so a quick container is in service in milliseconds, then every 100 ms: a
      // container whose start takes seconds (the Python container importing its framework) is seen
      // healthy within 100 ms rather than within the 500 a gentler cap left it. A /ping costs the
      // container next to nothing, and starts are rare.
      await sleep(delay);
      delay = Math.min(delay * 2, 100);
    }
  }

  /** Called by the fleet's health loop. */
  async check(): Promise<void> {
    if (this.current !== 'ready') return;
    const results = await Promise.all(this.containers.map((c) => c.ping(this.options.pingTimeoutMs)));
    const sick = this.containers.filter((_, i) => !results[i]);
    if (sick.length === 0) {
      this.failedPings = 0;
      return;
    }
    this.failedPings += 1;
    if (this.failedPings >= this.options.unhealthyThreshold && this.current === 'ready') {
      this.fail(this.describe(sick[0] as ContainerProcess, `stopped answering GET /ping (${this.failedPings} checks in a row failed)`));
    }
  }

  async drain(timeoutMs: number): Promise<void> {
    if (this.current === 'ready' || this.current === 'starting') this.become('draining');
    const deadline = Date.now() + timeoutMs;
    while (this.inFlight() > 0 && Date.now() < deadline) await sleep(10);
  }

  async stop(graceMs: number): Promise<void> {
    if (this.current !== 'failed') this.become('stopped');
    await Promise.all(this.containers.map((c) => c.stop(graceMs)));
    await rm(this.dir, { recursive: true, force: true });
    this.onStopped();
  }

  fail(reason: string): void {
    if (this.current === 'failed' || this.current === 'stopped') return;
    this.become('failed');
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
  private readonly spinWait: SpinWait;

  private constructor(private readonly options: ProcessFleetOptions) {
    this.spinWait = new SpinWait(options.spinWaitMicros ?? 0, { contendedMs: options.spinWaitBackoffMs });
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
    const logDir = join(this.options.dataDir, 'logs', spec.endpointName.toLowerCase());
    await mkdir(logDir, { recursive: true });
    const instance: ProcessInstance = new ProcessInstance(id, spec, this.options, dir, () => this.instances.delete(instance));
    this.instances.add(instance);
    for (const c of spec.containers) {
      instance.containers.push(await this.startContainer(instance, c, dir, logDir));
      // Recorded after each start, so a crash of berth at any point leaves every pid findable.
      await writeFile(join(dir, 'instance.json'), JSON.stringify({ id, pids: instance.containers.map((x) => x.pid), endpoint: spec.endpointName }));
    }
    return instance;
  }

  private async startContainer(instance: ProcessInstance, c: ContainerSpec, dir: string, logDir: string): Promise<ContainerProcess> {
    // Each container has its own folder, the /opt/ml it would see in Docker.
    const base = join(dir, c.name);
    await mkdir(base, { recursive: true });
    if (c.modelDir) await symlink(c.modelDir, join(base, 'model'), 'dir');
    else await mkdir(join(base, 'model'));
    const log = createWriteStream(join(logDir, `${instance.spec.variantName}.${c.name}.${instance.id}.log`), { flags: 'a' });
    const ports = await freePortBlock(PORTS_PER_CONTAINER);
    const port = ports.port;
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(this.options.baseEnv)) if (v !== undefined) env[k] = v;
    Object.assign(env, c.env, {
      SAGEMAKER_BIND_TO_PORT: String(port),
      SAGEMAKER_SAFE_PORT_RANGE: `${port + 1}-${port + PORTS_PER_CONTAINER - 1}`,
      // There is no /opt/ml without Docker: SAGEMAKER_BASE_DIR re-roots it for the inference
      // toolkits, SM_MODEL_DIR names the model folder directly.
      SAGEMAKER_BASE_DIR: base,
      SM_MODEL_DIR: join(base, 'model'),
      BERTH_INSTANCE_ID: instance.id,
    });
    const [cmd, ...args] = c.command;
    let child: ChildProcess;
    try {
      child = spawn(cmd as string, [...args, 'serve'], {
        cwd: base,
        env,
        detached: true, // its own process group, so stop() reaches the workers it forks
        stdio: ['ignore', 'pipe', 'pipe'],
      });
    } catch (err) {
      ports.release();
      log.end();
      throw err;
    }
    return new ContainerProcess(c.name, ports, child, log, this.spinWait, (p) => instance.containerExited(p));
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

/** Stops instances recorded under `dir` whose processes still run and are really ours. */
async function reapOrphans(dir: string): Promise<void> {
  if (!existsSync(dir)) return;
  for (const id of await readdir(dir)) {
    const folder = join(dir, id);
    try {
      const info = JSON.parse(await readFile(join(folder, 'instance.json'), 'utf8')) as { pids?: (number | null)[] };
      for (const pid of info.pids ?? []) {
        if (pid && (await isOurs(pid, id))) signalGroup(pid, 'SIGKILL');
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
