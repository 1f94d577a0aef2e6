// A keep-alive HTTP/1.1 client for one container on loopback. Every invocation takes this hop, so
// it does only what the container contract needs: a whole request written with one socket write,
// a whole answer framed by Content-Length, chunked encoding or the end of the connection, and one
// timer per client rather than one per call. A general-purpose client (undici) spent about as much
// CPU per call on its request objects, stream bodies and timers as the gateway's own HTTP server
// (bench/python measures the hop).
import { connect } from 'node:net';
import type { Socket } from 'node:net';

/**
 * Why a call failed:
 * - `refused`: no connection could be made, so the container never saw the request (another
 *   instance may take it);
 * - `timeout`: no whole answer before the call's deadline (the connection is dropped);
 * - `closed`: the connection ended or broke before the whole answer arrived (a crash, usually);
 * - `too-large`: the answer's body passed `maxResponseBytes`;
 * - `malformed`: what came back is not HTTP/1.x.
 */
export type ContainerCallFailure = 'refused' | 'timeout' | 'closed' | 'too-large' | 'malformed';

export class ContainerCallError extends Error {
  constructor(
    readonly kind: ContainerCallFailure,
    message: string,
    /** The answer's status when its head arrived before the failure. */
    readonly status?: number,
  ) {
    super(message);
    this.name = 'ContainerCallError';
  }
}

export interface ContainerRequest {
  readonly method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  /** Starts with `/`; already percent-encoded. */
  readonly path: string;
  /** Lower-case names; values never contain CR, LF or NUL. */
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: Buffer | string;
  readonly timeoutMs: number;
  /** A larger answer fails the call with `too-large` and drops the connection. */
  readonly maxResponseBytes?: number;
  /**
   * false: the gateway never polls for this call (SpinWait), as for a health check, which no
   * client waits on: polling for it cost an idle gateway up to two milliseconds of CPU per
   * instance at every check, taken from whatever else the machine was doing.
   */
  readonly poll?: boolean;
}

export interface ContainerResponse {
  readonly status: number;
  /** Lower-case names; a repeated header's values joined with ", ". */
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Buffer;
}

/**
 * Keeps the gateway's event loop polling, instead of sleeping, while calls to containers come one at
 * a time: for at most `micros` after a lone call starts (waiting for the container's answer) and
 * again after it ends (waiting for the client's next request). A sleeping CPU costs a wake-up when
 * the next packet comes (on a virtual machine: an exit to the hypervisor and an interrupt, often tens
 * of microseconds, and the CPU may be given to someone else meanwhile); at concurrency 1 those two
 * wake-ups are most of what the gateway adds to a fast model's latency. It polls only when calls have
 * been strictly one at a time for `QUIET_MS`: once two overlap, the containers are busy and the CPU
 * is theirs (polling then cost bench/python a fifth of its throughput at concurrency 4). What it
 * costs when idle is bounded: at most `micros` of CPU after the last call. The guest "haltpoll" idle
 * driver does the same below the operating system, where it is enabled.
 *
 * Polling pays only while the CPU is the gateway's for the asking. When the machine is contended
 * (other processes, a hypervisor taking the CPU away), the scheduler counts a poller as a CPU hog: it
 * is preempted and waits whole time slices (milliseconds) for the CPU back, with the container's
 * answer waiting too, where a sleeping gateway would have been woken at once. So when a turn comes
 * more than `preemptedMs` after the one before and the process's CPU time since the wait began fell
 * behind the clock by more than half of that (the process was not running: a collection or a long
 * callback would have kept the CPU time up with the clock), polling stops for `contendedMs` (0:
 * never), during which the gateway sleeps like any event loop; then it polls again, and a machine
 * still contended stops it again at the next late turn.
 *
 * A socket write wakes its reader synchronously, a hint that the writer is about to sleep, and the
 * scheduler may queue the reader on the writer's CPU; a kernel that packs tasks onto few virtual CPUs
 * does so rather than wake an idle one, and a polling writer does not sleep, so the reader may wait
 * for the scheduler's tick (1 ms; `perf sched timehist` on the 2-vCPU development machine showed such
 * waits of the container's worker after an idle spell). A nap off the CPU (Atomics.wait, 20 µs) before
 * each wait for an answer removed those waits from the traces, but cost more than it saved: a
 * sleeping virtual CPU is halted, and the host takes its time to run it again (24 paired rounds of
 * 2 s from a blocking client, 2026-12-07: p50 1.09× and p99 1.20× FastAPI's with the nap, 0.99× and
 * 1.05× without). Polling that never sleeps is what keeps the gateway's CPU awake.
 *
 * So it polls only while calls come close together: a lone call whose request came more than
 * `micros` after the previous call's answer (the gateway had stopped polling and slept) is waited
 * for asleep, and so is the wait for the request after it. After such an idle spell the kernel has
 * often packed the client, the gateway and the container's worker onto one virtual CPU, and a worker
 * woken there behind a polling gateway waits for the scheduler's tick: at a steady 337 requests per
 * second from one client (about 2.5 ms between an answer and the next request), polling for every
 * answer made berth's median 1.36 ms against 0.82 without polling and 0.72 for FastAPI
 * (bench/python's paced run on the eighth development VM, docs/python-speed.md). Calls that follow
 * each other within `micros` keep it polling as before.
 */
