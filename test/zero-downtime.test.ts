// A bounded load runs through an UpdateEndpoint from model v1 to v2 and through a weight change: no
// request may fail (the SDK retries nothing: maxAttempts is 1), and each answer is identified by the
// model version that computed it, from the outputs onnxruntime computed for each version.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  CreateEndpointCommand, CreateEndpointConfigCommand, CreateModelCommand, DescribeEndpointCommand, UpdateEndpointCommand,
  UpdateEndpointWeightsAndCapacitiesCommand, waitUntilEndpointInService,
} from '@aws-sdk/client-sagemaker';
import { InvokeEndpointCommand } from '@aws-sdk/client-sagemaker-runtime';
import { artifact, ROOT, startTestBerth, waitFor } from './helpers.js';
import type { TestBerth } from './helpers.js';

const MODELS = join(ROOT, 'test', 'fixtures', 'models');
const expected = JSON.parse(readFileSync(join(MODELS, 'expected.json'), 'utf8')) as Record<string, { probabilities: number[][] }> & { iris_rows: number[][] };
const row = expected.iris_rows[0] as number[];
const signature = (p: number) => p.toFixed(5);
const VERSIONS = new Map([
  [signature(expected['iris-v1']?.probabilities[0]?.[0] ?? NaN), 'v1'],
  [signature(expected['iris-v2']?.probabilities[0]?.[0] ?? NaN), 'v2'],
]);

interface Outcome { ok: boolean; version?: string; variant?: string; error?: string; at: number }

/** Sends requests at `ratePerSecond` with at most `concurrency` in flight until `stop()`; `outcomes` fills as answers come. */
function load(tb: TestBerth, name: string, ratePerSecond: number, concurrency: number): { outcomes: readonly Outcome[]; stop: () => Promise<Outcome[]> } {
  const outcomes: Outcome[] = [];
  let running = true;
  let inFlight = 0;
  const pending = new Set<Promise<void>>();
  const one = async () => {
    inFlight += 1;
    try {
      const out = await tb.rt.send(new InvokeEndpointCommand({ EndpointName: name, Body: Buffer.from(JSON.stringify([row])), ContentType: 'application/json' }));
      const p = (JSON.parse(Buffer.from(out.Body ?? []).toString()) as { probabilities: number[][] }).probabilities[0]?.[0] ?? NaN;
      outcomes.push({ ok: true, version: VERSIONS.get(signature(p)) ?? `unknown ${p}`, variant: out.InvokedProductionVariant, at: Date.now() });
    } catch (err) {
      outcomes.push({ ok: false, error: `${(err as Error).name}: ${(err as Error).message}`, at: Date.now() });
    } finally {
      inFlight -= 1;
    }
  };
  const timer = setInterval(() => {
    if (!running || inFlight >= concurrency) return;
    const p = one();
    pending.add(p);
    void p.finally(() => pending.delete(p));
  }, 1000 / ratePerSecond);
  return {
    outcomes,
    async stop() {
      running = false;
      clearInterval(timer);
      await Promise.all(pending);
      return outcomes;
    },
  };
}

async function create(tb: TestBerth, config: string, variants: { name: string; model: string; weight: number; count: number }[]): Promise<void> {
  await tb.sm.send(new CreateEndpointConfigCommand({
    EndpointConfigName: config,
    ProductionVariants: variants.map((v) => ({ VariantName: v.name, ModelName: v.model, InstanceType: 'ml.c5.large', InitialInstanceCount: v.count, InitialVariantWeight: v.weight })),
  }));
}

