// The router's choices, with instances that count what they receive.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ContainerClient, Instance } from '../fleet/index.js';
import { Router } from './router.js';

function fake(id: string, outstanding = 0, state: Instance['state'] = 'ready'): Instance & { calls: number } {
  const client = {
    request: () => {
      inst.calls += 1;
      return Promise.resolve({ status: 200, headers: { 'content-type': 'text/plain' }, body: Buffer.from(id) });
    },
  } as unknown as ContainerClient;
  const inst = {
    id, state, outstanding, calls: 0,
    spec: { endpointName: 'e', variantName: 'v', containers: [{ name: 'primary', command: [], env: {} }] },
    containers: [{ name: 'primary', pid: 1, client }],
    waitUntilHealthy: () => Promise.resolve(), logTail: () => [], drain: () => Promise.resolve(), countInFlight: () => undefined, stop: () => Promise.resolve(), on: () => undefined, off: () => undefined,
  };
  return inst;
}

const request = { endpointName: 'e', body: Buffer.from('x'), region: 'us-east-1' };

test('least outstanding requests: a busy instance gets nothing while an idle one is free', async () => {
  const router = new Router({ accountId: '123456789012', invocationTimeoutMs: 1000, maxResponseBytes: 100 });
  const busy = fake('busy', 5);
  const idle = fake('idle', 0);
  const starting = fake('starting', 0, 'starting');
  router.publish('e', { status: 'InService', variants: [{ name: 'v', weight: 1, mode: 'single', instances: [busy, idle, starting] }] });
  for (let i = 0; i < 20; i++) assert.equal((await router.invoke(request)).body.toString(), 'idle');
  assert.deepEqual([busy.calls, idle.calls, starting.calls], [0, 20, 0]);
});

test('weights split traffic in proportion, and a variant of weight 0 only answers when targeted', async () => {
  let seed = 1;
  const random = () => ((seed = (seed * 16807) % 2147483647) / 2147483647);
  const router = new Router({ accountId: '123456789012', invocationTimeoutMs: 1000, maxResponseBytes: 100, random });
  const a = fake('a');
  const b = fake('b');
  const c = fake('c');
  router.publish('e', { status: 'Updating', variants: [{ name: 'A', weight: 1, mode: 'single', instances: [a] }, { name: 'B', weight: 3, mode: 'single', instances: [b] }, { name: 'C', weight: 0, mode: 'single', instances: [c] }] });
  const counts = { A: 0, B: 0, C: 0 };
  for (let i = 0; i < 4000; i++) counts[(await router.invoke(request)).invokedVariant as 'A' | 'B' | 'C'] += 1;
  assert.equal(counts.C, 0);
  assert.ok(Math.abs(counts.B / 4000 - 0.75) < 0.03, `B got ${counts.B / 4000}`);
  assert.equal((await router.invoke({ ...request, targetVariant: 'C' })).invokedVariant, 'C');
  router.publish('e', { status: 'Creating', variants: [] });
  await assert.rejects(router.invoke(request), { name: 'ValidationError', message: 'Endpoint e of account 123456789012 is not in service yet (status Creating); wait until DescribeEndpoint reports InService.' });
});
