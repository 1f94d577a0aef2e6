// Shared test support: an in-process berth on port 0 with a temporary data dir, real SDK clients
// pointed at it, and the echo container registered as the image `echo`.
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, rmSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { execFileSync } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import type { TestContext } from 'node:test';
import { SageMakerClient } from '@aws-sdk/client-sagemaker';
import type { ContainerDefinition } from '@aws-sdk/client-sagemaker';
import { ModelError, SageMakerRuntimeClient } from '@aws-sdk/client-sagemaker-runtime';
import { S3Client } from '@aws-sdk/client-s3';
import { startBerth } from '../src/app/index.js';
import type { Berth } from '../src/app/index.js';
import { loadConfig } from '../src/config/index.js';

export const ROOT = resolve(import.meta.dirname, '..', '..');
export const ECHO = join(ROOT, 'test', 'fixtures', 'echo-container.mjs');

export const CREDENTIALS = { accessKeyId: 'AKIDTEST', secretAccessKey: 'secret' };

export interface TestBerth {
  readonly berth: Berth;
  readonly sm: SageMakerClient;
  readonly rt: SageMakerRuntimeClient;
  readonly dir: string;
  readonly url: string;
}

export function tempDir(t: TestContext | undefined, prefix = 'berth-test-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  t?.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export function clients(url: string, region = 'us-east-1'): { sm: SageMakerClient; rt: SageMakerRuntimeClient } {
  return {
    sm: new SageMakerClient({ endpoint: url, region, credentials: CREDENTIALS, maxAttempts: 1 }),
    rt: new SageMakerRuntimeClient({ endpoint: url, region, credentials: CREDENTIALS, maxAttempts: 1 }),
  };
}

/** Starts berth in this process; cleanup is registered before anything can fail. */
export async function startTestBerth(t: TestContext, flags: Record<string, unknown> = {}): Promise<TestBerth> {
  const dir = tempDir(t);
  const config = loadConfig({
    flags: {
      port: 0,
      dataDir: join(dir, 'data'),
      healthCheckIntervalMs: 200,
      instanceStopGraceMs: 2_000,
      images: { echo: { command: [process.execPath, ECHO] } },
      ...flags,
    },
  });
  const berth = await startBerth(config, { containerEnv: { PATH: process.env['PATH'], HOME: process.env['HOME'] } });
  const { sm, rt } = clients(berth.url);
  t.after(async () => {
    sm.destroy();
    rt.destroy();
    await berth.close();
  });
  return { berth, sm, rt, dir, url: berth.url };
}

/** A model.tar.gz holding `files`, made with the system tar as a user would. */
export function makeModelTarGz(dir: string, files: Record<string, string>, name = 'model.tar.gz'): string {
  const src = join(dir, `${name}.src`);
  mkdirSync(src, { recursive: true });
  for (const [f, content] of Object.entries(files)) {
    mkdirSync(join(src, f, '..'), { recursive: true });
    writeFileSync(join(src, f), content);
  }
  const out = join(dir, name);
  execFileSync('tar', ['-czf', out, '-C', src, '.']);
  return out;
}

