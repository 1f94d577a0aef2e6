// The invocation fast path. InvokeEndpoint is berth's hot path, and for a fast model Node's `http`
// machinery (the parser's JS callbacks, IncomingMessage and ServerResponse with their streams, a
// promise per body) cost the gateway more CPU than berth's own work: under bench/python's load at 16
// connections, the gateway's CPU per request (read from /proc) fell from about 110 µs to about 90 µs
// with this path, and berth's req/s ratio to FastAPI went from 0.87 to 1.08.
//
// So connections are read here first. A request that is a plain InvokeEndpoint — `POST
// /endpoints/{name}/invocations HTTP/1.1` with a Content-Length body within the payload limit, no
// Transfer-Encoding, Expect, X-Amz-Target, Connection other than keep-alive, repeated header that
// the invocation reads, or anything else unusual — is answered here, through the same `answerInvocation` as the `http` path.
// Anything else hands the connection, with the bytes read so far, to the `http` server for good, so
// that one strict parser (llhttp) decides every unusual case and every other route.
import { createServer } from 'node:net';
import type { Server as NetServer, Socket } from 'node:net';
import type { IncomingHttpHeaders, Server as HttpServer } from 'node:http';
import { STATUS_CODES } from 'node:http';
import { nextRequestId } from './request-id.js';
import type { Answer } from './envelope.js';

export interface FrontOptions {
  /** Where a connection goes when a request is not a plain InvokeEndpoint. */
  readonly http: HttpServer;
  readonly maxPayloadBytes: number;
  /** Idle keep-alive connections are closed after this long (the `http` server's keepAliveTimeout). */
  readonly keepAliveMs: number;
  /** The headers `answer` reads: the fast path keeps only these (names in lower case). */
  readonly headers: readonly string[];
  readonly answer: (headers: IncomingHttpHeaders, endpointName: string, body: Buffer, requestId: string) => Promise<Answer>;
}