export class SpinWait {
  private inFlight = 0;
  private spinning = false;
  private until = 0;
  private lastOverlap = -Infinity;
  /** What is being waited for: a lone call's answer, or the client's next call after it. */
  private waitingFor: 'answer' | 'next' = 'next';
  /** When the current wait began (performance.now()); while waiting for the next call, when the last answer came. */
  private waitStart = -Infinity;
  /** Moving averages of the two waits (ms): turns idle longer while the awaited event is far off. */
  private answerMs = 0;
  private nextMs = 0;
  /** Idle-loop steps per microsecond on this CPU, measured once (the loop cannot read a clock: see turn). */
  private readonly stepsPerMicro: number;
  /** When the last turn ended, and until when the machine counts as contended (no polling). */
  private lastTurn = 0;
  private contendedUntil = -Infinity;
  /** The process's CPU time (µs) and the clock (ms) at the first turn of the current wait; -1: not read yet. */
  private cpuAtWait = -1;
  private clockAtWait = 0;
  private readonly preemptedMs: number;
  private readonly contendedMs: number;

  constructor(
    private readonly micros: number,
    options: { readonly preemptedMs?: number | undefined; readonly contendedMs?: number | undefined } = {},
  ) {
    this.stepsPerMicro = micros > 0 ? this.calibrate() : 0;
    this.preemptedMs = options.preemptedMs ?? PREEMPTED_MS;
    this.contendedMs = options.contendedMs ?? CONTENDED_MS;
  }

  /** Whether the event loop is being kept polling right now. */
  get polling(): boolean {
    return this.spinning;
  }

  begin(): void {
    this.inFlight += 1;
    if (this.micros <= 0) return;
    const now = performance.now();
    if (this.inFlight > 1) {
      this.lastOverlap = now;
      return;
    }
    // A lone call always follows a wait for the next call: this is how long since the last answer.
    const sinceAnswer = now - this.waitStart;
    if (this.waitingFor === 'next' && this.spinning) this.nextMs = average(this.nextMs, sinceAnswer);
    this.waitingFor = 'answer';
    this.waitStart = now;
    this.cpuAtWait = -1;
    if (now - this.lastOverlap < QUIET_MS || now < this.contendedUntil) return;
    // After an idle spell (see the class comment): wait asleep, as a gateway without polling does.
    if (!this.spinning && sinceAnswer > this.micros / 1000) return;
    this.until = now + this.micros / 1000;
    if (!this.spinning) {
      this.spinning = true;
      this.lastTurn = now;
      setImmediate(this.turn);
    }
  }

  end(): void {
    this.inFlight -= 1;
    if (this.inFlight !== 0 || this.micros <= 0) return;
    const now = performance.now();
    if (this.waitingFor === 'answer' && this.spinning) this.answerMs = average(this.answerMs, now - this.waitStart);
    this.waitingFor = 'next';
    this.waitStart = now;
    this.cpuAtWait = -1;
    // The client's next request is likely a round trip away: keep polling for it.
    if (this.spinning) this.until = now + this.micros / 1000;
  }

