import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { freePortBlock, reservationDir, reserve, unreserve } from './ports.js';

test('port blocks are below the ephemeral range, bindable, and never handed out twice', async () => {
  const blocks = [];
  for (let i = 0; i < 20; i++) blocks.push(await freePortBlock(10));
  const bases = blocks.map((b) => b.port);
  for (const base of bases) {
    assert.ok(base >= 20000 && base + 10 <= 32767, `block ${base} is inside 20000-32767`);
    for (const other of bases) if (other !== base) assert.ok(Math.abs(other - base) >= 10, `blocks ${base} and ${other} overlap`);
  }
  // The first port of a block binds.
  const srv = createServer();
  await new Promise<void>((resolve, reject) => {
    srv.once('error', reject);
    srv.listen(bases[0], '127.0.0.1', () => resolve());
  });
  await new Promise((resolve) => srv.close(resolve));
  for (const b of blocks) {
    assert.ok(existsSync(join(reservationDir(), String(b.port))), 'each block is reserved on the machine');
    b.release();
    assert.ok(!existsSync(join(reservationDir(), String(b.port))), 'and the reservation ends with release()');
  }
});

test('a block another berth process holds is not handed out; a dead one\'s is taken over', async (t) => {
  // A block no berth holds: drawn and released by this process.
  const drawn = await freePortBlock(10);
  const base = drawn.port;
  drawn.release();
  // Another process (another berth) reserves the block and keeps running.
  const other = spawn(process.execPath, ['--input-type=module', '-e', `
    const { reserve } = await import(${JSON.stringify(new URL('./ports.js', import.meta.url).href)});
    console.log(reserve(${base}) ? 'held' : 'refused');
    setInterval(() => {}, 1000);
  `], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.after(() => other.kill('SIGKILL'));
  const [said] = (await once(createInterface({ input: other.stdout }), 'line')) as [string];
  assert.equal(said, 'held');
  assert.equal(reserve(base), false, 'a living berth holds it');
  // Killed outright, it leaves its file behind: the block is free again all the same.
  other.kill('SIGKILL');
  await new Promise((resolve) => other.once('exit', resolve));
  assert.ok(existsSync(join(reservationDir(), String(base))), 'the dead berth left its file');
  assert.equal(reserve(base), true, 'the block of a berth that died is taken over');
  assert.equal(reserve(base), false, 'and now this process holds it');
  unreserve(base);
  assert.equal(reserve(base), true, 'released, it can be reserved again');
  drawn.release();
  assert.equal(reserve(base), false, 'a second release of the first block does not end the later reservation');
  unreserve(base);
});
