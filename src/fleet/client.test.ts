// The container client against real servers on loopback: Node's HTTP server for well-formed
// answers, raw TCP servers for the answers a broken container gives.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer as createTcpServer } from 'node:net';
import type { Socket } from 'node:net';
import type { TestContext } from 'node:test';
import { setImmediate as turn, setTimeout as sleep } from 'node:timers/promises';
import { ContainerCallError, ContainerClient, SpinWait } from './client.js';

async function httpServer(t: TestContext, handler: (req: IncomingMessage, res: ServerResponse, body: Buffer) => void): Promise<{ port: number; connections: () => number }> {
  let connections = 0;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => handler(req, res, Buffer.concat(chunks)));
  });
  server.on('connection', () => (connections += 1));
  await new Promise<void>((res) => server.listen(0, '127.0.0.1', res));
  t.after(() => new Promise<void>((res) => {
    server.closeAllConnections();
    server.close(() => res());
  }));
  return { port: (server.address() as { port: number }).port, connections: () => connections };
}

/** A TCP server that answers each connection's first request bytes with `answer`. */
async function rawServer(t: TestContext, answer: (socket: Socket, request: string) => void, onConnection = () => {}): Promise<number> {
  const sockets = new Set<Socket>();
  const server = createTcpServer((socket) => {
    onConnection();
    sockets.add(socket);
    socket.on('error', () => undefined);
    let seen = '';
    socket.on('data', (d: Buffer) => {
      seen += d.toString('latin1');
      if (seen.includes('\r\n\r\n')) {
        answer(socket, seen);
        seen = '';
      }
    });
  });
  await new Promise<void>((res) => server.listen(0, '127.0.0.1', res));
  t.after(() => new Promise<void>((res) => {
    for (const s of sockets) s.destroy();
    server.close(() => res());
  }));
  return (server.address() as { port: number }).port;
}

function client(t: TestContext, port: number, options = {}): ContainerClient {
  const c = new ContainerClient('127.0.0.1', port, options);
  t.after(() => c.close());
  return c;
}

async function failure(p: Promise<unknown>): Promise<ContainerCallError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof ContainerCallError, `expected a ContainerCallError, got ${String(err)}`);
    return err;
  }
  assert.fail('the call succeeded');
}

test('a call carries method, path, headers and body; answers are read whole and connections reused', async (t) => {
  const seen: string[] = [];
  const { port, connections } = await httpServer(t, (req, res, body) => {
    seen.push(`${req.method} ${req.url} ${String(req.headers['content-type'])} ${String(req.headers['x-amzn-sagemaker-custom-attributes'])} ${body.length}`);
    res.setHeader('content-type', 'application/json');
    res.setHeader('x-multi', ['a', 'b']);
    res.end(JSON.stringify({ bytes: body.length, first: body[0], last: body[body.length - 1] }));
  });
  const c = client(t, port);
  for (let i = 0; i < 20; i++) {
    const res = await c.request({ method: 'POST', path: '/invocations', headers: { 'content-type': 'text/csv', 'x-amzn-sagemaker-custom-attributes': 'k=v' }, body: '1,2,3', timeoutMs: 5000 });
    assert.equal(res.status, 200);
    assert.equal(res.headers['content-type'], 'application/json');
    assert.equal(res.headers['x-multi'], 'a, b');
    assert.deepEqual(JSON.parse(res.body.toString()), { bytes: 5, first: 49, last: 51 });
  }
  assert.equal(connections(), 1, 'sequential calls share one keep-alive connection');
  assert.equal(seen[0], 'POST /invocations text/csv k=v 5');
  // A body past the single-write size goes out head and body separately, and arrives intact.
  const big = Buffer.alloc(300_000, 7);
  big[big.length - 1] = 9;
  const res = await c.request({ method: 'POST', path: '/invocations', body: big, timeoutMs: 5000 });
  assert.deepEqual(JSON.parse(res.body.toString()), { bytes: 300_000, first: 7, last: 9 });
  const get = await c.request({ method: 'GET', path: '/ping', timeoutMs: 5000 });
  assert.equal(seen.at(-1), 'GET /ping undefined undefined 0');
  assert.equal(get.status, 200);
});

