// Endpoint lifecycle through the SDK: Creating → InService with real container processes, the waiters,
// failure reasons a person can act on, conflicts, updates, weights and capacities, deletion.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pathToFileURL } from 'node:url';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import {
  CreateEndpointCommand, CreateEndpointConfigCommand, CreateModelCommand, DeleteEndpointCommand, DeleteEndpointConfigCommand,
  DeleteModelCommand, DescribeEndpointCommand, ListEndpointsCommand, UpdateEndpointCommand, UpdateEndpointWeightsAndCapacitiesCommand,
  waitUntilEndpointDeleted, waitUntilEndpointInService,
} from '@aws-sdk/client-sagemaker';
import { InvokeEndpointCommand } from '@aws-sdk/client-sagemaker-runtime';
import { deployEcho, isRunning, makeModelTarGz, ROOT, startTestBerth, waitFor } from './helpers.js';
import type { TestBerth } from './helpers.js';

async function invokeJson(tb: TestBerth, name: string, body: unknown = {}, extra: Record<string, string> = {}): Promise<Record<string, unknown> & { variant?: string }> {
  const out = await tb.rt.send(new InvokeEndpointCommand({ EndpointName: name, Body: Buffer.from(JSON.stringify(body)), ContentType: 'application/json', ...extra }));
  return { ...(JSON.parse(Buffer.from(out.Body ?? []).toString('utf8')) as Record<string, unknown>), variant: out.InvokedProductionVariant };
}

async function status(tb: TestBerth, name: string): Promise<string | undefined> {
  return (await tb.sm.send(new DescribeEndpointCommand({ EndpointName: name }))).EndpointStatus;
}

async function createFailing(tb: TestBerth, name: string, container: { Image: string; Environment?: Record<string, string>; ModelDataUrl?: string }): Promise<string> {
  await tb.sm.send(new CreateModelCommand({ ModelName: name, PrimaryContainer: container }));
  await tb.sm.send(new CreateEndpointConfigCommand({
    EndpointConfigName: name,
    ProductionVariants: [{ VariantName: 'AllTraffic', ModelName: name, InstanceType: 'ml.m5.large', InitialInstanceCount: 1 }],
  }));
  await tb.sm.send(new CreateEndpointCommand({ EndpointName: name, EndpointConfigName: name }));
  const r = await waitUntilEndpointInService({ client: tb.sm, maxWaitTime: 30, minDelay: 1, maxDelay: 1 }, { EndpointName: name }).catch((e: Error) => e);
  // The waiter fails on Failed, as boto3's does.
  assert.ok(r instanceof Error, 'the waiter reports failure');
  const d = await tb.sm.send(new DescribeEndpointCommand({ EndpointName: name }));
  assert.equal(d.EndpointStatus, 'Failed');
  return d.FailureReason ?? '';
}

