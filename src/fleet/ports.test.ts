import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { freePortBlock } from './ports.js';

test('port blocks are below the ephemeral range, bindable, and never handed out twice', async () => {
  const bases: number[] = [];
  for (let i = 0; i < 20; i++) bases.push(await freePortBlock(10));
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
});
