// The control plane through @aws-sdk/client-sagemaker: what is stored and echoed, AWS's validation
// and conflict texts, ARNs, pagination, sorting, filters and tags.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  AddTagsCommand, CreateEndpointCommand, CreateEndpointConfigCommand, CreateModelCommand, DeleteEndpointConfigCommand,
  DeleteModelCommand, DeleteTagsCommand, DescribeEndpointConfigCommand, DescribeModelCommand, ListEndpointConfigsCommand,
  ListModelsCommand, ListTagsCommand, paginateListModels, SageMakerClient, SageMakerServiceException,
} from '@aws-sdk/client-sagemaker';
import { InvokeEndpointAsyncCommand, SageMakerRuntimeClient } from '@aws-sdk/client-sagemaker-runtime';
import { CREDENTIALS, rawCall, startTestBerth } from './helpers.js';

async function rejects(p: Promise<unknown>, name: string, message: string | RegExp): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof SageMakerServiceException, `expected a service error, got ${String(err)}`);
    assert.equal(err.name, name);
    if (typeof message === 'string') assert.equal(err.message, message);
    else assert.match(err.message, message);
    assert.equal(err.$metadata.httpStatusCode, 400);
    assert.ok(err.$metadata.requestId, 'x-amzn-RequestId is set');
    return true;
  });
}

test('CreateModel stores every member and DescribeModel returns it with ARN and CreationTime', async (t) => {
  const { sm } = await startTestBerth(t);
  const before = Date.now() / 1000;
  const input = {
    ModelName: 'My-Model',
    PrimaryContainer: {
      Image: '123456789012.dkr.ecr.us-east-1.amazonaws.com/echo:1.0',
      ModelDataUrl: 's3://bucket/path/model.tar.gz',
      Environment: { A: '1', SAGEMAKER_PROGRAM: 'inference.py' },
      ImageConfig: { RepositoryAccessMode: 'Platform' as const },
      Mode: 'SingleModel' as const,
      MultiModelConfig: { ModelCacheSetting: 'Enabled' as const },
    },
    ExecutionRoleArn: 'arn:aws:iam::123456789012:role/SageMakerRole',
    VpcConfig: { SecurityGroupIds: ['sg-123'], Subnets: ['subnet-1', 'subnet-2'] },
    EnableNetworkIsolation: true,
    Tags: [{ Key: 'team', Value: 'ml' }],
  };
  const created = await sm.send(new CreateModelCommand(input));
  // The name part of an ARN is lower-cased, as on SageMaker.
  assert.equal(created.ModelArn, 'arn:aws:sagemaker:us-east-1:123456789012:model/my-model');
  const d = await sm.send(new DescribeModelCommand({ ModelName: 'my-model' }));
  assert.equal(d.ModelName, 'My-Model');
  assert.equal(d.ModelArn, created.ModelArn);
  assert.deepEqual(d.PrimaryContainer, input.PrimaryContainer);
  assert.equal(d.ExecutionRoleArn, input.ExecutionRoleArn);
  assert.deepEqual(d.VpcConfig, input.VpcConfig);
  assert.equal(d.EnableNetworkIsolation, true);
  assert.ok(d.CreationTime instanceof Date);
  assert.ok(d.CreationTime.getTime() / 1000 >= before - 1);
  const tags = await sm.send(new ListTagsCommand({ ResourceArn: created.ModelArn }));
  assert.deepEqual(tags.Tags, [{ Key: 'team', Value: 'ml' }]);
});

test('ARNs take the region from the SigV4 scope and the configured account id', async (t) => {
  const { url } = await startTestBerth(t, { accountId: '111122223333' });
  const sm = new SageMakerClient({ endpoint: url, region: 'eu-west-1', credentials: CREDENTIALS });
  t.after(() => sm.destroy());
  const r = await sm.send(new CreateModelCommand({ ModelName: 'm', PrimaryContainer: { Image: 'echo' } }));
  assert.equal(r.ModelArn, 'arn:aws:sagemaker:eu-west-1:111122223333:model/m');
});

