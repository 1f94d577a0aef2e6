// Free loopback ports for containers. A port found free may still be taken before the container
// binds it (a Python container takes a few hundred milliseconds to get there), so a block is also
// reserved: in this process's memory, and on the machine with a file per block that every berth of
// the same user honours. Without the file, two berths on one machine (the test command runs two at
// once) could start containers on the same port: one container fails to bind, and its berth's health
// check is answered by the other berth's container, which then serves the wrong model.
import { closeSync, mkdirSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { processAlive } from './pids.js';

/**
 * Ports this process drew in the last MEMORY_MS, released or not, and when. The reservation files
 * already keep two living containers apart; this keeps a block just given back (a container stopped
 * or replaced) out of use a while longer, so that a new container is not started where the old one's
 * processes, killed as a group but torn down by the kernel asynchronously, may still hold a socket.
 */
const recent = new Map<number, number>();
const MEMORY_MS = 30_000;
/** Each berth starts in its own stripe of the range, chosen by its pid, so that two rarely meet at all. */
const STRIPES = 8;
/** The blocks this process holds a reservation file for, so that they are released when it exits. */
const held = new Set<number>();
let exitHookSet = false;

/** A block of ports reserved for one container until `release()`. */
export interface PortBlock {
  /** The first port, for the container to bind (SAGEMAKER_BIND_TO_PORT); the rest are its SAGEMAKER_SAFE_PORT_RANGE. */
  readonly port: number;
  release(): void;
}

/** Where the reservation files live: one folder per user, since another user's berth cannot write to it. */
export function reservationDir(): string {
  return join(tmpdir(), `berth-ports-${process.getuid?.() ?? 'user'}`);
}

/**
 * Reserves the block starting at `base` on this machine: false when a living berth (this one
 * included) holds it. A file left by a berth that died is taken over. A block is known by its first
 * port alone: every block has the same size (PORTS_PER_CONTAINER) and starts at a multiple of it
 * from 20000, so two blocks either coincide or do not overlap.
 */
export function reserve(base: number): boolean {
  const dir = reservationDir();
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = join(dir, String(base));
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(file, 'wx', 0o600);
      writeSync(fd, String(process.pid));
      closeSync(fd);
      held.add(base);
      if (!exitHookSet) {
        exitHookSet = true;
        process.once('exit', () => {
          for (const b of held) unreserve(b);
        });
      }
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      // Released between the two calls: try again.
      continue;
    }
    // An empty file is still being written: its owner is alive. (A dead berth's pid taken by another
    // process keeps its file's block out of use until that process ends: one block of hundreds.)
    const owner = Number(text);
    if (text === '' || !Number.isInteger(owner) || owner <= 0 || owner === process.pid || processAlive(owner)) return false;
    try {
      unlinkSync(file);
    } catch {
      // Another berth took it over first; the next attempt finds out whose it is.
    }
  }
  return false;
}

/** Gives up this process's reservation of the block at `base`, if it holds it. */
export function unreserve(base: number): void {
  if (!held.delete(base)) return;
  try {
    unlinkSync(join(reservationDir(), String(base)));
  } catch {
    // Already gone.
  }
}

function isFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

/**
 * A contiguous block of free ports, reserved until released. Blocks are drawn from 20000–32767,
 * below Linux's ephemeral range, so client sockets do not take them.
 */
export async function freePortBlock(size: number): Promise<PortBlock> {
  const now = Date.now();
  for (const [p, t] of recent) if (now - t > MEMORY_MS) recent.delete(p);
  const blocks = Math.floor((32767 - 20000) / size);
  const perStripe = Math.floor(blocks / STRIPES);
  for (let attempt = 0; attempt < 50; attempt++) {
    // The first tries stay in this process's stripe; later ones anywhere, in case it is full.
    const stripe = attempt < 25 ? process.pid % STRIPES : Math.floor(Math.random() * STRIPES);
    const base = 20000 + (stripe * perStripe + Math.floor(Math.random() * perStripe)) * size;
    let ok = true;
    for (let p = base; p < base + size && ok; p++) ok = !recent.has(p);
    // Reserved before the ports are tried, so that no other berth tries them meanwhile.
    if (!ok || !reserve(base)) continue;
    for (let p = base; p < base + size && ok; p++) ok = await isFree(p);
    if (!ok) {
      unreserve(base);
      continue;
    }
    for (let p = base; p < base + size; p++) recent.set(p, now);
    // Once only: a second release must not end a later reservation of the same block.
    let released = false;
    return {
      port: base,
      release: () => {
        if (released) return;
        released = true;
        unreserve(base);
      },
    };
  }
  throw new Error(`could not find ${size} free loopback ports in a row`);
}