  /**
   * One event-loop turn: setImmediate makes libuv poll its sockets without blocking, then come back.
   * Each turn allocates (the Immediate and its bookkeeping, a few hundred bytes, and the clock's
   * number). Turning as fast as the loop can made SpinWait most of the gateway's garbage, and its
   * young-generation collections the p99 of bench/python at concurrency 1; turning every few
   * microseconds still made four to five times the collections of a gateway that does not poll
   * (counted by hand with --trace-gc under wrk; bench/python prints only the latencies). So
   * each turn first idles on the CPU, which allocates nothing: a quarter of the time the awaited
   * event is still expected to take (a moving average), between MIN_IDLE_US and MAX_IDLE_US. Far
   * from the expected answer the loop turns rarely; near it, as often as before (a half instead of a
   * quarter cost 5 µs of p50 in paired wrk rounds at concurrency 1). An answer that comes early is noticed
   * at most MAX_IDLE_US late.
   */
  private readonly turn = (): void => {
    const now = performance.now();
    // Read while polling, so off the answer's path: one getrusage per wait, and one more after a late turn.
    if (this.cpuAtWait < 0) {
      this.cpuAtWait = cpuMicros();
      this.clockAtWait = now;
    } else if (now - this.lastTurn > this.preemptedMs && (now - this.clockAtWait) * 1000 - (cpuMicros() - this.cpuAtWait) > this.preemptedMs * 500) {
      this.contendedUntil = now + this.contendedMs;
    }
    if (this.inFlight > 1 || now >= this.until || now < this.contendedUntil) {
      this.spinning = false;
      return;
    }
    const expected = this.waitingFor === 'answer' ? this.answerMs : this.nextMs;
    const idleUs = Math.min(MAX_IDLE_US, Math.max(MIN_IDLE_US, ((this.waitStart + expected - now) * 1000) / 4));
    this.idle(Math.round(idleUs * this.stepsPerMicro));
    this.lastTurn = now + idleUs / 1000;
    setImmediate(this.turn);
  };

  /** Busy arithmetic, `steps` of it. A clock read in the loop would allocate (a number per read). */
  private idle(steps: number): void {
    let n = this.sink;
    for (let i = 0; i < steps; i++) n = (n * 31 + i) | 0;
    this.sink = n;
  }

  private calibrate(): number {
    const steps = 200_000;
    this.idle(steps); // warmed up before it is timed
    const t0 = performance.now();
    this.idle(steps);
    const us = (performance.now() - t0) * 1000;
    return us > 0 ? steps / us : steps;
  }

  /** Where the idle loop's result goes, so the compiler cannot drop the loop. */
  private sink = 0;
}

/** The shortest and longest idle between two polls of SpinWait (see SpinWait.turn). */
const MIN_IDLE_US = 2;
const MAX_IDLE_US = 40;

/** How long calls must have gone one at a time before SpinWait polls. */
const QUIET_MS = 100;

/**
 * A gap between two polling turns longer than this, not spent on the CPU, means the process lost the
 * CPU: a turn's own work, an answer forwarded or a request parsed, takes tens of microseconds.
 */
const PREEMPTED_MS = 0.5;
/** How long SpinWait stays off after such a gap (the spinWaitBackoffMs setting). */
const CONTENDED_MS = 1000;

/** CPU time this process has used, user and kernel, in µs. */
function cpuMicros(): number {
  const { user, system } = process.cpuUsage();
  return user + system;
}

/** A moving average that follows a change within a few dozen samples. */
function average(old: number, sample: number): number {
  return old === 0 ? sample : old + (sample - old) / 8;
}

export interface ContainerClientOptions {
  /** Connections opened at most; further calls wait for one to come free. */
  readonly maxConnections?: number;
  readonly connectTimeoutMs?: number;
  /** An idle connection is closed after this long. */
  readonly idleTimeoutMs?: number;
  /** Shared by every client of the process: whether to poll for a lone call's answer. */
  readonly spinWait?: SpinWait | undefined;
}