/** Node's default --max-http-header-size: a longer head goes to `http`, which answers 431. */
const MAX_HEAD_BYTES = 16 * 1024;
const HEAD_END = Buffer.from('\r\n\r\n');
const LF_LF = Buffer.from('\n\n');
const REQUEST_LINE = /^POST \/endpoints\/([^/?#\s]+)\/invocations HTTP\/1\.1$/;
const DIGITS = /^\d{1,15}$/;
/**
 * What no plain head holds besides line ends: a byte other than tab and visible ASCII (obs-text,
 * control bytes). Tested once over the whole head; such heads are llhttp's to judge.
 */
const UNUSUAL_BYTE = /[^\t\r\n\x20-\x7e]/;
/** Headers whose presence sends the request to `http`: other framing, other operations. */
const NOT_HERE = ['transfer-encoding', 'expect', 'x-amz-target', 'upgrade'];
/** Headers the fast path itself reads. */
const FRAMING = ['content-length', 'connection'];

/** RFC 9110's token characters, which a header name is made of. */
const TCHAR = new Uint8Array(128);
for (const c of "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz") TCHAR[c.charCodeAt(0)] = 1;

/**
 * The header names a plain invocation looks at, grouped by length, so that a line's name is matched
 * where it lies in the head, without making a lower-case string of every name (an SDK request has a
 * dozen headers, and parsing them all cost more than the rest of the fast path's own work).
 */
export class HeaderNames {
  private readonly byLength: string[][] = [];

  constructor(names: Iterable<string>) {
    for (const name of new Set([...names, ...NOT_HERE, ...FRAMING])) (this.byLength[name.length] ??= []).push(name.toLowerCase());
  }

  /** The known name written at text[start, end) in any case, if any. */
  match(text: string, start: number, end: number): string | undefined {
    const candidates = this.byLength[end - start];
    if (candidates === undefined) return undefined;
    next: for (const name of candidates) {
      for (let i = start; i < end; i++) {
        let c = text.charCodeAt(i);
        if (c >= 65 && c <= 90) c |= 0x20;
        if (c !== name.charCodeAt(i - start)) continue next;
      }
      return name;
    }
    return undefined;
  }
}

interface Request {
  readonly endpointName: string;
  readonly headers: IncomingHttpHeaders;
  readonly headLength: number;
  readonly bodyLength: number;
}

/**
 * The request whose head is `head` (without its blank line), if it is a plain InvokeEndpoint;
 * undefined sends the connection to `http`. Only the headers in `names` are kept; every line is
 * still checked (a token name, a colon, a value of visible ASCII, space and tab), and one of
 * `names` given twice sends the request to `http`.
 */
export function plainInvocation(head: string, headLength: number, maxPayloadBytes: number, names: HeaderNames): Request | undefined {
  if (UNUSUAL_BYTE.test(head)) return undefined;
  let eol = lineEnd(head, 0);
  if (eol < 0) return undefined;
  const line = REQUEST_LINE.exec(head.slice(0, eol));
  if (!line) return undefined;
  let endpointName: string;
  try {
    endpointName = decodeURIComponent(line[1] as string);
  } catch {
    return undefined;
  }
  const headers: IncomingHttpHeaders = {};
  for (let at = eol + 2; at < head.length; at = eol + 2) {
    eol = lineEnd(head, at);
    if (eol < 0) return undefined;
    let colon = at;
    while (colon < eol && TCHAR[head.charCodeAt(colon)] === 1) colon++;
    // A name that is empty or not a token, a folded line, a line without a colon: llhttp's to judge.
    if (colon === at || colon === eol || head.charCodeAt(colon) !== 58) return undefined;
    let start = colon + 1;
    let end = eol;
    while (start < end && isSpace(head.charCodeAt(start))) start++;
    while (end > start && isSpace(head.charCodeAt(end - 1))) end--;
    const name = names.match(head, at, colon);
    if (name === undefined) continue;
    if (NOT_HERE.includes(name) || headers[name] !== undefined) return undefined;
    headers[name] = head.slice(start, end);
  }
  const length = headers['content-length'];
  if (typeof length !== 'string' || !DIGITS.test(length)) return undefined;
  const bodyLength = Number(length);
  if (bodyLength > maxPayloadBytes) return undefined; // `http` answers the oversize error and drains the rest
  const connection = headers['connection'];
  if (connection !== undefined && connection.toLowerCase() !== 'keep-alive') return undefined;
  return { endpointName, headers, headLength, bodyLength };
}

/** Where the line starting at `at` ends (its CR, or the head's end); -1 if it holds a lone CR or LF. */
function lineEnd(head: string, at: number): number {
  let lf = head.indexOf('\n', at);
  if (lf < 0) lf = head.length + 1;
  else if (head.charCodeAt(lf - 1) !== 13) return -1;
  const cr = head.indexOf('\r', at);
  return cr < 0 ? head.length : cr === lf - 1 ? cr : -1;
}

function isSpace(c: number): boolean {
  return c === 32 || c === 9;
}

/**
 * What ends every answer's head: the Date header (formatted once a second, as Node's `http` does) and
 * the connection headers, kept as one string that changes once a second.
 */
class HeadTail {
  private second = -1;
  private keepAlive = '';
  private close = '';

  constructor(private readonly keepAliveMs: number) {}

  text(keepAlive: boolean): string {
    const now = Date.now();
    const second = Math.floor(now / 1000);
    if (second !== this.second) {
      this.second = second;
      const date = `date: ${new Date(now).toUTCString()}\r\n`;
      this.keepAlive = `${date}connection: keep-alive\r\nkeep-alive: timeout=${Math.floor(this.keepAliveMs / 1000)}\r\n\r\n`;
      this.close = `${date}connection: close\r\n\r\n`;
    }
    return keepAlive ? this.keepAlive : this.close;
  }
}

const STATUS_LINES = new Map<number, string>();

/**
 * The answer as one buffer. The head's pieces are written into it where they go rather than joined
 * into a string first: joining made a string of every piece and then a flat copy of the whole, the
 * largest share of the fast path's garbage per invocation. Header names and values are latin1 (the
 * container client refuses anything else), so a piece's length is its size in bytes.
 */
export function renderAnswer(answer: Answer, tail: string): Buffer {
  let status = STATUS_LINES.get(answer.status);
  if (status === undefined) {
    status = `HTTP/1.1 ${answer.status} ${STATUS_CODES[answer.status] ?? 'Unknown'}\r\n`;
    STATUS_LINES.set(answer.status, status);
  }
  const headers = answer.headers;
  let size = status.length + tail.length;
  for (const name in headers) size += name.length + String(headers[name]).length + 4; // ": " and CRLF
  const body = typeof answer.body === 'string' ? Buffer.from(answer.body) : answer.body;
  const out = Buffer.allocUnsafe(size + body.length);
  let at = out.write(status, 0, 'latin1');
  for (const name in headers) {
    at += out.write(name, at, 'latin1');
    out[at++] = 58; // ':'
    out[at++] = 32;
    at += out.write(String(headers[name]), at, 'latin1');
    out[at++] = 13;
    out[at++] = 10;
  }
  at += out.write(tail, at, 'latin1');
  body.copy(out, at);
  return out;
}

class FastConnection {
  /** Bytes read and not yet used; `parts` holds a body's pieces until they are all here. */
  private buffered: Buffer | undefined;
  private parts: Buffer[] = [];
  private partsLength = 0;
  private pending: Request | undefined;
  private busy = false;
  private gone = false;
  /** When the connection last read or answered (Date.now()); Front's sweep ends it when idle too long. */
  lastActive = Date.now();

  constructor(private readonly socket: Socket, private readonly o: FrontOptions, private readonly front: Front) {
    socket.setNoDelay(true);
    socket.on('data', this.onData);
    socket.on('error', this.onGone);
    socket.on('close', this.onGone);
  }

  get idle(): boolean {
    return !this.busy && this.buffered === undefined && this.pending === undefined;
  }

  /** Closing: an idle connection ends now, a busy one after its answer. */
  close(): void {
    if (this.idle) this.socket.destroy();
  }

  /** Ends the connection if it has waited for a request longer than the keep-alive timeout. */
  expire(now: number): void {
    if (!this.busy && now - this.lastActive >= this.o.keepAliveMs) this.socket.destroy();
  }

  private readonly onGone = (): void => {
    if (this.gone) return;
    this.gone = true;
    this.front.forget(this);
  };

  private readonly onData = (chunk: Buffer): void => {
    this.lastActive = Date.now();
    if (this.pending !== undefined) {
      // A body arriving in pieces is joined once, when it is whole, not at every piece.
      this.parts.push(chunk);
      this.partsLength += chunk.length;
      if (this.partsLength < this.pending.headLength + this.pending.bodyLength) return;
      this.buffered = Buffer.concat(this.parts, this.partsLength);
      this.parts = [];
      this.partsLength = 0;
    } else {
      this.buffered = this.buffered === undefined ? chunk : Buffer.concat([this.buffered, chunk]);
    }
    // Pipelined requests wait in the kernel while one is answered, as Node's http server lets them:
    // a client cannot grow this buffer faster than berth answers.
    if (this.busy) this.socket.pause();
    else this.next();
  };

  /** Answers the next buffered request, or hands the connection on. */
  private next(): void {
    const buf = this.buffered;
    if (buf === undefined) return;
    let req = this.pending;
    if (req === undefined) {
      const end = buf.indexOf(HEAD_END);
      if (end < 0) {
        // Too long for a head, or lines ended by a bare LF: llhttp's to refuse, not ours to wait on.
        if (buf.length > MAX_HEAD_BYTES || buf.includes(LF_LF)) this.handOff();
        return;
      }
      req = end > MAX_HEAD_BYTES || this.front.closing ? undefined : plainInvocation(buf.toString('latin1', 0, end), end + 4, this.o.maxPayloadBytes, this.front.names);
      if (req === undefined) {
        this.handOff();
        return;
      }
    }
    const total = req.headLength + req.bodyLength;
    if (buf.length < total) {
      // The rest of the body is on its way: collect it in `parts`.
      this.pending = req;
      this.parts = [buf];
      this.partsLength = buf.length;
      this.buffered = undefined;
      return;
    }
    this.pending = undefined;
    const body = buf.subarray(req.headLength, total);
    this.buffered = buf.length > total ? buf.subarray(total) : undefined;
    this.busy = true;
    this.o.answer(req.headers, req.endpointName, body, nextRequestId()).then(this.reply, () => this.socket.destroy());
  }

  private readonly reply = (answer: Answer): void => {
    this.busy = false;
    if (this.gone) return;
    this.lastActive = Date.now();
    const keepAlive = !this.front.closing;
    const flushed = this.socket.write(renderAnswer(answer, this.front.tail.text(keepAlive)));
    if (!keepAlive) {
      this.socket.end();
      return;
    }
    if (flushed) this.goOn();
    else this.socket.once('drain', this.goOn);
  };

  /** After an answer: read on, and answer what was read meanwhile. */
  private readonly goOn = (): void => {
    if (this.socket.isPaused()) this.socket.resume();
    this.next();
  };

  /** From here on the connection is the `http` server's, starting with the bytes read so far. */
  private handOff(): void {
    const buf = this.buffered;
    this.buffered = undefined;
    this.gone = true;
    this.front.forget(this);
    const s = this.socket;
    s.off('data', this.onData);
    s.off('error', this.onGone);
    s.off('close', this.onGone);
    s.pause();
    this.o.http.emit('connection', s);
    if (buf !== undefined) s.unshift(buf);
    process.nextTick(() => s.resume());
  }
}

/**
 * The fast path's connections. Their keep-alive timeout is one sweep for all of them rather than a
 * socket timer each: a socket timer is cleared and set again around every request, and refreshed at
 * every read and write, which was a visible part of the fast path's own CPU per request.
 */
class Front {
  closing = false;
  readonly names: HeaderNames;
  readonly tail: HeadTail;
  private readonly connections = new Set<FastConnection>();
  private sweeper: NodeJS.Timeout | undefined;

  constructor(private readonly o: FrontOptions) {
    this.names = new HeaderNames(o.headers);
    this.tail = new HeadTail(o.keepAliveMs);
  }

  accept(socket: Socket): void {
    this.connections.add(new FastConnection(socket, this.o, this));
    // Idle connections end between keepAliveMs and keepAliveMs plus a quarter of it (at most a second).
    this.sweeper ??= setInterval(() => this.sweep(), Math.min(1_000, Math.max(10, this.o.keepAliveMs / 4))).unref();
  }

  forget(c: FastConnection): void {
    this.connections.delete(c);
    if (this.connections.size === 0) {
      clearInterval(this.sweeper);
      this.sweeper = undefined;
    }
  }

  close(): void {
    this.closing = true;
    for (const c of [...this.connections]) c.close();
    this.o.http.closeIdleConnections();
  }

  private sweep(): void {
    const now = Date.now();
    for (const c of [...this.connections]) c.expire(now);
  }
}

/**
 * The listening server: it reads each connection first and keeps plain invocations, handing the rest
 * to `o.http` (which itself never listens). `close()` also ends idle connections, on both paths.
 */
export function createFront(o: FrontOptions): NetServer {
  const front = new Front(o);
  const server = createServer({ noDelay: true }, (socket) => front.accept(socket));
  // The `http` server tracks its connections (headersTimeout, closeIdleConnections) from 'listening'.
  server.once('listening', () => o.http.emit('listening'));
  const close = server.close.bind(server);
  server.close = (callback?: (err?: Error) => void) => {
    front.close();
    return close(callback);
  };
  return server;
}
