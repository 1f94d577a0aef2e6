// Free loopback ports for containers. The OS picks one; a short memory of recent picks keeps two
// instances started in the same moment from being handed the same port before either binds it.
import { createServer } from 'node:net';

const recent = new Map<number, number>();
const MEMORY_MS = 30_000;

function probe(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

export async function freePort(): Promise<number> {
  const now = Date.now();
  for (const [p, t] of recent) if (now - t > MEMORY_MS) recent.delete(p);
  for (let i = 0; i < 20; i++) {
    const port = await probe();
    if (!recent.has(port)) {
      recent.set(port, now);
      return port;
    }
  }
  throw new Error('could not find a free loopback port');
}