/** An answer's head may not be larger than this (the same bound the Python container puts on requests). */
const MAX_HEAD_BYTES = 64 * 1024;
const CRLF2 = Buffer.from('\r\n\r\n');
const UNSAFE = /[\r\n\0]/;
/** What Node's http refuses in a header value: anything but tab, visible ASCII and latin1. */
const CONTROL_BYTE = /[^\t\x20-\x7e\x80-\xff]/;
const STATUS_LINE = /^HTTP\/1\.[01] [1-9]\d\d(?: |$)/;

interface Call {
  readonly head: string;
  readonly body: Buffer | undefined;
  readonly deadline: number;
  readonly limit: number;
  readonly method: string;
  /** Whether SpinWait was told of this call (ContainerRequest.poll). */
  readonly polled: boolean;
  readonly resolve: (r: ContainerResponse) => void;
  readonly reject: (e: ContainerCallError) => void;
  connection: Connection | undefined;
  /** Where the call is in ContainerClient.pending; -1 once it is settled. */
  slot: number;
}

export class ContainerClient {
  private readonly idle: Connection[] = [];
  private readonly queue: Call[] = [];
  /**
   * The calls not yet settled, each at its `slot`; a settled call's place is taken by the last one.
   * Not a Set: a Set whose entries come and go at every call is rehashed every few calls, and V8
   * links each outgrown table to its successor, keeping the calls it held. Once one table outlives
   * two young-generation collections (a slow call is enough), the dead table in the old generation
   * keeps the next one alive, and that one the next: every call was promoted until the next full
   * collection. Under wrk at 16 connections (bench/python's load, read by hand with --trace-gc-nvp)
   * that was ~0.6 KB per invocation promoted and 3–5 ms young-generation pauses; with this array,
   * ~2 bytes and under 1 ms.
   */
  private readonly pending: Call[] = [];
  private readonly maxConnections: number;
  private readonly connectTimeoutMs: number;
  private readonly idleTimeoutMs: number;
  private readonly hostHeader: string;
  private connections = 0;
  private timer: NodeJS.Timeout | undefined;
  private timerAt = Infinity;
  private sweeper: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly spinWait: SpinWait | undefined;

  constructor(readonly host: string, readonly port: number, options: ContainerClientOptions = {}) {
    this.spinWait = options.spinWait;
    this.maxConnections = options.maxConnections ?? 128;
    this.connectTimeoutMs = options.connectTimeoutMs ?? 2_000;
    this.idleTimeoutMs = options.idleTimeoutMs ?? 60_000;
    this.hostHeader = `${host}:${port}`;
  }

  request(req: ContainerRequest): Promise<ContainerResponse> {
    if (this.closed) return Promise.reject(new ContainerCallError('refused', 'the container client is closed'));
    const head = this.head(req);
    const body = req.body === undefined ? undefined : typeof req.body === 'string' ? Buffer.from(req.body) : req.body;
    return new Promise((resolve, reject) => {
      const call: Call = {
        head: head + (body === undefined && req.method !== 'POST' && req.method !== 'PUT' ? '\r\n' : `content-length: ${body?.length ?? 0}\r\n\r\n`),
        body,
        deadline: Date.now() + req.timeoutMs,
        limit: req.maxResponseBytes ?? Infinity,
        method: req.method,
        polled: req.poll !== false && this.spinWait !== undefined,
        resolve,
        reject,
        connection: undefined,
        slot: this.pending.length,
      };
      this.pending.push(call);
      if (call.polled) this.spinWait?.begin();
      this.arm(call.deadline);
      const conn = this.idle.pop() ?? (this.connections < this.maxConnections ? this.open() : undefined);
      if (conn) conn.send(call);
      else this.queue.push(call);
    });
  }

