import assert from 'node:assert/strict';
import { test } from 'node:test';
import { instanceMemoryBytes } from './budget.js';
import { rendezvous } from './placement.js';

const GIB = 2 ** 30;

test('instance types size the memory budget as their EC2 families do', () => {
  assert.equal(instanceMemoryBytes('ml.m5.large'), 8 * GIB);
  assert.equal(instanceMemoryBytes('ml.c5.xlarge'), 8 * GIB);
  assert.equal(instanceMemoryBytes('ml.r5.2xlarge'), 64 * GIB);
  assert.equal(instanceMemoryBytes('ml.t2.medium'), 4 * GIB);
  assert.equal(instanceMemoryBytes('ml.g4dn.xlarge'), 16 * GIB);
  assert.equal(instanceMemoryBytes('ml.inf1.xlarge'), 8 * GIB);
  assert.equal(instanceMemoryBytes('ml.unknown'), 8 * GIB);
  assert.equal(instanceMemoryBytes(undefined), 8 * GIB);
});

test('rendezvous hashing agrees across calls and moves only the models of a lost instance', () => {
  const four = ['i-a', 'i-b', 'i-c', 'i-d'].map((id) => ({ id }));
  const keys = Array.from({ length: 400 }, (_, i) => `model-${i}.tar.gz`);
  const first = new Map(keys.map((k) => [k, rendezvous(four, k)[0]?.id]));
  for (const k of keys) assert.equal(rendezvous([...four].reverse(), k)[0]?.id, first.get(k), 'order of the instance list does not matter');
  const counts = new Map<string, number>();
  for (const id of first.values()) counts.set(id as string, (counts.get(id as string) ?? 0) + 1);
  for (const n of counts.values()) assert.ok(n > 60 && n < 140, `models spread evenly (${[...counts.values()].join(', ')})`);
  const three = four.filter((i) => i.id !== 'i-c');
  for (const k of keys) {
    const before = first.get(k);
    const after = rendezvous(three, k)[0]?.id;
    if (before !== 'i-c') assert.equal(after, before, 'a model whose instance stays does not move');
  }
});
