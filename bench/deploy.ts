// bench/deploy: CreateEndpoint → InService for the berth/onnx iris model, median of several runs,
// against the floor in the same run: starting the same model server process directly and waiting for
// its first 200 from /ping (what any deployment must pay). Target: InService in under one second.
//
// Usage: npm run bench:deploy [-- --runs 9]
import { spawn } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  CreateEndpointCommand, CreateEndpointConfigCommand, CreateModelCommand, DeleteEndpointCommand, DescribeEndpointCommand, SageMakerClient,
  waitUntilEndpointDeleted,
} from '@aws-sdk/client-sagemaker';
import { freePort, median, ROOT, startBerth, table, tempDir } from './lib.js';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '9' } } });
const runs = Number(values.runs);

async function direct(modelDir: string): Promise<number> {
  const port = await freePort();
  const start = performance.now();
  const child = spawn(process.execPath, [join(ROOT, 'dist', 'src', 'container', 'main.js'), '--runtime', 'onnx', 'serve'], {
    env: { ...process.env, SAGEMAKER_BIND_TO_PORT: String(port), SM_MODEL_DIR: modelDir },
    stdio: 'ignore',
  });
  try {
    for (;;) {
      const ok = await fetch(`http://127.0.0.1:${port}/ping`).then((r) => r.status === 200, () => false);
      if (ok) return performance.now() - start;
      await sleep(2);
    }
  } finally {
    child.kill('SIGKILL');
  }
}

async function main(): Promise<void> {
  const dir = tempDir();
  const modelDir = join(dir, 'model');
  execFileSync('mkdir', ['-p', modelDir]);
  execFileSync('cp', [join(ROOT, 'test', 'fixtures', 'models', 'iris-v1.onnx'), join(modelDir, 'model.onnx')]);
  const tarball = join(dir, 'model.tar.gz');
  execFileSync('tar', ['-czf', tarball, '-C', modelDir, '.']);
  const { url } = await startBerth(join(dir, 'data'));
  const sm = new SageMakerClient({ endpoint: url, region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'x' } });
  await sm.send(new CreateModelCommand({ ModelName: 'iris', PrimaryContainer: { Image: 'berth/onnx', ModelDataUrl: `file://${tarball}` } }));
  await sm.send(new CreateEndpointConfigCommand({ EndpointConfigName: 'iris', ProductionVariants: [{ VariantName: 'AllTraffic', ModelName: 'iris', InstanceType: 'ml.c5.large', InitialInstanceCount: 1 }] }));

  const berth: number[] = [];
  const floor: number[] = [];
  for (let i = 0; i < runs; i++) {
    const name = `deploy-${i}`;
    const start = performance.now();
    await sm.send(new CreateEndpointCommand({ EndpointName: name, EndpointConfigName: 'iris' }));
    for (;;) {
      const d = await sm.send(new DescribeEndpointCommand({ EndpointName: name }));
      if (d.EndpointStatus === 'InService') break;
      if (d.EndpointStatus === 'Failed') throw new Error(d.FailureReason);
      await sleep(5);
    }
    berth.push(performance.now() - start);
    await sm.send(new DeleteEndpointCommand({ EndpointName: name }));
    await waitUntilEndpointDeleted({ client: sm, maxWaitTime: 60, minDelay: 1, maxDelay: 1 }, { EndpointName: name });
    floor.push(await direct(modelDir));
  }
  sm.destroy();
  console.log(`\nbench/deploy: CreateEndpoint → InService (1 instance of berth/onnx, iris-v1.onnx), ${runs} runs\n`);
  table(['measure', 'median ms', 'min ms', 'max ms'], [
    ['berth: CreateEndpoint → DescribeEndpoint says InService', median(berth), Math.min(...berth), Math.max(...berth)],
    ['floor: spawn the model server → first /ping 200', median(floor), Math.min(...floor), Math.max(...floor)],
  ]);
  console.log('');
  table(['measure', 'value', 'target', 'met'], [
    ['InService median (ms)', median(berth), '< 1000', median(berth) < 1000 ? 'yes' : 'no'],
    ['berth / floor', median(berth) / median(floor), '', ''],
  ]);
}

main().then(() => process.exit(0), (err: unknown) => {
  console.error(err);
  process.exit(1);
});