test('chunked answers, 100 Continue before the answer, and answers that end with the connection', async (t) => {
  const chunked = await httpServer(t, (_req, res) => {
    res.writeHead(201, { 'content-type': 'text/plain' });
    res.write('hello, ');
    setTimeout(() => res.end('world'), 5);
  });
  const a = await client(t, chunked.port).request({ method: 'POST', path: '/x', body: 'q', timeoutMs: 5000 });
  assert.equal(a.status, 201);
  assert.equal(a.body.toString(), 'hello, world');

  const port = await rawServer(t, (socket, request) => {
    if (request.startsWith('POST /continue')) {
      socket.write('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
    } else {
      socket.end('HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end');
    }
  });
  const c = client(t, port);
  assert.equal((await c.request({ method: 'POST', path: '/continue', body: 'x', timeoutMs: 5000 })).body.toString(), 'ok');
  const b = await c.request({ method: 'POST', path: '/close', body: 'x', timeoutMs: 5000 });
  assert.equal(b.body.toString(), 'until the end');
  assert.equal(b.headers['content-type'], 'text/plain');
});

test('a chunked answer split at every byte is still read whole', async (t) => {
  const answer = 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n1;ext=1\r\n,\r\n6\r\n world\r\n0\r\nTrailer: x\r\n\r\n';
  const port = await rawServer(t, (socket) => {
    let i = 0;
    const next = () => {
      if (i < answer.length) {
        socket.write(answer[i++] as string);
        setImmediate(next);
      }
    };
    next();
  });
  const c = client(t, port);
  const res = await c.request({ method: 'POST', path: '/x', body: 'y', timeoutMs: 5000 });
  assert.equal(res.body.toString(), 'hello, world');
});

test('no answer before the deadline fails with timeout and drops only that connection', async (t) => {
  const { port } = await httpServer(t, (req, res) => {
    if (req.url === '/slow') return; // never answers
    res.end('fast');
  });
  const c = client(t, port);
  const started = Date.now();
  const err = await failure(c.request({ method: 'POST', path: '/slow', timeoutMs: 200 }));
  assert.equal(err.kind, 'timeout');
  assert.ok(Date.now() - started >= 190, 'not before the deadline');
  assert.equal((await c.request({ method: 'POST', path: '/fast', timeoutMs: 1000 })).body.toString(), 'fast');
});

test('calls settled and failed in any order each get their own answer once, and close() fails the rest', async (t) => {
  // Calls in flight are kept by slot; settling or failing one moves another into its place.
  const { port } = await httpServer(t, (req, res) => {
    const n = Number(req.url?.slice(1));
    if (n % 3 === 0) return; // never answers: times out
    setTimeout(() => res.end(`answer ${n}`), (n * 7) % 40);
  });
  const c = client(t, port);
  const calls = Array.from({ length: 30 }, (_, n) => c.request({ method: 'GET', path: `/${n}`, timeoutMs: n % 3 === 0 ? 50 + n : 5_000 }).then(
    (r) => r.body.toString(),
    (e: ContainerCallError) => e.kind,
  ));
  const results = await Promise.all(calls);
  for (const [n, result] of results.entries()) assert.equal(result, n % 3 === 0 ? 'timeout' : `answer ${n}`);

  const hanging = [1, 2, 3].map(() => failure(c.request({ method: 'GET', path: '/0', timeoutMs: 5_000 })));
  await sleep(20);
  c.close();
  for (const err of await Promise.all(hanging)) assert.equal(err.kind, 'closed');
});

test('an answer larger than the limit fails with too-large, by Content-Length or as it streams', async (t) => {
  const { port } = await httpServer(t, (req, res) => {
    if (req.url === '/declared') {
      res.end(Buffer.alloc(2000));
      return;
    }
    res.write(Buffer.alloc(600));
    res.end(Buffer.alloc(600));
  });
  const c = client(t, port);
  const declared = await failure(c.request({ method: 'POST', path: '/declared', timeoutMs: 5000, maxResponseBytes: 1000 }));
  assert.equal(declared.kind, 'too-large');
  assert.equal(declared.status, 200);
  const streamed = await failure(c.request({ method: 'POST', path: '/streamed', timeoutMs: 5000, maxResponseBytes: 1000 }));
  assert.equal(streamed.kind, 'too-large');
  assert.equal((await c.request({ method: 'POST', path: '/declared', timeoutMs: 5000, maxResponseBytes: 2000 })).body.length, 2000);
});

test('a closed port is refused; a connection that breaks is closed, with the status when the head came', async (t) => {
  const closedPort = await new Promise<number>((res) => {
    const s = createTcpServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => res(p));
    });
  });
  assert.equal((await failure(client(t, closedPort).request({ method: 'POST', path: '/x', timeoutMs: 5000 }))).kind, 'refused');

  const port = await rawServer(t, (socket, request) => {
    if (request.startsWith('POST /half')) {
      socket.write('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly part');
      setTimeout(() => socket.destroy(), 5);
    } else if (request.startsWith('POST /garbage')) {
      socket.write('SSH-2.0-not-http\r\n\r\n');
    } else if (request.startsWith('POST /inject')) {
      socket.write('HTTP/1.1 200 OK\r\nContent-Type: text/plain\nX-Injected: 1\r\nContent-Length: 2\r\n\r\nok');
    } else {
      socket.destroy();
    }
  });
  const c = client(t, port);
  const half = await failure(c.request({ method: 'POST', path: '/half', timeoutMs: 5000 }));
  assert.deepEqual([half.kind, half.status], ['closed', 200]);
  const none = await failure(c.request({ method: 'POST', path: '/crash', timeoutMs: 5000 }));
  assert.deepEqual([none.kind, none.status], ['closed', undefined]);
  assert.equal((await failure(c.request({ method: 'POST', path: '/garbage', timeoutMs: 5000 }))).kind, 'malformed');
  const injected = await failure(c.request({ method: 'POST', path: '/inject', timeoutMs: 5000 }));
  assert.deepEqual([injected.kind, injected.status, injected.message], ['malformed', 200, 'a control byte in the value of header "content-type"']);
});