test('duplicates, not-found and in-use deletes behave as on SageMaker', async (t) => {
  const { sm } = await startTestBerth(t);
  await sm.send(new CreateModelCommand({ ModelName: 'dup', PrimaryContainer: { Image: 'echo' } }));
  // Names are unique case-insensitively.
  await rejects(sm.send(new CreateModelCommand({ ModelName: 'DUP', PrimaryContainer: { Image: 'echo' } })),
    'ValidationException', 'Cannot create already existing model "arn:aws:sagemaker:us-east-1:123456789012:model/dup".');
  await rejects(sm.send(new DescribeModelCommand({ ModelName: 'nope' })),
    'ValidationException', 'Could not find model "arn:aws:sagemaker:us-east-1:123456789012:model/nope".');
  await rejects(sm.send(new DeleteModelCommand({ ModelName: 'nope' })),
    'ValidationException', 'Could not find model "arn:aws:sagemaker:us-east-1:123456789012:model/nope".');
  await rejects(sm.send(new DescribeEndpointConfigCommand({ EndpointConfigName: 'nope' })),
    'ValidationException', 'Could not find endpoint configuration "arn:aws:sagemaker:us-east-1:123456789012:endpoint-config/nope".');
  await rejects(sm.send(new CreateEndpointConfigCommand({
    EndpointConfigName: 'c1',
    ProductionVariants: [{ VariantName: 'v', ModelName: 'missing', InstanceType: 'ml.m5.large', InitialInstanceCount: 1 }],
  })), 'ValidationException', 'Could not find model "arn:aws:sagemaker:us-east-1:123456789012:model/missing".');
  await sm.send(new CreateEndpointConfigCommand({
    EndpointConfigName: 'c1',
    ProductionVariants: [{ VariantName: 'v', ModelName: 'dup', InstanceType: 'ml.m5.large', InitialInstanceCount: 1 }],
  }));
  await rejects(sm.send(new CreateEndpointConfigCommand({
    EndpointConfigName: 'C1',
    ProductionVariants: [{ VariantName: 'v', ModelName: 'dup', InstanceType: 'ml.m5.large', InitialInstanceCount: 1 }],
  })), 'ValidationException', 'Cannot create already existing endpoint configuration "arn:aws:sagemaker:us-east-1:123456789012:endpoint-config/c1".');
  await rejects(sm.send(new CreateEndpointCommand({ EndpointName: 'e', EndpointConfigName: 'nope' })),
    'ValidationException', 'Could not find endpoint configuration "arn:aws:sagemaker:us-east-1:123456789012:endpoint-config/nope".');
  // The config's model deleted after the config was made: CreateEndpoint names the missing model.
  await sm.send(new DeleteModelCommand({ ModelName: 'dup' }));
  await rejects(sm.send(new CreateEndpointCommand({ EndpointName: 'e', EndpointConfigName: 'c1' })),
    'ValidationException', 'Could not find model "arn:aws:sagemaker:us-east-1:123456789012:model/dup".');
  await sm.send(new DeleteEndpointConfigCommand({ EndpointConfigName: 'c1' }));
  await rejects(sm.send(new DeleteEndpointConfigCommand({ EndpointConfigName: 'c1' })),
    'ValidationException', 'Could not find endpoint configuration "arn:aws:sagemaker:us-east-1:123456789012:endpoint-config/c1".');
});