  /** Drops every connection; calls in flight fail with `closed`. */
  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
    clearInterval(this.sweeper);
    for (const call of [...this.pending]) this.fail(call, new ContainerCallError('closed', 'the container client was closed'));
    for (const conn of this.idle.splice(0)) conn.destroy();
  }

  private head(req: ContainerRequest): string {
    if (UNSAFE.test(req.path) || req.path.includes(' ')) throw new TypeError(`unsafe request path ${JSON.stringify(req.path)}`);
    let head = `${req.method} ${req.path} HTTP/1.1\r\nhost: ${this.hostHeader}\r\n`;
    if (req.headers) {
      for (const name in req.headers) {
        const value = req.headers[name] as string;
        if (UNSAFE.test(value)) throw new TypeError(`unsafe value for header ${name}`);
        head += `${name}: ${value}\r\n`;
      }
    }
    return head;
  }

  private open(): Connection {
    this.connections += 1;
    return new Connection(this, connect({ host: this.host, port: this.port, noDelay: true }), this.connectTimeoutMs);
  }

  /** A connection finished a call and can take another. */
  released(conn: Connection): void {
    const next = this.queue.shift();
    if (next) {
      conn.send(next);
      return;
    }
    conn.idleSince = Date.now();
    this.idle.push(conn);
    this.sweeper ??= setInterval(() => this.sweep(), Math.max(100, this.idleTimeoutMs / 4)).unref();
  }

  /** A connection is gone; a queued call may open a new one. */
  lost(conn: Connection): void {
    this.connections -= 1;
    const i = this.idle.indexOf(conn);
    if (i >= 0) this.idle.splice(i, 1);
    const next = this.queue.shift();
    if (next && !this.closed) this.open().send(next);
  }

  settle(call: Call, res: ContainerResponse): void {
    if (!this.untrack(call)) return;
    if (call.polled) this.spinWait?.end();
    call.resolve(res);
  }

  fail(call: Call, err: ContainerCallError): void {
    if (!this.untrack(call)) return;
    if (call.polled) this.spinWait?.end();
    const i = this.queue.indexOf(call);
    if (i >= 0) this.queue.splice(i, 1);
    const conn = call.connection;
    call.connection = undefined;
    if (conn?.call === call) conn.destroy();
    call.reject(err);
  }

  /** Takes a call out of `pending`; false if it was settled already. */
  private untrack(call: Call): boolean {
    const slot = call.slot;
    if (slot < 0 || this.pending[slot] !== call) return false;
    const last = this.pending.pop() as Call;
    if (last !== call) {
      this.pending[slot] = last;
      last.slot = slot;
    }
    call.slot = -1;
    return true;
  }

  /** One timer for all calls: armed for the earliest deadline, re-armed when it fires. */
  private arm(deadline: number): void {
    if (deadline >= this.timerAt) return;
    clearTimeout(this.timer);
    this.timerAt = deadline;
    this.timer = setTimeout(() => this.expire(), Math.max(0, deadline - Date.now()));
    this.timer.unref();
  }

  private expire(): void {
    this.timerAt = Infinity;
    const now = Date.now();
    let next = Infinity;
    for (const call of [...this.pending]) {
      if (call.deadline <= now) this.fail(call, new ContainerCallError('timeout', 'no answer before the deadline'));
      else next = Math.min(next, call.deadline);
    }
    if (next < Infinity) this.arm(next);
  }

  private sweep(): void {
    const oldest = Date.now() - this.idleTimeoutMs;
    for (const conn of this.idle.filter((c) => c.idleSince <= oldest)) conn.destroy();
    if (this.idle.length === 0) {
      clearInterval(this.sweeper);
      this.sweeper = undefined;
    }
  }
}

/** Where the parser is in the answer. */
type Stage = 'head' | 'length' | 'chunk-size' | 'chunk-data' | 'chunk-end' | 'trailers' | 'until-close';

class Connection {
  call: Call | undefined;
  idleSince = 0;
  private connected = false;
  private gone = false;
  private stage: Stage = 'head';
  /** Bytes not yet parsed (only ever a partial head, chunk-size line or trailer). */
  private rest: Buffer | undefined;
  private status = 0;
  private headers: Record<string, string> = {};
  private keepAlive = true;
  private remaining = 0;
  private chunks: Buffer[] = [];
  private size = 0;
  /** The whole answer has been read; it is handed over once the bytes at hand are consumed. */
  private done = false;

  constructor(private readonly client: ContainerClient, private readonly socket: Socket, connectTimeoutMs: number) {
    const connectTimer = setTimeout(() => this.broken('refused', `no connection within ${connectTimeoutMs} ms`), connectTimeoutMs);
    socket.once('connect', () => {
      this.connected = true;
      clearTimeout(connectTimer);
    });
    socket.on('data', (data: Buffer) => this.onData(data));
    socket.on('end', () => this.onEnd());
    socket.on('error', (err: NodeJS.ErrnoException) => this.broken(this.connected ? 'closed' : 'refused', err.code ?? err.message));
    socket.once('close', () => {
      clearTimeout(connectTimer);
      this.broken('closed', 'connection closed');
    });
  }