/** Polls `probe` until it returns a value that is not undefined, or fails after `timeoutMs`. */
export async function waitFor<T>(probe: () => Promise<T | undefined> | T | undefined, timeoutMs = 20_000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last instanceof Error ? `: ${last.message}` : ''}`);
    await sleep(25);
  }
}

/** Raw JSON 1.1 call, for what the SDKs would refuse to send. */
export async function rawCall(url: string, target: string, body: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: Headers; json: Record<string, unknown> }> {
  const res = await fetch(`${url}/`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': target, ...headers },
    body,
  });
  return { status: res.status, headers: res.headers, json: (await res.json()) as Record<string, unknown> };
}

/** Creates model, config and endpoint for the echo container and waits until InService. */
export async function deployEcho(
  tb: TestBerth,
  name: string,
  opts: { env?: Record<string, string>; modelDataUrl?: string; count?: number; variants?: { name: string; weight: number; env?: Record<string, string> }[] } = {},
): Promise<void> {
  const { CreateModelCommand, CreateEndpointConfigCommand, CreateEndpointCommand, waitUntilEndpointInService } = await import('@aws-sdk/client-sagemaker');
  const variants = opts.variants ?? [{ name: 'AllTraffic', weight: 1, env: opts.env }];
  for (const v of variants) {
    await tb.sm.send(new CreateModelCommand({
      ModelName: `${name}-${v.name}`.toLowerCase(),
      PrimaryContainer: { Image: 'echo:latest', Environment: v.env ?? opts.env, ...(opts.modelDataUrl ? { ModelDataUrl: opts.modelDataUrl } : {}) },
    }));
  }
  await tb.sm.send(new CreateEndpointConfigCommand({
    EndpointConfigName: `${name}-cfg`,
    ProductionVariants: variants.map((v) => ({
      VariantName: v.name,
      ModelName: `${name}-${v.name}`.toLowerCase(),
      InstanceType: 'ml.m5.large',
      InitialInstanceCount: opts.count ?? 1,
      InitialVariantWeight: v.weight,
    })),
  }));
  await tb.sm.send(new CreateEndpointCommand({ EndpointName: name, EndpointConfigName: `${name}-cfg` }));
  const r = await waitUntilEndpointInService({ client: tb.sm, maxWaitTime: 60, minDelay: 1, maxDelay: 1 }, { EndpointName: name });
  if (String(r.state) !== 'SUCCESS') throw new Error(`endpoint ${name} did not reach InService: ${JSON.stringify(r.reason)}`);
}

/** Whether a process with this pid exists (signal 0 checks without signalling). */
export function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * A real S3 API on loopback (moto_server, installed with the machine's Python). A missing moto_server
 * fails the test with the reason rather than skipping it.
 */
export async function startMoto(t: TestContext): Promise<{ endpoint: string; s3: S3Client }> {
  const { spawn } = await import('node:child_process');
  const { createServer } = await import('node:net');
  const port = await new Promise<number>((res) => {
    const srv = createServer().listen(0, '127.0.0.1', () => {
      const p = (srv.address() as { port: number }).port;
      srv.close(() => res(p));
    });
  });
  const child = spawn('moto_server', ['-H', '127.0.0.1', '-p', String(port)], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (c: Buffer) => { stderr += c.toString(); });
  const spawned = await new Promise<Error | undefined>((res) => {
    child.once('spawn', () => res(undefined));
    child.once('error', (err) => res(err));
  });
  if (spawned) throw new Error(`moto_server could not start (${spawned.message}); install it with: pip install 'moto[server]'`);
  t.after(() => { child.kill('SIGKILL'); });
  const endpoint = `http://127.0.0.1:${port}`;
  await waitFor(async () => ((await fetch(`${endpoint}/`).catch(() => undefined))?.ok ? true : undefined), 20_000, `moto_server on ${endpoint} (${stderr.slice(-300)})`);
  const s3 = new S3Client({ endpoint, region: 'us-east-1', forcePathStyle: true, credentials: CREDENTIALS });
  t.after(() => s3.destroy());
  return { endpoint, s3 };
}

/** A model.tar.gz of files and folders copied from the fixtures, as `tar -czf model.tar.gz -C dir .` makes it. */
export function artifact(dir: string, name: string, files: Record<string, string>): string {
  const src = join(dir, `${name}-src`);
  mkdirSync(src, { recursive: true });
  for (const [to, from] of Object.entries(files)) cpSync(from, join(src, to), { recursive: true });
  const out = join(dir, `${name}.tar.gz`);
  execFileSync('tar', ['-czf', out, '-C', src, '.']);
  return pathToFileURL(out).href;
}

/** The parts of CreateModel a test varies. */
export interface ModelParts {
  readonly PrimaryContainer?: ContainerDefinition;
  readonly Containers?: ContainerDefinition[];
  readonly InferenceExecutionConfig?: { Mode: 'Serial' | 'Direct' };
}

/**
 * Creates a model, a one-variant config and an endpoint, all named `name`, waits until the endpoint
 * settles, and returns its status and FailureReason.
 */
export async function deployModel(tb: TestBerth, name: string, model: ModelParts): Promise<{ status?: string; reason?: string }> {
  const { CreateModelCommand, CreateEndpointConfigCommand, CreateEndpointCommand, DescribeEndpointCommand, waitUntilEndpointInService } = await import('@aws-sdk/client-sagemaker');
  await tb.sm.send(new CreateModelCommand({ ModelName: name, ...model }));
  await tb.sm.send(new CreateEndpointConfigCommand({
    EndpointConfigName: name, ProductionVariants: [{ VariantName: 'AllTraffic', ModelName: name, InstanceType: 'ml.m5.large', InitialInstanceCount: 1 }],
  }));
  await tb.sm.send(new CreateEndpointCommand({ EndpointName: name, EndpointConfigName: name }));
  await waitUntilEndpointInService({ client: tb.sm, maxWaitTime: 30, minDelay: 1, maxDelay: 1 }, { EndpointName: name }).catch(() => undefined);
  const d = await tb.sm.send(new DescribeEndpointCommand({ EndpointName: name }));
  return { status: d.EndpointStatus, reason: d.FailureReason };
}

/** The ModelError a call must fail with (its OriginalStatusCode and message are the container's). */
export async function modelError(p: Promise<unknown>): Promise<ModelError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof ModelError, `expected ModelError, got ${String(err)}`);
    return err;
  }
  throw new Error('expected the call to fail');
}