test('constraint violations are reported together in AWS format', async (t) => {
  const { sm, url } = await startTestBerth(t);
  await rejects(sm.send(new CreateModelCommand({ ModelName: 'bad name!', PrimaryContainer: { Image: 'echo' } })),
    'ValidationException',
    "1 validation error detected: Value 'bad name!' at 'modelName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9]([\\-a-zA-Z0-9]*[a-zA-Z0-9])?");
  const long = 'a'.repeat(64);
  await rejects(sm.send(new CreateModelCommand({ ModelName: long, PrimaryContainer: { Image: 'echo' } })),
    'ValidationException', `1 validation error detected: Value '${long}' at 'modelName' failed to satisfy constraint: Member must have length less than or equal to 63`);
  await sm.send(new CreateModelCommand({ ModelName: 'ok', PrimaryContainer: { Image: 'echo' } }));
  await rejects(sm.send(new CreateEndpointConfigCommand({
    EndpointConfigName: 'cfg',
    ProductionVariants: [
      { VariantName: 'ENTER VARIANT', ModelName: 'ok', InstanceType: 'ml.m5.large', InitialInstanceCount: 0 },
      // @ts-expect-error an instance type outside the enum, as a user's typo would send
      { VariantName: 'b', ModelName: 'ok', InstanceType: 'ml.nope.large', InitialInstanceCount: 1, InitialVariantWeight: -1 },
    ],
  })), 'ValidationException', new RegExp([
    '^4 validation errors detected: ',
    "Value 'ENTER VARIANT' at 'productionVariants\\.1\\.member\\.variantName' failed to satisfy constraint: Member must satisfy regular expression pattern: \\[a-zA-Z0-9\\]\\(-\\*\\[a-zA-Z0-9\\]\\)\\{0,62\\}; ",
    "Value '0' at 'productionVariants\\.1\\.member\\.initialInstanceCount' failed to satisfy constraint: Member must have value greater than or equal to 1; ",
    "Value 'ml\\.nope\\.large' at 'productionVariants\\.2\\.member\\.instanceType' failed to satisfy constraint: Member must satisfy enum value set: \\[ml\\.t2\\.medium, .*\\]; ",
    "Value '-1' at 'productionVariants\\.2\\.member\\.initialVariantWeight' failed to satisfy constraint: Member must have value greater than or equal to 0$",
  ].join('')));
  // Required members: the JS SDK sends what it is given, so berth must say what is missing.
  const r = await rawCall(url, 'SageMaker.CreateEndpoint', '{}');
  assert.equal(r.status, 400);
  assert.equal(r.headers.get('x-amzn-errortype'), 'ValidationException');
  assert.equal(r.json['__type'], 'ValidationException');
  assert.equal(r.json['message'],
    "2 validation errors detected: Value null at 'endpointName' failed to satisfy constraint: Member must not be null; Value null at 'endpointConfigName' failed to satisfy constraint: Member must not be null");
  assert.equal(r.json['Message'], r.json['message']);
});