  send(call: Call): void {
    this.call = call;
    call.connection = this;
    this.reset();
    const body = call.body;
    if (body === undefined || body.length === 0) {
      this.socket.write(call.head, 'latin1');
    } else if (body.length <= 16 * 1024) {
      // Small bodies are copied next to the head so the call is one write and one segment.
      const out = Buffer.allocUnsafe(call.head.length + body.length);
      out.write(call.head, 0, 'latin1');
      body.copy(out, call.head.length);
      this.socket.write(out);
    } else {
      this.socket.cork();
      this.socket.write(call.head, 'latin1');
      this.socket.write(body);
      this.socket.uncork();
    }
  }

  destroy(): void {
    this.socket.destroy();
  }

  private reset(): void {
    this.stage = 'head';
    this.rest = undefined;
    this.status = 0;
    this.headers = {};
    this.keepAlive = true;
    this.chunks = [];
    this.size = 0;
    this.done = false;
  }

  private onData(data: Buffer): void {
    const call = this.call;
    if (!call) {
      // Bytes nobody asked for: the connection cannot be trusted with the next call.
      this.socket.destroy();
      return;
    }
    let buf = this.rest ? Buffer.concat([this.rest, data]) : data;
    this.rest = undefined;
    try {
      while (buf.length > 0 && !this.done) buf = this.step(call, buf);
    } catch (err) {
      if (err instanceof ContainerCallError) this.client.fail(call, err);
      else throw err;
      return;
    }
    // Bytes past the answer were never asked for: the connection cannot be trusted with another call.
    if (this.done) this.finish(call, buf.length === 0);
  }

  /** Consumes what it can of `buf` and returns the remainder; keeps a partial line in `rest`. */
  private step(call: Call, buf: Buffer): Buffer {
    switch (this.stage) {
      case 'head': {
        const end = buf.indexOf(CRLF2);
        if (end < 0) {
          if (buf.length > MAX_HEAD_BYTES) throw new ContainerCallError('malformed', `an answer head larger than ${MAX_HEAD_BYTES} bytes`);
          this.rest = buf;
          return EMPTY;
        }
        this.parseHead(call, buf.toString('latin1', 0, end));
        return buf.subarray(end + 4);
      }
      case 'length': {
        const take = Math.min(this.remaining, buf.length);
        this.append(call, take === buf.length ? buf : buf.subarray(0, take));
        this.remaining -= take;
        if (this.remaining === 0) this.complete();
        return buf.subarray(take);
      }
      case 'until-close':
        this.append(call, buf);
        return EMPTY;
      case 'chunk-size':
      case 'trailers': {
        const eol = buf.indexOf('\r\n');
        if (eol < 0) {
          if (buf.length > MAX_HEAD_BYTES) throw new ContainerCallError('malformed', 'a chunk-size or trailer line that never ends');
          this.rest = buf;
          return EMPTY;
        }
        const line = buf.toString('latin1', 0, eol);
        if (this.stage === 'trailers') {
          if (line === '') this.complete();
        } else {
          const size = parseInt(line, 16);
          if (!/^[0-9a-fA-F]+/.test(line) || !Number.isSafeInteger(size)) throw new ContainerCallError('malformed', `a bad chunk size ${JSON.stringify(line.slice(0, 40))}`, this.status);
          this.remaining = size;
          this.stage = size === 0 ? 'trailers' : 'chunk-data';
        }
        return buf.subarray(eol + 2);
      }
      case 'chunk-data': {
        const take = Math.min(this.remaining, buf.length);
        this.append(call, buf.subarray(0, take));
        this.remaining -= take;
        if (this.remaining === 0) this.stage = 'chunk-end';
        return buf.subarray(take);
      }
      case 'chunk-end': {
        if (buf.length < 2) {
          this.rest = buf;
          return EMPTY;
        }
        if (buf[0] !== 13 || buf[1] !== 10) throw new ContainerCallError('malformed', 'a chunk not followed by CRLF', this.status);
        this.stage = 'chunk-size';
        return buf.subarray(2);
      }
    }
  }