test('bytes past the answer make the connection unusable, not the next answer', async (t) => {
  let connections = 0;
  const port = await rawServer(t, (socket) => {
    socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nstale');
  }, () => (connections += 1));
  const c = client(t, port);
  assert.equal((await c.request({ method: 'POST', path: '/a', timeoutMs: 5000 })).body.toString(), 'ok');
  assert.equal((await c.request({ method: 'POST', path: '/b', timeoutMs: 5000 })).body.toString(), 'ok');
  assert.equal(connections, 2);
});

test('calls beyond maxConnections wait for a free connection', async (t) => {
  let active = 0;
  let most = 0;
  const { port, connections } = await httpServer(t, (_req, res) => {
    active += 1;
    most = Math.max(most, active);
    setTimeout(() => {
      active -= 1;
      res.end('done');
    }, 20);
  });
  const c = client(t, port, { maxConnections: 2 });
  const answers = await Promise.all(Array.from({ length: 8 }, () => c.request({ method: 'POST', path: '/x', timeoutMs: 5000 })));
  assert.deepEqual(answers.map((a) => a.body.toString()), Array(8).fill('done'));
  assert.equal(most, 2);
  assert.equal(connections(), 2);
});

test('unsafe header values are refused before anything is sent; close() fails calls in flight', async (t) => {
  const { port } = await httpServer(t, () => undefined);
  const c = client(t, port);
  assert.throws(() => c.request({ method: 'POST', path: '/x', headers: { 'x-a': 'one\r\nx-b: two' }, timeoutMs: 1000 }), TypeError);
  const pending = c.request({ method: 'POST', path: '/x', timeoutMs: 5000 });
  setTimeout(() => c.close(), 20);
  assert.equal((await failure(pending)).kind, 'closed');
  assert.equal((await failure(c.request({ method: 'POST', path: '/x', timeoutMs: 1000 }))).kind, 'refused');
});