test('cross-field rules of models and endpoint configurations', async (t) => {
  const { sm } = await startTestBerth(t);
  await rejects(sm.send(new CreateModelCommand({ ModelName: 'none' })), 'ValidationException', /^A model needs a container/);
  await rejects(sm.send(new CreateModelCommand({ ModelName: 'both', PrimaryContainer: { Image: 'a' }, Containers: [{ Image: 'b' }] })),
    'ValidationException', /^Specify either PrimaryContainer or Containers, not both/);
  await rejects(sm.send(new CreateModelCommand({ ModelName: 'noimage', PrimaryContainer: { ModelDataUrl: 's3://b/m.tar.gz' } })),
    'ValidationException', "1 validation error detected: Value null at 'primaryContainer.image' failed to satisfy constraint: Member must not be null");
  await rejects(sm.send(new CreateModelCommand({ ModelName: 'hosts', Containers: [{ Image: 'a', ContainerHostname: 'x' }, { Image: 'b', ContainerHostname: 'x' }] })),
    'ValidationException', /^ContainerHostname "x" is used by more than one container/);
  await rejects(sm.send(new CreateModelCommand({ ModelName: 'hosts2', Containers: [{ Image: 'a', ContainerHostname: 'x' }, { Image: 'b' }] })),
    'ValidationException', 'If any container of Containers sets ContainerHostname, all of them must.');
  await rejects(sm.send(new CreateModelCommand({ ModelName: 'iec', PrimaryContainer: { Image: 'a' }, InferenceExecutionConfig: { Mode: 'Direct' } })),
    'ValidationException', /^InferenceExecutionConfig applies only to models with Containers/);
  const bigEnv = Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`K${i}`, 'v'.repeat(1000)]));
  await rejects(sm.send(new CreateModelCommand({ ModelName: 'env', PrimaryContainer: { Image: 'a', Environment: bigEnv } })),
    'ValidationException', /at most 32768 bytes of keys and values; this model has 40110/);
  await rejects(sm.send(new CreateModelCommand({ ModelName: 'envkey', PrimaryContainer: { Image: 'a', Environment: { '1BAD': 'x' } } })),
    'ValidationException', /at 'primaryContainer\.environment\.key' failed to satisfy constraint: Member must satisfy regular expression pattern: \[a-zA-Z_\]\[a-zA-Z0-9_\]\*/);

  await sm.send(new CreateModelCommand({ ModelName: 'm', PrimaryContainer: { Image: 'echo' } }));
  const variant = { ModelName: 'm', InstanceType: 'ml.m5.large' as const, InitialInstanceCount: 1 };
  await rejects(sm.send(new CreateEndpointConfigCommand({ EndpointConfigName: 'c', ProductionVariants: [{ VariantName: 'a', ...variant }, { VariantName: 'A', ...variant }] })),
    'ValidationException', /^The variant name "A" is used more than once/);
  await rejects(sm.send(new CreateEndpointConfigCommand({ EndpointConfigName: 'c', ProductionVariants: [{ VariantName: 'a', ModelName: 'm' }] })),
    'ValidationException',
    "2 validation errors detected: Value null at 'productionVariants.1.member.instanceType' failed to satisfy constraint: Member must not be null; Value null at 'productionVariants.1.member.initialInstanceCount' failed to satisfy constraint: Member must not be null");
  await rejects(sm.send(new CreateEndpointConfigCommand({ EndpointConfigName: 'c', ProductionVariants: [{ VariantName: 'a', ModelName: 'm', ServerlessConfig: { MemorySizeInMB: 1500, MaxConcurrency: 5 } }] })),
    'ValidationException', "1 validation error detected: Value '1500' at 'productionVariants.1.member.serverlessConfig.memorySizeInMB' failed to satisfy constraint: Member must satisfy enum value set: [1024, 2048, 3072, 4096, 5120, 6144]");
  await rejects(sm.send(new CreateEndpointConfigCommand({ EndpointConfigName: 'c', ProductionVariants: [{ VariantName: 'a', ModelName: 'm', ServerlessConfig: { MemorySizeInMB: 2048, MaxConcurrency: 5, ProvisionedConcurrency: 6 } }] })),
    'ValidationException', /ProvisionedConcurrency \(6\) must not exceed MaxConcurrency \(5\)/);
  await rejects(sm.send(new CreateEndpointConfigCommand({ EndpointConfigName: 'c', ProductionVariants: [{ VariantName: 'a', ...variant, ServerlessConfig: { MemorySizeInMB: 2048, MaxConcurrency: 5 } }] })),
    'ValidationException', /either serverless or instance-based/);
  await rejects(sm.send(new CreateEndpointConfigCommand({ EndpointConfigName: 'c', ProductionVariants: [{ VariantName: 'a', ...variant }, { VariantName: 'b', ...variant }], ShadowProductionVariants: [{ VariantName: 's', ...variant }] })),
    'ValidationException', /exactly one production variant and one shadow variant/);
  await sm.send(new CreateEndpointConfigCommand({ EndpointConfigName: 'c', ProductionVariants: [{ VariantName: 'a', ...variant }] }));
  await rejects(sm.send(new CreateEndpointCommand({
    EndpointName: 'e', EndpointConfigName: 'c',
    DeploymentConfig: {
      BlueGreenUpdatePolicy: { TrafficRoutingConfiguration: { Type: 'ALL_AT_ONCE', WaitIntervalInSeconds: 0 } },
      RollingUpdatePolicy: { MaximumBatchSize: { Type: 'INSTANCE_COUNT', Value: 1 }, WaitIntervalInSeconds: 0 },
    },
  })), 'ValidationException', /either BlueGreenUpdatePolicy or RollingUpdatePolicy, not both/);
  await sm.send(new CreateEndpointConfigCommand({ EndpointConfigName: 'toomany', ProductionVariants: [{ VariantName: 'a', ...variant, InitialInstanceCount: 500 }] }));
  await assert.rejects(sm.send(new CreateEndpointCommand({ EndpointName: 'e', EndpointConfigName: 'toomany' })),
    (err: Error) => err.name === 'ResourceLimitExceeded' && /asks for 500 instances/.test(err.message));
});