test('UpdateEndpoint and weight changes under load: zero failed requests, versions in the expected proportions', async (t) => {
  const tb = await startTestBerth(t);
  for (const v of ['v1', 'v2']) {
    await tb.sm.send(new CreateModelCommand({ ModelName: `iris-${v}`, PrimaryContainer: { Image: 'berth/onnx', ModelDataUrl: artifact(tb.dir, v, { 'model.onnx': join(MODELS, `iris-${v}.onnx`) }) } }));
  }
  await create(tb, 'only-v1', [{ name: 'AllTraffic', model: 'iris-v1', weight: 1, count: 2 }]);
  await create(tb, 'only-v2', [{ name: 'AllTraffic', model: 'iris-v2', weight: 1, count: 2 }]);
  await create(tb, 'ab', [{ name: 'A', model: 'iris-v1', weight: 1, count: 1 }, { name: 'B', model: 'iris-v2', weight: 1, count: 1 }]);
  await tb.sm.send(new CreateEndpointCommand({ EndpointName: 'live', EndpointConfigName: 'only-v1' }));
  await waitUntilEndpointInService({ client: tb.sm, maxWaitTime: 30, minDelay: 1, maxDelay: 1 }, { EndpointName: 'live' });
  const status = async () => (await tb.sm.send(new DescribeEndpointCommand({ EndpointName: 'live' }))).EndpointStatus;

  // 1. Blue/green from v1 to v2 while up to 100 requests a second arrive. The update starts once 50
  // answers came and the load stops once 40 more came after it finished, however fast this machine
  // is today (a slow one sends fewer than 100 a second).
  const first = load(tb, 'live', 100, 8);
  await waitFor(() => (first.outcomes.length >= 50 ? true : undefined), 30_000, '50 answers before the update');
  const updateAt = Date.now();
  await tb.sm.send(new UpdateEndpointCommand({ EndpointName: 'live', EndpointConfigName: 'only-v2' }));
  await waitFor(async () => ((await status()) === 'InService' ? true : undefined), 30_000, 'the update');
  const doneAt = Date.now();
  await waitFor(() => (first.outcomes.filter((o) => o.at > doneAt + 50).length >= 40 ? true : undefined), 30_000, '40 answers after the update');
  const during = await first.stop();
  const failures = during.filter((o) => !o.ok);
  assert.deepEqual(failures, [], 'no request fails during the update');
  assert.ok(during.filter((o) => o.at < updateAt).every((o) => o.version === 'v1'), 'before the update only v1 answers');
  assert.ok(during.filter((o) => o.at > doneAt + 50).every((o) => o.version === 'v2'), 'after it only v2 answers');
  assert.ok(during.some((o) => o.version === 'v1') && during.some((o) => o.version === 'v2'));

  // 2. Two variants at 1:1, then moved to 1:3 under load.
  await tb.sm.send(new UpdateEndpointCommand({ EndpointName: 'live', EndpointConfigName: 'ab' }));
  await waitFor(async () => ((await status()) === 'InService' ? true : undefined), 30_000, 'the A/B update');
  const second = load(tb, 'live', 150, 8);
  await waitFor(() => (second.outcomes.length >= 200 ? true : undefined), 30_000, '200 answers at 1:1');
  await tb.sm.send(new UpdateEndpointWeightsAndCapacitiesCommand({
    EndpointName: 'live', DesiredWeightsAndCapacities: [{ VariantName: 'A', DesiredWeight: 1 }, { VariantName: 'B', DesiredWeight: 3 }],
  }));
  const shiftedAt = Date.now();
  await waitFor(async () => ((await status()) === 'InService' ? true : undefined), 30_000, 'the weight change');
  await waitFor(() => (second.outcomes.filter((o) => o.at > shiftedAt + 50).length >= 200 ? true : undefined), 30_000, '200 answers at 1:3');
  const split = await second.stop();
  assert.deepEqual(split.filter((o) => !o.ok), [], 'no request fails during the weight change');
  for (const o of split) assert.equal(o.version, o.variant === 'A' ? 'v1' : 'v2', 'each variant answers with its own model');
  const share = (xs: Outcome[]) => xs.filter((o) => o.variant === 'B').length / xs.length;
  const before = split.filter((o) => o.at < shiftedAt - 50);
  const after = split.filter((o) => o.at > shiftedAt + 50);
  // Binomial bounds, about four standard deviations wide.
  assert.ok(Math.abs(share(before) - 0.5) < 4 * Math.sqrt(0.25 / before.length), `B's share at 1:1 was ${share(before)}`);
  assert.ok(Math.abs(share(after) - 0.75) < 4 * Math.sqrt(0.1875 / after.length), `B's share at 1:3 was ${share(after)}`);
});
