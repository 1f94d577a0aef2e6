import { test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createServer as createHttpServer, request } from 'node:http';
import type { IncomingHttpHeaders } from 'node:http';
import { connect } from 'node:net';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { Router } from '../router/index.js';
import { createFront, HeaderNames, plainInvocation } from './front.js';
import { NativeFront, nativeFrontAddon } from './native.js';

/** The two fronts behind one interface: the Node front (front.ts) and the native one (native.ts). */
const FRONTS = ['node', 'native'] as const;
type Kind = (typeof FRONTS)[number];

const MAX = 1000;
const head = (lines: string[]) => lines.join('\r\n');
const NAMES = new HeaderNames(['content-type', 'x-amzn-sagemaker-custom-attributes']);
const parse = (lines: string[]) => plainInvocation(head(lines), head(lines).length + 4, MAX, NAMES);
const BASE = ['POST /endpoints/my-endpoint/invocations HTTP/1.1', 'Host: x', 'Content-Type: text/csv', 'Content-Length: 5'];

/** Heads that are not a plain InvokeEndpoint: both fronts leave them to the http server. */
const REFUSED: [string, string[]][] = [
  ['another method', ['GET /endpoints/e/invocations HTTP/1.1', 'Content-Length: 0']],
  ['HTTP/1.0', ['POST /endpoints/e/invocations HTTP/1.0', 'Content-Length: 0']],
  ['a query string', ['POST /endpoints/e/invocations?x=1 HTTP/1.1', 'Content-Length: 0']],
  ['another route', ['POST /endpoints/e/async-invocations HTTP/1.1', 'Content-Length: 0']],
  ['a bad escape', ['POST /endpoints/%zz/invocations HTTP/1.1', 'Content-Length: 0']],
  ['no Content-Length', BASE.slice(0, 3)],
  ['a chunked body', [...BASE, 'Transfer-Encoding: chunked']],
  ['Expect', [...BASE, 'Expect: 100-continue']],
  ['an X-Amz-Target', [...BASE, 'X-Amz-Target: SageMaker.ListEndpoints']],
  ['Connection: close', [...BASE, 'Connection: close']],
  ['a repeated header', [...BASE, 'content-length: 5']],
  ['a Content-Length that is not a number', [...BASE.slice(0, 3), 'Content-Length: 5x']],
  ['a body over the limit', [...BASE.slice(0, 3), `Content-Length: ${MAX + 1}`]],
  ['a folded header', [...BASE, ' folded']],
  ['a header without a colon', [...BASE, 'nonsense']],
  ['a bad header name', [...BASE, 'Bad Name: x']],
  ['a control byte in a value', [...BASE, 'X-Thing: a\x01b']],
  ['a byte over 0x7e in a value', [...BASE, 'X-Thing: caf\xe9']],
  ['a repeated header the invocation reads', [...BASE, 'content-TYPE: text/plain']],
  ['an empty header name', [...BASE, ': x']],
  ['a lone CR in a value', [...BASE, 'X-Thing: a\rb']],
  ['a lone LF in a value', [...BASE, 'X-Thing: a\nb']],
  ['a lone LF in the request line', ['POST /endpoints/e/invocations\n HTTP/1.1', 'Content-Length: 0']],
];

test('a plain InvokeEndpoint is taken; anything unusual is left to the http server', () => {
  const req = parse(BASE);
  assert.equal(req?.endpointName, 'my-endpoint');
  assert.equal(req?.bodyLength, 5);
  assert.equal(req?.headers['content-type'], 'text/csv');
  assert.equal(parse(['POST /endpoints/a%2Db/invocations HTTP/1.1', 'Content-Length: 0'])?.endpointName, 'a-b');
  assert.ok(parse([...BASE, 'Connection: Keep-Alive']));
  // Only the headers the invocation reads are kept, whatever their case and surrounding spaces; one
  // it does not read may repeat, as llhttp lets it.
  const kept = parse([BASE[0] as string, 'CONTENT-TYPE:\t text/csv ', 'X-Amzn-SageMaker-Custom-Attributes: a=1', 'Content-Length: 5', 'X-Other: 1', 'x-other: 2']);
  assert.deepEqual({ ...kept?.headers }, { 'content-type': 'text/csv', 'x-amzn-sagemaker-custom-attributes': 'a=1', 'content-length': '5' });
  for (const [what, lines] of REFUSED) assert.equal(parse(lines), undefined, what);
});

interface Seen {
  fast: { endpointName: string; body: string; headers: IncomingHttpHeaders }[];
  slow: string[];
}