test('an endpoint goes Creating → InService, serves its model data, and is deleted with the waiter', async (t) => {
  const tb = await startTestBerth(t);
  const tarball = makeModelTarGz(tb.dir, { 'weights.txt': 'w=42\n', 'code/extra.txt': 'x' });
  await tb.sm.send(new CreateModelCommand({ ModelName: 'm', PrimaryContainer: { Image: '123456789012.dkr.ecr.us-east-1.amazonaws.com/echo:7', ModelDataUrl: pathToFileURL(tarball).href, Environment: { MY_SETTING: 'on' } } }));
  await tb.sm.send(new CreateEndpointConfigCommand({
    EndpointConfigName: 'c',
    ProductionVariants: [{ VariantName: 'AllTraffic', ModelName: 'm', InstanceType: 'ml.m5.large', InitialInstanceCount: 2 }],
  }));
  const { EndpointArn } = await tb.sm.send(new CreateEndpointCommand({ EndpointName: 'My-Endpoint', EndpointConfigName: 'c', Tags: [{ Key: 'a', Value: 'b' }] }));
  assert.equal(EndpointArn, 'arn:aws:sagemaker:us-east-1:123456789012:endpoint/my-endpoint');
  assert.equal(await status(tb, 'My-Endpoint'), 'Creating');
  const r = await waitUntilEndpointInService({ client: tb.sm, maxWaitTime: 30, minDelay: 1, maxDelay: 1 }, { EndpointName: 'My-Endpoint' });
  assert.equal(r.state, 'SUCCESS');
  const d = await tb.sm.send(new DescribeEndpointCommand({ EndpointName: 'my-endpoint' }));
  assert.equal(d.EndpointName, 'My-Endpoint');
  assert.equal(d.EndpointConfigName, 'c');
  const v = d.ProductionVariants?.[0];
  assert.equal(v?.VariantName, 'AllTraffic');
  assert.equal(v?.CurrentInstanceCount, 2);
  assert.equal(v?.DesiredInstanceCount, 2);
  assert.equal(v?.CurrentWeight, 1);
  assert.equal(v?.DeployedImages?.[0]?.SpecifiedImage, '123456789012.dkr.ecr.us-east-1.amazonaws.com/echo:7');
  assert.match(v?.DeployedImages?.[0]?.ResolvedImage ?? '', /^123456789012\.dkr\.ecr\.us-east-1\.amazonaws\.com\/echo@sha256:[0-9a-f]{64}$/);
  assert.ok((d.LastModifiedTime?.getTime() ?? 0) >= (d.CreationTime?.getTime() ?? Infinity));
  const out = await invokeJson(tb, 'My-Endpoint', { hello: 1 });
  assert.equal(out['weights'], 'w=42');
  assert.deepEqual(out['modelFiles'], ['code', 'weights.txt']);
  assert.equal((out['env'] as Record<string, string>)['MY_SETTING'], 'on');
  const listed = await tb.sm.send(new ListEndpointsCommand({ StatusEquals: 'InService' }));
  assert.deepEqual(listed.Endpoints?.map((e) => e.EndpointName), ['My-Endpoint']);

  // The endpoint runs on its own copy: deleting its config and model does not stop it.
  await tb.sm.send(new DeleteEndpointConfigCommand({ EndpointConfigName: 'c' }));
  await tb.sm.send(new DeleteModelCommand({ ModelName: 'm' }));
  assert.equal((await invokeJson(tb, 'My-Endpoint')).weights, 'w=42');

  const pids = new Set<number>();
  for (let i = 0; i < 10; i++) pids.add((await invokeJson(tb, 'My-Endpoint'))['pid'] as number);
  assert.equal(pids.size, 2, 'both instances serve');
  await tb.sm.send(new DeleteEndpointCommand({ EndpointName: 'My-Endpoint' }));
  const gone = await waitUntilEndpointDeleted({ client: tb.sm, maxWaitTime: 30, minDelay: 1, maxDelay: 1 }, { EndpointName: 'My-Endpoint' });
  assert.equal(gone.state, 'SUCCESS');
  for (const pid of pids) assert.ok(!existsSync(`/proc/${pid}`) || !isRunning(pid), `instance process ${pid} stopped`);
});


test('failure reasons name the cause: unknown image, a container that exits, one that never answers /ping, missing model data', async (t) => {
  const tb = await startTestBerth(t, { startupHealthCheckTimeoutMs: 1500 });
  const unknown = await createFailing(tb, 'unknown-image', { Image: '999999999999.dkr.ecr.eu-west-1.amazonaws.com/no-such-image:3' });
  assert.match(unknown, /^Variant AllTraffic: Image "999999999999\.dkr\.ecr\.eu-west-1\.amazonaws\.com\/no-such-image:3" of model unknown-image is not in berth's image table/);
  assert.match(unknown, /berth serve --image 999999999999\.dkr\.ecr\.eu-west-1\.amazonaws\.com\/no-such-image:3=\/path\/to\/program/);
  assert.match(unknown, /known images: berth\/onnx, berth\/node, berth\/xgboost, berth\/model-server, berth\/python, sagemaker-xgboost, xgboost, sagemaker-scikit-learn, pytorch-inference, pytorch-inference-graviton, sagemaker-pytorch, echo\)\.$/);

  const exits = await createFailing(tb, 'exits', { Image: 'echo', Environment: { ECHO_FAIL_AT_START: '1' } });
  assert.match(exits, /^The primary container for production variant AllTraffic did not pass the ping health check: the container process exited with code 3\./);
  assert.match(exits, /Command: \S+node\S* \S+echo-container\.mjs serve\./);
  assert.match(exits, /Last log lines: echo-container: refusing to start because ECHO_FAIL_AT_START is set/);

  const silent = await createFailing(tb, 'never-healthy', { Image: 'echo', Environment: { ECHO_NEVER_HEALTHY: '1' } });
  assert.match(silent, /did not pass the ping health check: the container did not answer GET \/ping with 200 within 2 seconds/);
  assert.match(silent, /echo-container listening on \d+/);

  const missing = await createFailing(tb, 'no-data', { Image: 'echo', ModelDataUrl: 'file:///nonexistent/model.tar.gz' });
  assert.equal(missing, 'Variant AllTraffic: Failed to download model data for container "primary" from URL: "file:///nonexistent/model.tar.gz": there is no file or folder at /nonexistent/model.tar.gz.');

  // A Failed endpoint can be described, not updated, and deleted.
  await assert.rejects(tb.sm.send(new UpdateEndpointCommand({ EndpointName: 'exits', EndpointConfigName: 'exits' })), /Cannot update failed endpoint/);
  await tb.sm.send(new DeleteEndpointCommand({ EndpointName: 'exits' }));
  assert.equal((await waitUntilEndpointDeleted({ client: tb.sm, maxWaitTime: 10, minDelay: 1, maxDelay: 1 }, { EndpointName: 'exits' })).state, 'SUCCESS');
});