test('idle connections are closed after idleTimeoutMs, and one the container closed is not reused', async (t) => {
  const ours = await httpServer(t, (_req, res) => res.end('a'));
  const c = client(t, ours.port, { idleTimeoutMs: 100 });
  await c.request({ method: 'GET', path: '/ping', timeoutMs: 1000 });
  await new Promise((res) => setTimeout(res, 400));
  await c.request({ method: 'GET', path: '/ping', timeoutMs: 1000 });
  assert.equal(ours.connections(), 2, 'the idle connection was closed by the client');

  // The container ends a keep-alive connection soon after answering (as gunicorn does after 2 s).
  let theirs = 0;
  const port = await rawServer(t, (socket) => {
    socket.write('HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nb');
    setTimeout(() => socket.end(), 30);
  }, () => (theirs += 1));
  const d = client(t, port);
  await d.request({ method: 'GET', path: '/ping', timeoutMs: 1000 });
  await new Promise((res) => setTimeout(res, 200));
  assert.equal((await d.request({ method: 'GET', path: '/ping', timeoutMs: 1000 })).body.toString(), 'b');
  assert.equal(theirs, 2, 'the connection the container closed was dropped, not reused');
});

/** A lone call answered at once: the calls after it, within the SpinWait's micros, are polled for. */
function warm(spin: SpinWait): void {
  spin.begin();
  spin.end();
}

test('SpinWait polls for a lone call and for the next one after it, stops when its time is up, and not after calls overlap', async () => {
  // Budgets far above the sleeps, so a slow machine cannot make the polling end early; and no
  // stopping for a lost CPU (the next test's), which a loaded machine could cause here.
  const never = { preemptedMs: Infinity };
  const spin = new SpinWait(400_000, never);
  warm(spin);
  spin.begin();
  assert.equal(spin.polling, true);
  await sleep(5);
  assert.equal(spin.polling, true, 'still polling while the lone call is in flight');
  spin.end();
  await sleep(5);
  assert.equal(spin.polling, true, 'still polling for the next call after the answer');
  spin.begin();
  spin.end();
  await sleep(450);
  assert.equal(spin.polling, false, 'stops once no call came for its micros');

  const short = new SpinWait(2_000, never);
  warm(short);
  short.begin();
  await sleep(20);
  assert.equal(short.polling, false, 'stops after its micros even if the call goes on');
  short.end();

  const busy = new SpinWait(50_000, never);
  warm(busy);
  busy.begin();
  busy.begin(); // two calls overlap: the containers are busy
  await turn();
  await turn();
  assert.equal(busy.polling, false);
  busy.end();
  busy.end();
  busy.begin(); // alone again, but calls overlapped a moment ago
  assert.equal(busy.polling, false);
  busy.end();

  const off = new SpinWait(0);
  warm(off);
  off.begin();
  assert.equal(off.polling, false);
  off.end();
});

test('SpinWait waits asleep for a call that comes after an idle spell, and polls again once calls follow each other', async () => {
  const spin = new SpinWait(2_000, { preemptedMs: Infinity });
  spin.begin();
  assert.equal(spin.polling, false, 'the first call after start-up is waited for asleep');
  spin.end();
  assert.equal(spin.polling, false, 'and so is the call after it');
  spin.begin(); // within 2 ms of the answer: calls follow each other
  assert.equal(spin.polling, true, 'a call right after an answer is polled for');
  spin.end();
  assert.equal(spin.polling, true, 'and so is the next one');
  await sleep(30);
  assert.equal(spin.polling, false, 'no call for 2 ms: polling stopped');
  spin.begin(); // 30 ms after the last answer: an idle spell
  await turn();
  assert.equal(spin.polling, false, 'a call after the idle spell is waited for asleep');
  spin.end();
  spin.begin();
  assert.equal(spin.polling, true, 'until calls follow each other again');
  spin.end();
  await sleep(30);
});