async function front(kind: Kind, t: TestContext, answerDelayMs = 0, keepAliveMs = 65_000): Promise<{ port: number; seen: Seen; close: () => Promise<void> }> {
  const seen: Seen = { fast: [], slow: [] };
  const http = createHttpServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      seen.slow.push(`${req.method} ${req.url} ${Buffer.concat(chunks).toString()}`);
      res.end(`slow ${req.url}`);
    });
  });
  const options = {
    http,
    maxPayloadBytes: 1024 * 1024,
    keepAliveMs,
    headers: ['content-type', 'x-amzn-sagemaker-custom-attributes'],
    answer: async (headers: IncomingHttpHeaders, endpointName: string, body: Buffer, requestId: string) => {
      seen.fast.push({ endpointName, body: body.toString(), headers });
      if (answerDelayMs) await sleep(answerDelayMs);
      return { status: 200, headers: { 'content-type': 'text/plain', 'content-length': body.length + 5, 'x-amzn-requestid': requestId }, body: `fast ${body.toString()}` };
    },
  };
  let server: { listen(port: number, host: string, cb: () => void): unknown; address(): AddressInfo | string | null; close(cb: () => void): unknown };
  if (kind === 'native') {
    const addon = nativeFrontAddon();
    if (!addon) throw new Error('the native front is not built: `npm ci` builds it (scripts/build-native.mjs needs a C compiler and Node\'s headers)');
    // A router without routes: the native front asks JavaScript (`answer`) for every invocation.
    const router = new Router({ accountId: '123456789012', invocationTimeoutMs: 60_000, maxResponseBytes: 1024 * 1024 });
    server = new NativeFront({
      ...options, addon, router, invocationTimeoutMs: 60_000, maxResponseBytes: 1024 * 1024,
      delivered: () => {
        throw new Error('no container is called here');
      },
    });
  } else {
    server = createFront(options);
  }
  await new Promise<void>((res) => server.listen(0, '127.0.0.1', res));
  let closed = false;
  const close = () => new Promise<void>((res) => {
    if (closed) return res();
    closed = true;
    server.close(() => res());
  });
  t.after(close);
  return { port: (server.address() as AddressInfo).port, seen, close };
}

/** Writes `parts` (with pauses between them) on one connection and returns everything read until `until` is seen. */
async function exchange(port: number, parts: string[], until: (text: string) => boolean): Promise<string> {
  const socket = connect(port, '127.0.0.1');
  let text = '';
  const done = new Promise<void>((resolve, reject) => {
    socket.on('data', (d: Buffer) => {
      text += d.toString('latin1');
      if (until(text)) resolve();
    });
    socket.on('error', reject);
    socket.on('close', () => resolve());
  });
  for (const p of parts) {
    socket.write(p);
    await sleep(5);
  }
  await done;
  socket.destroy();
  return text;
}

const invocation = (body: string, name = 'ep') => `POST /endpoints/${name}/invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: ${body.length}\r\n\r\n${body}`;
const count = (text: string, s: string) => text.split(s).length - 1;