test('calls on an endpoint in progress are refused with AWS text', async (t) => {
  const tb = await startTestBerth(t);
  await tb.sm.send(new CreateModelCommand({ ModelName: 'slow', PrimaryContainer: { Image: 'echo', Environment: { ECHO_PING_DELAY_MS: '1500' } } }));
  await tb.sm.send(new CreateEndpointConfigCommand({
    EndpointConfigName: 'slow', ProductionVariants: [{ VariantName: 'v', ModelName: 'slow', InstanceType: 'ml.m5.large', InitialInstanceCount: 1 }],
  }));
  await tb.sm.send(new CreateEndpointCommand({ EndpointName: 'slow', EndpointConfigName: 'slow' }));
  const arn = 'arn:aws:sagemaker:us-east-1:123456789012:endpoint/slow';
  await assert.rejects(tb.sm.send(new DeleteEndpointCommand({ EndpointName: 'slow' })), { name: 'ValidationException', message: `Cannot update in-progress endpoint "${arn}".` });
  await assert.rejects(tb.sm.send(new UpdateEndpointCommand({ EndpointName: 'slow', EndpointConfigName: 'slow' })), { name: 'ValidationException', message: `Cannot update in-progress endpoint "${arn}".` });
  await assert.rejects(tb.sm.send(new UpdateEndpointWeightsAndCapacitiesCommand({ EndpointName: 'slow', DesiredWeightsAndCapacities: [{ VariantName: 'v', DesiredWeight: 2 }] })),
    { name: 'ValidationException', message: `Cannot update in-progress endpoint "${arn}".` });
  await assert.rejects(tb.sm.send(new CreateEndpointCommand({ EndpointName: 'SLOW', EndpointConfigName: 'slow' })),
    { name: 'ValidationException', message: `Cannot create already existing endpoint "${arn}".` });
  const creating = await tb.sm.send(new DescribeEndpointCommand({ EndpointName: 'slow' }));
  assert.equal(creating.EndpointStatus, 'Creating');
  assert.equal(creating.ProductionVariants?.[0]?.VariantStatus?.[0]?.Status, 'Creating');
  assert.equal(creating.ProductionVariants?.[0]?.CurrentInstanceCount, 0);
  await waitFor(async () => (await status(tb, 'slow')) === 'InService' || undefined, 20_000, 'InService');
  await assert.rejects(tb.sm.send(new DescribeEndpointCommand({ EndpointName: 'nope' })),
    { name: 'ValidationException', message: 'Could not find endpoint "arn:aws:sagemaker:us-east-1:123456789012:endpoint/nope".' });
  await assert.rejects(tb.sm.send(new DeleteEndpointCommand({ EndpointName: 'nope' })),
    { name: 'ValidationException', message: 'Could not find endpoint "arn:aws:sagemaker:us-east-1:123456789012:endpoint/nope".' });
});

