// Crashes lose nothing: a killed instance is reported and replaced; berth killed with SIGKILL comes
// back with every resource, and its endpoints in service again, after a restart.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { DescribeEndpointCommand, DescribeModelCommand, ListEndpointsCommand, ListTagsCommand } from '@aws-sdk/client-sagemaker';
import { InvokeEndpointCommand } from '@aws-sdk/client-sagemaker-runtime';
import { clients, deployEcho, ECHO, isRunning, ROOT, startTestBerth, tempDir, waitFor } from './helpers.js';
import type { TestBerth } from './helpers.js';

async function pidOf(tb: Pick<TestBerth, 'rt'>, name: string): Promise<number> {
  const out = await tb.rt.send(new InvokeEndpointCommand({ EndpointName: name, Body: Buffer.from('{}'), ContentType: 'application/json' }));
  return (JSON.parse(Buffer.from(out.Body ?? []).toString('utf8')) as { pid: number }).pid;
}


test('a killed instance is taken out of rotation, reported, and replaced', async (t) => {
  const tb = await startTestBerth(t);
  // A slow /ping makes the replacement visible for a while.
  await deployEcho(tb, 'crashy', { env: { ECHO_PING_DELAY_MS: '1500' } });
  const pid = await pidOf(tb, 'crashy');
  process.kill(pid, 'SIGKILL');
  const reported = await waitFor(async () => {
    const d = await tb.sm.send(new DescribeEndpointCommand({ EndpointName: 'crashy' }));
    const v = d.ProductionVariants?.[0];
    return v?.CurrentInstanceCount === 0 && v.VariantStatus?.[0] ? d : undefined;
  }, 10_000, 'the endpoint to report the lost instance');
  assert.equal(reported.EndpointStatus, 'InService');
  assert.equal(reported.ProductionVariants?.[0]?.VariantStatus?.[0]?.Status, 'Updating');
  assert.match(reported.ProductionVariants?.[0]?.VariantStatus?.[0]?.StatusMessage ?? '', /^Replacing instance i-[0-9a-f]{16}: the container process was killed by SIGKILL\.$/);
  // While no instance is ready, invocations get a retryable 503.
  await assert.rejects(tb.rt.send(new InvokeEndpointCommand({ EndpointName: 'crashy', Body: Buffer.from('{}') })), (err: Error & { $metadata?: { httpStatusCode?: number } }) => {
    assert.equal(err.name, 'ServiceUnavailable');
    assert.equal(err.$metadata?.httpStatusCode, 503);
    return true;
  });
  await waitFor(async () => {
    const v = (await tb.sm.send(new DescribeEndpointCommand({ EndpointName: 'crashy' }))).ProductionVariants?.[0];
    return v?.CurrentInstanceCount === 1 && !v.VariantStatus ? true : undefined;
  }, 15_000, 'the replacement instance');
  const replacement = await pidOf(tb, 'crashy');
  assert.notEqual(replacement, pid);
});

test('a container that crashes during a request answers ModelError, and the instance is replaced', async (t) => {
  const tb = await startTestBerth(t);
  await deployEcho(tb, 'boom');
  const before = await pidOf(tb, 'boom');
  await assert.rejects(tb.rt.send(new InvokeEndpointCommand({ EndpointName: 'boom', Body: Buffer.from(JSON.stringify({ action: 'crash' })) })),
    (err: Error & { OriginalStatusCode?: number }) => {
      assert.equal(err.name, 'ModelError');
      assert.equal(err.OriginalStatusCode, 0);
      assert.match(err.message, /closed before it answered/);
      return true;
    });
  const after = await waitFor(async () => {
    const p = await pidOf(tb, 'boom');
    return p !== before ? p : undefined;
  }, 15_000, 'a new instance to serve');
  assert.ok(isRunning(after));
  const logs = await (await fetch(`${tb.url}/_berth/endpoints/boom/logs`)).text();
  assert.match(logs, /echo-container: crashing on request/);
});

/** Starts `berth serve` as its own process and resolves with its URL from the JSON log. */
async function spawnBerth(t: { after: (fn: () => void) => void }, dataDir: string, configFile: string): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, [join(ROOT, 'bin', 'berth.js'), 'serve', '--port', '0', '--data-dir', dataDir, '--config', configFile], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  t.after(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  const url = await new Promise<string>((resolve, reject) => {
    lines.on('line', (line) => {
      try {
        const log = JSON.parse(line) as { msg?: string; url?: string };
        if (log.msg === 'berth is listening' && log.url) resolve(log.url);
      } catch {
        // not a log line
      }
    });
    child.once('exit', (code) => reject(new Error(`berth exited with ${code} before listening`)));
  });
  return { child, url };
}