/** Blocks the event loop for `ms`: on the CPU (`busy`), as a long callback or a collection does, or off it (`asleep`), as when the process loses the CPU. */
function hold(ms: number, how: 'busy' | 'asleep'): void {
  if (how === 'asleep') {
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
    return;
  }
  const end = performance.now() + ms;
  while (performance.now() < end) {
    // on the CPU
  }
}

test('SpinWait stops polling for a while once the process lost the CPU mid-wait, not when a callback kept it busy', async () => {
  const spin = new SpinWait(400_000, { preemptedMs: 3, contendedMs: 300 });
  // Off the CPU for 10 ms between two turns: the scheduler took the CPU away, as far as SpinWait can tell.
  warm(spin);
  spin.begin();
  await turn(); // the wait's first turn has read the CPU time
  hold(10, 'asleep');
  await turn();
  await turn();
  assert.equal(spin.polling, false, 'polling stopped after 10 ms off the CPU');
  spin.end();
  spin.begin();
  await turn();
  assert.equal(spin.polling, false, 'and does not start again while the machine counts as contended');
  spin.end();
  await sleep(350);
  warm(spin); // a slow machine may have slept past micros: calls following each other again
  spin.begin();
  assert.equal(spin.polling, true, 'polling again once contendedMs has passed');
  spin.end();

  // On the CPU for 10 ms: the process kept running, polling goes on. The scheduler may still take
  // the CPU away from the busy loop on a loaded machine, so the claim is that it goes on at least
  // once in a few tries; it would never go on if SpinWait looked at the clock alone.
  let kept = false;
  for (let attempt = 0; attempt < 5 && !kept; attempt++) {
    await sleep(350);
    warm(spin);
    spin.begin();
    await turn();
    hold(10, 'busy');
    await turn();
    await turn();
    kept = spin.polling;
    spin.end();
  }
  assert.equal(kept, true, 'polling went on after 10 ms on the CPU');
  await sleep(450);

  // contendedMs 0 (spinWaitBackoffMs 0): losing the CPU never stops the polling.
  const stubborn = new SpinWait(400_000, { preemptedMs: 3, contendedMs: 0 });
  warm(stubborn);
  stubborn.begin();
  await turn();
  hold(10, 'asleep');
  await turn();
  await turn();
  assert.equal(stubborn.polling, true, 'still polling with contendedMs 0');
  stubborn.end();
  await sleep(450);
});

test('a call made with poll: false (a health check) sets no SpinWait polling', async (t) => {
  const answers: (() => void)[] = [];
  const { port } = await httpServer(t, (_req, res) => answers.push(() => res.end('ok')));
  const spin = new SpinWait(400_000, { preemptedMs: Infinity });
  const c = client(t, port, { spinWait: spin });
  const ping = c.request({ method: 'GET', path: '/ping', timeoutMs: 2000, poll: false });
  while (answers.length < 1) await sleep(1);
  assert.equal(spin.polling, false, 'nothing polls while the health check is in flight');
  answers[0]?.();
  assert.equal((await ping).body.toString(), 'ok');
  assert.equal(spin.polling, false, 'nor after it');
  const first = c.request({ method: 'POST', path: '/invocations', body: '1', timeoutMs: 2000 });
  while (answers.length < 2) await sleep(1);
  assert.equal(spin.polling, false, 'the first invocation after an idle spell is waited for asleep');
  answers[1]?.();
  await first;
  const call = c.request({ method: 'POST', path: '/invocations', body: '1', timeoutMs: 2000 });
  while (answers.length < 3) await sleep(1);
  assert.equal(spin.polling, true, 'an invocation right after another polls');
  answers[2]?.();
  await call;
  await sleep(450);
});