test('UpdateEndpoint moves traffic to a new fleet and stops the old one; a failing update keeps the old fleet', async (t) => {
  const tb = await startTestBerth(t, { startupHealthCheckTimeoutMs: 1500 });
  await deployEcho(tb, 'ep', { env: { ECHO_LABEL: 'v1' } });
  const v1 = await invokeJson(tb, 'ep');
  assert.equal(v1['label'], 'v1');
  await tb.sm.send(new CreateModelCommand({ ModelName: 'm2', PrimaryContainer: { Image: 'echo', Environment: { ECHO_LABEL: 'v2' } } }));
  await tb.sm.send(new CreateEndpointConfigCommand({
    EndpointConfigName: 'c2', ProductionVariants: [{ VariantName: 'AllTraffic', ModelName: 'm2', InstanceType: 'ml.m5.large', InitialInstanceCount: 1 }],
  }));
  await tb.sm.send(new UpdateEndpointCommand({ EndpointName: 'ep', EndpointConfigName: 'c2' }));
  assert.equal(await status(tb, 'ep'), 'Updating');
  // The old fleet keeps serving while the new one starts.
  assert.equal((await invokeJson(tb, 'ep'))['label'], 'v1');
  await waitFor(async () => (await status(tb, 'ep')) === 'InService' || undefined, 20_000, 'InService after update');
  const d = await tb.sm.send(new DescribeEndpointCommand({ EndpointName: 'ep' }));
  assert.equal(d.EndpointConfigName, 'c2');
  assert.equal(d.PendingDeploymentSummary, undefined);
  assert.equal((await invokeJson(tb, 'ep'))['label'], 'v2');
  await waitFor(() => (isRunning(v1['pid'] as number) ? undefined : true), 10_000, 'old instance stopped');

  await tb.sm.send(new CreateModelCommand({ ModelName: 'broken', PrimaryContainer: { Image: 'echo', Environment: { ECHO_FAIL_AT_START: '1' } } }));
  await tb.sm.send(new CreateEndpointConfigCommand({
    EndpointConfigName: 'c3', ProductionVariants: [{ VariantName: 'AllTraffic', ModelName: 'broken', InstanceType: 'ml.m5.large', InitialInstanceCount: 1 }],
  }));
  await tb.sm.send(new UpdateEndpointCommand({ EndpointName: 'ep', EndpointConfigName: 'c3' }));
  const pending = await tb.sm.send(new DescribeEndpointCommand({ EndpointName: 'ep' }));
  assert.equal(pending.EndpointStatus, 'Updating');
  await waitFor(async () => (await status(tb, 'ep')) === 'InService' || undefined, 20_000, 'InService after failed update');
  const after = await tb.sm.send(new DescribeEndpointCommand({ EndpointName: 'ep' }));
  assert.equal(after.EndpointConfigName, 'c2');
  assert.match(after.FailureReason ?? '', /exited with code 3/);
  assert.equal((await invokeJson(tb, 'ep'))['label'], 'v2');
});

test('UpdateEndpointWeightsAndCapacities changes weights at once and instance counts through the reconciler', async (t) => {
  const tb = await startTestBerth(t);
  await deployEcho(tb, 'ab', { variants: [{ name: 'A', weight: 1, env: { ECHO_LABEL: 'a' } }, { name: 'B', weight: 0, env: { ECHO_LABEL: 'b' } }] });
  for (let i = 0; i < 10; i++) assert.equal((await invokeJson(tb, 'ab')).variant, 'A');
  // A variant of weight 0 is still reachable directly.
  assert.equal((await invokeJson(tb, 'ab', {}, { TargetVariant: 'B' })).variant, 'B');
  await assert.rejects(tb.sm.send(new UpdateEndpointWeightsAndCapacitiesCommand({ EndpointName: 'ab', DesiredWeightsAndCapacities: [{ VariantName: 'C', DesiredWeight: 1 }] })),
    { name: 'ValidationException', message: 'The variant name(s) "C" is/are not present within endpoint configuration "ab-cfg".' });
  await assert.rejects(tb.sm.send(new UpdateEndpointWeightsAndCapacitiesCommand({ EndpointName: 'ab', DesiredWeightsAndCapacities: [{ VariantName: 'A', DesiredWeight: 1 }, { VariantName: 'A', DesiredWeight: 2 }] })),
    { name: 'ValidationException', message: 'The variant name "A" was non-unique within the request.' });
  await tb.sm.send(new UpdateEndpointWeightsAndCapacitiesCommand({
    EndpointName: 'ab',
    DesiredWeightsAndCapacities: [{ VariantName: 'A', DesiredWeight: 0 }, { VariantName: 'B', DesiredWeight: 1, DesiredInstanceCount: 2 }],
  }));
  await waitFor(async () => (await status(tb, 'ab')) === 'InService' || undefined, 20_000, 'InService');
  const d = await tb.sm.send(new DescribeEndpointCommand({ EndpointName: 'ab' }));
  const b = d.ProductionVariants?.find((v) => v.VariantName === 'B');
  assert.deepEqual([b?.CurrentWeight, b?.DesiredWeight, b?.CurrentInstanceCount, b?.DesiredInstanceCount], [1, 1, 2, 2]);
  const pids = new Set<number>();
  for (let i = 0; i < 10; i++) {
    const out = await invokeJson(tb, 'ab');
    assert.equal(out.variant, 'B');
    pids.add(out['pid'] as number);
  }
  assert.equal(pids.size, 2);
  // Scale back in: one instance drains and stops.
  await tb.sm.send(new UpdateEndpointWeightsAndCapacitiesCommand({ EndpointName: 'ab', DesiredWeightsAndCapacities: [{ VariantName: 'B', DesiredInstanceCount: 1 }] }));
  await waitFor(async () => (await status(tb, 'ab')) === 'InService' || undefined, 20_000, 'InService');
  const after = await tb.sm.send(new DescribeEndpointCommand({ EndpointName: 'ab' }));
  assert.equal(after.ProductionVariants?.find((v) => v.VariantName === 'B')?.CurrentInstanceCount, 1);
  assert.equal([...pids].filter(isRunning).length, 1);
});