test('berth killed with SIGKILL keeps every resource and brings its endpoints back after a restart', async (t) => {
  const dir = tempDir(t);
  const dataDir = join(dir, 'data');
  const configFile = join(dir, 'berth.json');
  writeFileSync(configFile, JSON.stringify({ images: { echo: { command: [process.execPath, ECHO] } }, healthCheckIntervalMs: 200, logLevel: 'info' }));

  const first = await spawnBerth(t, dataDir, configFile);
  const c1 = clients(first.url);
  t.after(() => { c1.sm.destroy(); c1.rt.destroy(); });
  await deployEcho({ ...c1, berth: undefined as never, dir, url: first.url }, 'durable', { env: { ECHO_LABEL: 'kept' }, count: 2 });
  const orphans = new Set<number>();
  for (let i = 0; i < 8; i++) orphans.add(await pidOf(c1, 'durable'));
  assert.equal(orphans.size, 2);

  first.child.kill('SIGKILL');
  await new Promise((r) => first.child.once('exit', r));
  // The instances outlive their parent until the next berth reaps them.
  for (const pid of orphans) assert.ok(isRunning(pid), `instance ${pid} is still running after berth died`);

  const second = await spawnBerth(t, dataDir, configFile);
  const c2 = clients(second.url);
  t.after(() => { c2.sm.destroy(); c2.rt.destroy(); });
  for (const pid of orphans) await waitFor(() => (isRunning(pid) ? undefined : true), 5_000, `orphan ${pid} to be stopped`);

  const model = await c2.sm.send(new DescribeModelCommand({ ModelName: 'durable-alltraffic' }));
  assert.equal(model.PrimaryContainer?.Environment?.['ECHO_LABEL'], 'kept');
  const listed = await c2.sm.send(new ListEndpointsCommand({}));
  assert.deepEqual(listed.Endpoints?.map((e) => [e.EndpointName, e.EndpointStatus]), [['durable', 'InService']]);
  await waitFor(async () => {
    const v = (await c2.sm.send(new DescribeEndpointCommand({ EndpointName: 'durable' }))).ProductionVariants?.[0];
    return v?.CurrentInstanceCount === 2 ? true : undefined;
  }, 15_000, 'both instances back');
  const out = await c2.rt.send(new InvokeEndpointCommand({ EndpointName: 'durable', Body: Buffer.from('{}'), ContentType: 'application/json' }));
  assert.equal((JSON.parse(Buffer.from(out.Body ?? []).toString('utf8')) as { label: string }).label, 'kept');
  const tags = await c2.sm.send(new ListTagsCommand({ ResourceArn: 'arn:aws:sagemaker:us-east-1:123456789012:endpoint/durable' }));
  assert.deepEqual(tags.Tags, []);

  // One berth per data dir: a second one on the same folder refuses to start and says why.
  const intruder = spawn(process.execPath, [join(ROOT, 'bin', 'berth.js'), 'serve', '--port', '0', '--data-dir', dataDir, '--config', configFile], { stdio: ['ignore', 'ignore', 'pipe'] });
  let refusal = '';
  intruder.stderr?.on('data', (c: Buffer) => { refusal += c.toString(); });
  assert.equal(await new Promise((r) => intruder.once('exit', r)), 1);
  assert.match(refusal, new RegExp(`Another berth \\(pid ${second.child.pid}\\) is using the data dir ${dataDir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}; stop it or choose another --data-dir\\.`));

  // SIGTERM is a clean shutdown: instances stop with the server.
  const serving = new Set<number>();
  for (let i = 0; i < 8; i++) serving.add(await pidOf(c2, 'durable'));
  second.child.kill('SIGTERM');
  const code = await new Promise((r) => second.child.once('exit', r));
  assert.equal(code, 0);
  for (const pid of serving) assert.ok(!isRunning(pid), `instance ${pid} stopped with berth`);
});

test('an instance that stops answering /ping is taken out of rotation and replaced', async (t) => {
  const tb = await startTestBerth(t, { healthCheckIntervalMs: 100, unhealthyThreshold: 3 });
  await deployEcho(tb, 'sick', { count: 2 });
  const out = await tb.rt.send(new InvokeEndpointCommand({ EndpointName: 'sick', Body: Buffer.from(JSON.stringify({ action: 'sicken' })) }));
  const sickPid = (JSON.parse(Buffer.from(out.Body ?? []).toString()) as { pid: number }).pid;
  await waitFor(() => (isRunning(sickPid) ? undefined : true), 10_000, 'the unhealthy instance to be stopped');
  await waitFor(async () => {
    const v = (await tb.sm.send(new DescribeEndpointCommand({ EndpointName: 'sick' }))).ProductionVariants?.[0];
    return v?.CurrentInstanceCount === 2 && !v.VariantStatus ? true : undefined;
  }, 10_000, 'a replacement');
  const pids = new Set<number>();
  for (let i = 0; i < 12; i++) pids.add(await pidOf(tb, 'sick'));
  assert.equal(pids.size, 2);
  assert.ok(!pids.has(sickPid));
});