  private parseHead(call: Call, head: string): void {
    // "HTTP/1.x SSS reason", then "name: value" lines; one pass with indexOf (this runs per call).
    const firstEnd = head.indexOf('\r\n');
    const statusLine = firstEnd < 0 ? head : head.slice(0, firstEnd);
    if (!STATUS_LINE.test(statusLine)) {
      throw new ContainerCallError('malformed', `not an HTTP/1.x status line: ${JSON.stringify(statusLine.slice(0, 80))}`);
    }
    const status = Number(statusLine.slice(9, 12));
    const headers: Record<string, string> = {};
    let at = firstEnd < 0 ? head.length : firstEnd + 2;
    while (at < head.length) {
      let end = head.indexOf('\r\n', at);
      if (end < 0) end = head.length;
      const colon = head.indexOf(':', at);
      if (colon <= at || colon > end) throw new ContainerCallError('malformed', `a malformed header line ${JSON.stringify(head.slice(at, Math.min(end, at + 80)))}`, status);
      const name = head.slice(at, colon).toLowerCase();
      const value = head.slice(colon + 1, end).trim();
      // A lone CR or LF (or any control byte) is refused here, for both of the gateway's writers:
      // Node's http throws on it, and the invocation fast path would pass it on to the client.
      if (CONTROL_BYTE.test(value)) throw new ContainerCallError('malformed', `a control byte in the value of header ${JSON.stringify(name)}`, status);
      const old = headers[name];
      headers[name] = old === undefined ? value : `${old}, ${value}`;
      at = end + 2;
    }
    if (status >= 100 && status < 200) return; // 100 Continue and the like precede the real answer.
    this.status = status;
    this.headers = headers;
    const connection = headers['connection']?.toLowerCase() ?? '';
    this.keepAlive = statusLine[7] === '1' ? !connection.includes('close') : connection.includes('keep-alive');
    const te = headers['transfer-encoding'];
    const cl = headers['content-length'];
    if (call.method === 'HEAD' || status === 204 || status === 304) {
      this.complete();
    } else if (te !== undefined && te.toLowerCase().includes('chunked')) {
      this.stage = 'chunk-size';
    } else if (cl !== undefined) {
      const n = Number(cl);
      if (!/^\d+$/.test(cl) || !Number.isSafeInteger(n)) throw new ContainerCallError('malformed', `a bad Content-Length ${JSON.stringify(cl)}`, status);
      if (n > call.limit) throw new ContainerCallError('too-large', `an answer of ${n} bytes`, status);
      this.remaining = n;
      this.stage = 'length';
      if (n === 0) this.complete();
    } else {
      this.keepAlive = false;
      this.stage = 'until-close';
    }
  }

  private append(call: Call, data: Buffer): void {
    this.size += data.length;
    if (this.size > call.limit) throw new ContainerCallError('too-large', `an answer of more than ${call.limit} bytes`, this.status);
    this.chunks.push(data);
  }

  private complete(): void {
    this.done = true;
  }

  private finish(call: Call, reusable: boolean): void {
    const body = this.chunks.length === 1 ? (this.chunks[0] as Buffer) : Buffer.concat(this.chunks, this.size);
    const res: ContainerResponse = { status: this.status, headers: this.headers, body };
    this.call = undefined;
    call.connection = undefined;
    this.reset();
    this.client.settle(call, res);
    if (this.keepAlive && reusable && !this.gone) this.client.released(this);
    else this.socket.destroy();
  }

  private onEnd(): void {
    const call = this.call;
    if (call && this.stage === 'until-close') {
      this.finish(call, false);
      return;
    }
    this.broken('closed', 'the container closed the connection');
  }

  private broken(kind: ContainerCallFailure, detail: string): void {
    const call = this.call;
    this.call = undefined;
    if (call) {
      const status = this.status === 0 ? undefined : this.status;
      this.client.fail(call, new ContainerCallError(kind, detail, status));
    }
    if (this.gone) return;
    this.gone = true;
    this.socket.destroy();
    this.client.lost(this);
  }
}

const EMPTY = Buffer.alloc(0);