test('ModelDataUrl may name a folder, and `berth logs` prints the container output', async (t) => {
  const tb = await startTestBerth(t);
  const folder = join(tb.dir, 'model-folder');
  mkdirSync(folder);
  writeFileSync(join(folder, 'weights.txt'), 'from-a-folder');
  await deployEcho(tb, 'folder', { modelDataUrl: pathToFileURL(folder).href });
  assert.equal((await invokeJson(tb, 'folder'))['weights'], 'from-a-folder');
  const { stdout } = await promisify(execFile)(process.execPath, [join(ROOT, 'bin', 'berth.js'), 'logs', 'folder', '--endpoint-url', tb.url]);
  assert.match(stdout, /^==> AllTraffic\.primary\.i-[0-9a-f]{16}\.log <==$/m);
  assert.match(stdout, /echo-container listening on \d+, model files: weights\.txt/);
});

test('UpdateEndpoint with RetainAllVariantProperties keeps the running weights and counts unless excluded', async (t) => {
  const tb = await startTestBerth(t);
  await deployEcho(tb, 'keep');
  await tb.sm.send(new UpdateEndpointWeightsAndCapacitiesCommand({ EndpointName: 'keep', DesiredWeightsAndCapacities: [{ VariantName: 'AllTraffic', DesiredWeight: 3, DesiredInstanceCount: 2 }] }));
  await waitFor(async () => (await status(tb, 'keep')) === 'InService' || undefined, 20_000, 'InService');
  await tb.sm.send(new CreateModelCommand({ ModelName: 'keep-v2', PrimaryContainer: { Image: 'echo', Environment: { ECHO_LABEL: 'v2' } } }));
  await tb.sm.send(new CreateEndpointConfigCommand({
    EndpointConfigName: 'keep-v2', ProductionVariants: [{ VariantName: 'AllTraffic', ModelName: 'keep-v2', InstanceType: 'ml.m5.large', InitialInstanceCount: 1, InitialVariantWeight: 1 }],
  }));
  const variant = async () => (await tb.sm.send(new DescribeEndpointCommand({ EndpointName: 'keep' }))).ProductionVariants?.[0];
  await tb.sm.send(new UpdateEndpointCommand({ EndpointName: 'keep', EndpointConfigName: 'keep-v2', RetainAllVariantProperties: true }));
  await waitFor(async () => (await status(tb, 'keep')) === 'InService' || undefined, 20_000, 'InService');
  let v = await variant();
  assert.deepEqual([v?.CurrentWeight, v?.CurrentInstanceCount], [3, 2]);
  assert.equal((await invokeJson(tb, 'keep'))['label'], 'v2');
  await tb.sm.send(new UpdateEndpointCommand({
    EndpointName: 'keep', EndpointConfigName: 'keep-v2', RetainAllVariantProperties: true,
    ExcludeRetainedVariantProperties: [{ VariantPropertyType: 'DesiredInstanceCount' }],
  }));
  await waitFor(async () => (await status(tb, 'keep')) === 'InService' || undefined, 20_000, 'InService');
  v = await variant();
  assert.deepEqual([v?.CurrentWeight, v?.CurrentInstanceCount], [3, 1]);
  await tb.sm.send(new UpdateEndpointCommand({ EndpointName: 'keep', EndpointConfigName: 'keep-v2' }));
  await waitFor(async () => (await status(tb, 'keep')) === 'InService' || undefined, 20_000, 'InService');
  v = await variant();
  assert.deepEqual([v?.CurrentWeight, v?.CurrentInstanceCount], [1, 1]);
});