test('DescribeEndpointConfig echoes every member and fills the default weight', async (t) => {
  const { sm } = await startTestBerth(t);
  await sm.send(new CreateModelCommand({ ModelName: 'm', PrimaryContainer: { Image: 'echo' } }));
  const input = {
    EndpointConfigName: 'full',
    ProductionVariants: [{
      VariantName: 'AllTraffic', ModelName: 'm', InstanceType: 'ml.c5.xlarge' as const, InitialInstanceCount: 2,
      VolumeSizeInGB: 30, ModelDataDownloadTimeoutInSeconds: 600, ContainerStartupHealthCheckTimeoutInSeconds: 600,
      RoutingConfig: { RoutingStrategy: 'LEAST_OUTSTANDING_REQUESTS' as const },
      ManagedInstanceScaling: { Status: 'ENABLED' as const, MinInstanceCount: 1, MaxInstanceCount: 4 },
    }],
    DataCaptureConfig: {
      EnableCapture: true, InitialSamplingPercentage: 50, DestinationS3Uri: 's3://bucket/capture',
      CaptureOptions: [{ CaptureMode: 'Input' as const }, { CaptureMode: 'Output' as const }],
      CaptureContentTypeHeader: { JsonContentTypes: ['application/json'] },
    },
    AsyncInferenceConfig: { OutputConfig: { S3OutputPath: 's3://bucket/out' }, ClientConfig: { MaxConcurrentInvocationsPerInstance: 4 } },
    KmsKeyId: 'alias/my-key',
    EnableNetworkIsolation: false,
  };
  await sm.send(new CreateEndpointConfigCommand(input));
  const d = await sm.send(new DescribeEndpointConfigCommand({ EndpointConfigName: 'full' }));
  assert.deepEqual(d.ProductionVariants, [{ ...input.ProductionVariants[0], InitialVariantWeight: 1 }]);
  assert.deepEqual(d.DataCaptureConfig, input.DataCaptureConfig);
  assert.deepEqual(d.AsyncInferenceConfig, input.AsyncInferenceConfig);
  assert.equal(d.KmsKeyId, 'alias/my-key');
  assert.equal(d.EnableNetworkIsolation, false);
  assert.equal(d.EndpointConfigArn, 'arn:aws:sagemaker:us-east-1:123456789012:endpoint-config/full');
});

test('lists paginate, sort and filter as on SageMaker', async (t) => {
  const { sm } = await startTestBerth(t);
  const names = ['alpha', 'bravo', 'charlie', 'delta', 'echo-1', 'echo-2', 'foxtrot', 'golf', 'hotel', 'india', 'juliet', 'kilo'];
  const times: Record<string, number> = {};
  for (const n of names) {
    await sm.send(new CreateModelCommand({ ModelName: n, PrimaryContainer: { Image: 'echo' } }));
    times[n] = (await sm.send(new DescribeModelCommand({ ModelName: n }))).CreationTime?.getTime() ?? 0;
    await new Promise((r) => setTimeout(r, 3));
  }
  // Default: CreationTime, Descending, 10 per page.
  const first = await sm.send(new ListModelsCommand({}));
  assert.equal(first.Models?.length, 10);
  assert.deepEqual(first.Models?.map((m) => m.ModelName), [...names].reverse().slice(0, 10));
  assert.ok(first.NextToken);
  const second = await sm.send(new ListModelsCommand({ NextToken: first.NextToken }));
  assert.deepEqual(second.Models?.map((m) => m.ModelName), ['bravo', 'alpha']);
  assert.equal(second.NextToken, undefined);
  // The SDK's paginator walks every page.
  const all: string[] = [];
  for await (const page of paginateListModels({ client: sm, pageSize: 5 }, { SortBy: 'Name', SortOrder: 'Ascending' })) {
    all.push(...(page.Models ?? []).map((m) => m.ModelName ?? ''));
  }
  assert.deepEqual(all, names);
  const echoes = await sm.send(new ListModelsCommand({ NameContains: 'ECHO', SortBy: 'Name', SortOrder: 'Ascending' }));
  assert.deepEqual(echoes.Models?.map((m) => m.ModelName), ['echo-1', 'echo-2']);
  // CreationTimeAfter is inclusive, CreationTimeBefore exclusive.
  const window = await sm.send(new ListModelsCommand({
    CreationTimeAfter: new Date(times['charlie'] as number), CreationTimeBefore: new Date(times['echo-1'] as number), SortOrder: 'Ascending',
  }));
  assert.deepEqual(window.Models?.map((m) => m.ModelName), ['charlie', 'delta']);
  await assert.rejects(sm.send(new ListModelsCommand({ NextToken: 'garbage!' })), /Invalid NextToken/);
  await rejects(sm.send(new ListEndpointConfigsCommand({ MaxResults: 101 })), 'ValidationException',
    "1 validation error detected: Value '101' at 'maxResults' failed to satisfy constraint: Member must have value less than or equal to 100");
});

