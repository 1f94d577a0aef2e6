// Free loopback ports for containers. A short memory of recent picks keeps two instances started in
// the same moment from being handed the same ports before either binds them.
import { createServer } from 'node:net';

const recent = new Map<number, number>();
const MEMORY_MS = 30_000;
/**
 * `recent` is one process's memory; two berths on one machine (the test command runs two at once)
 * could still draw the same block while a container starts and before it binds. Each berth starts in
 * its own stripe of the range, chosen by its pid, so that takes two berths in the same stripe.
 */
const STRIPES = 8;

function isFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

/**
 * A contiguous block of free ports: the first for the container to bind (SAGEMAKER_BIND_TO_PORT),
 * the rest its SAGEMAKER_SAFE_PORT_RANGE for any further ports it opens. Blocks are drawn from
 * 20000–32767, below Linux's ephemeral range, so client sockets do not take them.
 */
export async function freePortBlock(size: number): Promise<number> {
  const now = Date.now();
  for (const [p, t] of recent) if (now - t > MEMORY_MS) recent.delete(p);
  const blocks = Math.floor((32767 - 20000) / size);
  const perStripe = Math.floor(blocks / STRIPES);
  for (let attempt = 0; attempt < 50; attempt++) {
    // The first tries stay in this process's stripe; later ones anywhere, in case it is full.
    const stripe = attempt < 25 ? process.pid % STRIPES : Math.floor(Math.random() * STRIPES);
    const base = 20000 + (stripe * perStripe + Math.floor(Math.random() * perStripe)) * size;
    let ok = true;
    for (let p = base; p < base + size && ok; p++) ok = !recent.has(p) && (await isFree(p));
    if (ok) {
      for (let p = base; p < base + size; p++) recent.set(p, now);
      return base;
    }
  }
  throw new Error(`could not find ${size} free loopback ports in a row`);
}