for (const kind of FRONTS) {

  test(`${kind}: invocations are answered on the fast path, keep-alive, in order, however the bytes arrive`, async (t) => {
    const { port, seen } = await front(kind, t);
    // Node's own client reads the answer and reuses the connection.
    for (const body of ['one', 'two']) {
      const answer = await new Promise<{ status: number; headers: IncomingHttpHeaders; text: string }>((resolve, reject) => {
        const req = request({ port, host: '127.0.0.1', method: 'POST', path: '/endpoints/ep/invocations', headers: { 'content-type': 'text/plain' } }, (res) => {
          let text = '';
          res.on('data', (d: Buffer) => (text += d.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text }));
        });
        req.on('error', reject);
        req.end(body);
      });
      assert.equal(answer.status, 200);
      assert.equal(answer.text, `fast ${body}`);
      assert.equal(answer.headers['connection'], 'keep-alive');
      assert.ok(answer.headers['date']);
      assert.match(String(answer.headers['x-amzn-requestid']), /^[0-9a-f-]{36}$/);
    }
    // Byte by byte, then two requests in one write (pipelined).
    const slow = await exchange(port, [...invocation('abc')], (x) => x.includes('fast abc'));
    assert.match(slow, /^HTTP\/1\.1 200 OK\r\n/);
    const two = await exchange(port, [invocation('first') + invocation('second')], (x) => x.includes('fast second'));
    assert.ok(two.indexOf('fast first') < two.indexOf('fast second'));
    assert.deepEqual(seen.fast.map((f) => f.body), ['one', 'two', 'abc', 'first', 'second']);
    assert.equal(seen.fast[0]?.headers['content-type'], 'text/plain');
    assert.deepEqual(seen.slow, []);
  });

  test(`${kind}: requests pipelined while one is being answered wait their turn`, async (t) => {
    const { port, seen } = await front(kind, t, 30);
    const text = await exchange(port, [invocation('a'), invocation('b'), invocation('c')], (x) => x.includes('fast c'));
    assert.ok(text.indexOf('fast a') < text.indexOf('fast b') && text.indexOf('fast b') < text.indexOf('fast c'));
    assert.deepEqual(seen.fast.map((f) => f.body), ['a', 'b', 'c']);
  });

  test(`${kind}: anything else goes to the http server with the bytes read so far, and the connection stays there`, async (t) => {
    const { port, seen } = await front(kind, t);
    const chunked = 'POST /endpoints/ep/invocations HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n';
    const mixed = await exchange(port, [invocation('fast-one'), 'GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n', chunked, invocation('after')], (x) => count(x, 'HTTP/1.1 200') === 4);
    assert.ok(mixed.indexOf('fast fast-one') < mixed.indexOf('slow /metrics'));
    assert.deepEqual(seen.fast.map((f) => f.body), ['fast-one']);
    assert.deepEqual(seen.slow, ['GET /metrics ', 'POST /endpoints/ep/invocations abc', 'POST /endpoints/ep/invocations after']);
    // A body split across writes after the hand-off still arrives whole.
    const split = 'POST / HTTP/1.1\r\nHost: x\r\nX-Amz-Target: SageMaker.ListEndpoints\r\nContent-Length: 10\r\n\r\n01234';
    const text = await exchange(port, [split, '56789'], (x) => x.includes('slow /'));
    assert.match(text, /slow \//);
    assert.equal(seen.slow.at(-1), 'POST / 0123456789');
    // A head too large for the fast path is the http server's to refuse.
    const huge = await exchange(port, [`POST /endpoints/ep/invocations HTTP/1.1\r\nX-Big: ${'a'.repeat(20_000)}\r\nContent-Length: 0\r\n\r\n`], (x) => x.includes('\r\n\r\n'));
    assert.match(huge, /^HTTP\/1\.1 431/);
    // Lines ended by a bare LF are not waited on either: the http server answers them.
    const bare = await exchange(port, ['POST /endpoints/ep/invocations HTTP/1.1\nContent-Length: 0\n\n'], (x) => x.includes('\r\n\r\n'));
    assert.match(bare, /^HTTP\/1\.1 400 /);
  });

  test(`${kind}: closing ends idle connections at once and busy ones after their answer`, async (t) => {
    const { port, close } = await front(kind, t, 200);
    const idle = connect(port, '127.0.0.1');
    await new Promise((r) => idle.once('connect', r));
    const idleClosed = new Promise((r) => idle.once('close', r));
    const busy = exchange(port, [invocation('late')], () => false);
    await sleep(50);
    const closed = close();
    await idleClosed;
    const text = await busy; // ends when the server closes the connection after the answer
    assert.match(text, /connection: close\r\n/);
    assert.match(text, /fast late$/);
    await closed;
  });

  test(`${kind}: a connection idle for the keep-alive timeout is closed; one waiting for its answer is not`, async (t) => {
    const { port } = await front(kind, t, 400, 200);
    const started = Date.now();
    const idle = connect(port, '127.0.0.1');
    await new Promise((r) => idle.once('close', r));
    const idleFor = Date.now() - started;
    assert.ok(idleFor >= 200 && idleFor < 5_000, `closed after ${idleFor} ms`);
    // The answer takes twice the timeout: the connection lives through it and closes after another idle spell.
    const text = await exchange(port, [invocation('slow')], () => false);
    assert.match(text, /connection: keep-alive\r\n/);
    assert.match(text, /fast slow$/);
  });

  test(`${kind}: the AWS SDK's InvokeEndpoint takes the fast path`, async (t) => {
    const { port, seen } = await front(kind, t);
    const { SageMakerRuntimeClient, InvokeEndpointCommand } = await import('@aws-sdk/client-sagemaker-runtime');
    const client = new SageMakerRuntimeClient({ endpoint: `http://127.0.0.1:${port}`, region: 'us-east-1', credentials: { accessKeyId: 'k', secretAccessKey: 's' } });
    t.after(() => client.destroy());
    for (const body of ['1,2,3', '4,5,6']) {
      const out = await client.send(new InvokeEndpointCommand({ EndpointName: 'my-ep', Body: Buffer.from(body), ContentType: 'text/csv', CustomAttributes: 'k=v' }));
      assert.equal(Buffer.from(out.Body as Uint8Array).toString(), `fast ${body}`);
    }
    assert.deepEqual(seen.fast.map((f) => [f.endpointName, f.body, f.headers['x-amzn-sagemaker-custom-attributes']]), [['my-ep', '1,2,3', 'k=v'], ['my-ep', '4,5,6', 'k=v']]);
    assert.deepEqual(seen.slow, []);
  });
}

test('native: what the Node front leaves to the http server, the native front does too', async (t) => {
  const { port, seen } = await front('native', t);
  for (const [what, lines] of REFUSED) {
    // The answer (the http server's, or its refusal) is not waited for: some of these it reads to the end.
    const socket = connect(port, '127.0.0.1');
    socket.on('error', () => undefined);
    socket.write(`${head(lines)}\r\n\r\nabcde`);
    await sleep(30);
    socket.destroy();
    assert.equal(seen.fast.length, 0, what);
  }
  const taken = await exchange(port, [`${head([...BASE, 'Connection: Keep-Alive'])}\r\n\r\nabcde`], (x) => x.includes('fast abcde'));
  assert.match(taken, /fast abcde$/);
});