test('tags: add, replace, list with pages, delete', async (t) => {
  const { sm } = await startTestBerth(t);
  const { ModelArn } = await sm.send(new CreateModelCommand({ ModelName: 'tagged', PrimaryContainer: { Image: 'echo' } }));
  const arn = ModelArn as string;
  const tags = Array.from({ length: 50 }, (_, i) => ({ Key: `k${i}`, Value: `v${i}` }));
  await sm.send(new AddTagsCommand({ ResourceArn: arn, Tags: tags }));
  await sm.send(new AddTagsCommand({ ResourceArn: arn, Tags: [{ Key: 'k0', Value: 'changed' }, { Key: 'extra', Value: 'x' }] }));
  const page1 = await sm.send(new ListTagsCommand({ ResourceArn: arn, MaxResults: 50 }));
  assert.equal(page1.Tags?.length, 50);
  assert.deepEqual(page1.Tags?.[0], { Key: 'k0', Value: 'changed' });
  const page2 = await sm.send(new ListTagsCommand({ ResourceArn: arn, MaxResults: 50, NextToken: page1.NextToken }));
  assert.deepEqual(page2.Tags, [{ Key: 'extra', Value: 'x' }]);
  await sm.send(new DeleteTagsCommand({ ResourceArn: arn, TagKeys: ['extra', 'k1'] }));
  const after = await sm.send(new ListTagsCommand({ ResourceArn: arn }));
  assert.equal(after.Tags?.length, 49);
  assert.ok(!after.Tags?.some((x) => x.Key === 'k1'));
  await rejects(sm.send(new ListTagsCommand({ ResourceArn: 'arn:aws:sagemaker:us-east-1:123456789012:endpoint/none' })),
    'ValidationException', 'Could not find endpoint "arn:aws:sagemaker:us-east-1:123456789012:endpoint/none".');
  await rejects(sm.send(new ListTagsCommand({ ResourceArn: arn, MaxResults: 10 })), 'ValidationException', /Member must have value greater than or equal to 50/);
  // Tags go with the resource.
  await sm.send(new DeleteModelCommand({ ModelName: 'tagged' }));
  await sm.send(new CreateModelCommand({ ModelName: 'tagged', PrimaryContainer: { Image: 'echo' } }));
  assert.deepEqual((await sm.send(new ListTagsCommand({ ResourceArn: arn }))).Tags, []);
});

test('protocol errors: unknown operation, bad JSON, wrong member types', async (t) => {
  const { url } = await startTestBerth(t);
  const unknown = await rawCall(url, 'SageMaker.CreateTrainingJob', '{}');
  assert.equal(unknown.status, 400);
  assert.equal(unknown.json['__type'], 'UnknownOperationException');
  assert.equal(unknown.headers.get('x-amzn-errortype'), 'UnknownOperationException');
  assert.match(unknown.headers.get('x-amzn-requestid') ?? '', /^[0-9a-f-]{36}$/);
  const badJson = await rawCall(url, 'SageMaker.ListModels', '{not json');
  assert.equal(badJson.json['__type'], 'SerializationException');
  const wrongType = await rawCall(url, 'SageMaker.CreateModel', JSON.stringify({ ModelName: 'x', PrimaryContainer: { Image: 5 } }));
  assert.equal(wrongType.json['__type'], 'SerializationException');
  assert.equal(wrongType.json['message'], "Expected a string at 'primaryContainer.image' but found a number.");
  // A body over the control plane's 16 MiB guard is refused before it is buffered.
  const huge = await rawCall(url, 'SageMaker.CreateModel', JSON.stringify({ ModelName: 'x', pad: 'a'.repeat(16 * 1024 * 1024) }));
  assert.equal(huge.status, 400);
  assert.equal(huge.json['__type'], 'SerializationException');
  assert.equal(huge.json['message'], 'The request body is larger than 16777216 bytes.');
  // Runtime operations berth does not serve yet, and paths it has no route for, say so in the envelope.
  const rt = new SageMakerRuntimeClient({ endpoint: url, region: 'us-east-1', credentials: CREDENTIALS, maxAttempts: 1 });
  t.after(() => rt.destroy());
  await assert.rejects(rt.send(new InvokeEndpointAsyncCommand({ EndpointName: 'e', InputLocation: 's3://b/in.json' })),
    { name: 'UnknownOperationException', message: 'berth does not serve InvokeEndpointAsync yet; use InvokeEndpoint.' });
  const stray = await fetch(`${url}/nowhere`);
  assert.equal(stray.status, 400);
  assert.equal(stray.headers.get('x-amzn-errortype'), 'UnknownOperationException');
  assert.equal(((await stray.json()) as Record<string, string>)['message'], 'berth has no route for GET /nowhere.');
  const ok = await rawCall(url, 'SageMaker.ListEndpoints', '');
  assert.equal(ok.status, 200);
  assert.equal(ok.headers.get('content-type'), 'application/x-amz-json-1.1');
  assert.deepEqual(ok.json, { Endpoints: [] });
});
