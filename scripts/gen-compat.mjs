#!/usr/bin/env node
// Writes docs/compatibility.md: every member of every SageMaker request berth serves, with what berth
// does with it. Members come from the generated shapes, so a new operation or a botocore upgrade
// cannot add a field that nobody classified: `--check` (run by `npm test`) fails on an unclassified
// member, on a classification that matches nothing, and on a stale file.
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const target = join(root, 'docs/compatibility.md');

// What each support level means for the user.
const LEVELS = {
  honoured: 'berth acts on it as SageMaker does',
  partial: 'berth acts on part of it; the note says which part',
  stored: 'validated, stored and returned by Describe*, not acted on yet',
  accepted: 'validated and accepted, not acted on and not returned',
};

// Longest matching prefix wins. Keep notes short and about the user's view.
const C = {
  'CreateModel.ModelName': ['honoured'],
  'CreateModel.PrimaryContainer': ['honoured', 'one process per instance'],
  'CreateModel.PrimaryContainer.ContainerHostname': ['stored', 'ignored for a single container, as on SageMaker'],
  'CreateModel.PrimaryContainer.Image': ['honoured', "resolved through berth's image table (docs/configuration.md); built in: berth/onnx, berth/node, berth/xgboost, berth/model-server, berth/python and SageMaker's XGBoost, scikit-learn and PyTorch image URIs (docs/model-server.md, docs/python.md)"],
  'CreateModel.PrimaryContainer.ImageConfig': ['stored', 'there is no registry to pull from'],
  'CreateModel.PrimaryContainer.Mode': ['honoured', 'MultiModel: ModelDataUrl is a prefix, TargetModel picks the model, loaded on first use and evicted least recently used inside memory and disk budgets (docs/multi-model.md)'],
  'CreateModel.PrimaryContainer.ModelDataUrl': ['honoured', 's3:// (any S3-compatible store), https:// and file:// (a berth extension: a .tar.gz or a folder); fetched once per ETag, unpacked safely'],
  'CreateModel.PrimaryContainer.ModelDataSource': ['honoured', 'S3DataSource with S3Object or S3Prefix, Gzip or None'],
  'CreateModel.PrimaryContainer.ModelDataSource.S3DataSource.ModelAccessConfig': ['stored'],
  'CreateModel.PrimaryContainer.ModelDataSource.S3DataSource.HubAccessConfig': ['stored'],
  'CreateModel.PrimaryContainer.ModelDataSource.S3DataSource.ManifestS3Uri': ['stored'],
  'CreateModel.PrimaryContainer.ModelDataSource.S3DataSource.ETag': ['stored'],
  'CreateModel.PrimaryContainer.ModelDataSource.S3DataSource.ManifestEtag': ['stored'],
  'CreateModel.PrimaryContainer.AdditionalModelDataSources': ['stored'],
  'CreateModel.PrimaryContainer.Environment': ['honoured', 'the container environment, with the 32 KB total limit'],
  'CreateModel.PrimaryContainer.ModelPackageName': ['partial', 'accepted; an endpoint of a model with a package and no Image fails with a reason'],
  'CreateModel.PrimaryContainer.InferenceSpecificationName': ['stored'],
  'CreateModel.PrimaryContainer.MultiModelConfig': ['honoured', 'ModelCacheSetting Disabled unloads and deletes a model after each call'],
  'CreateModel.Containers': ['honoured', 'up to 15 containers, each its own process in every instance; a serial inference pipeline or direct invocation (InferenceExecutionConfig)'],
  'CreateModel.Containers.ContainerHostname': ['honoured', 'unique; the name TargetContainerHostname uses; `container_N` when omitted in a pipeline'],
  'CreateModel.Containers.Image': ['honoured', 'resolved through the image table, as for PrimaryContainer'],
  'CreateModel.Containers.ImageConfig': ['stored'],
  'CreateModel.Containers.Mode': ['stored', 'MultiModel is refused with more than one container, as on SageMaker'],
  'CreateModel.Containers.ModelDataUrl': ['honoured', 'as for PrimaryContainer'],
  'CreateModel.Containers.ModelDataSource': ['honoured', 'as for PrimaryContainer'],
  'CreateModel.Containers.ModelDataSource.S3DataSource.ModelAccessConfig': ['stored'],
  'CreateModel.Containers.ModelDataSource.S3DataSource.HubAccessConfig': ['stored'],
  'CreateModel.Containers.ModelDataSource.S3DataSource.ManifestS3Uri': ['stored'],
  'CreateModel.Containers.ModelDataSource.S3DataSource.ETag': ['stored'],
  'CreateModel.Containers.ModelDataSource.S3DataSource.ManifestEtag': ['stored'],
  'CreateModel.Containers.AdditionalModelDataSources': ['stored'],
  'CreateModel.Containers.Environment': ['honoured'],
  'CreateModel.Containers.ModelPackageName': ['partial', 'as for PrimaryContainer'],
  'CreateModel.Containers.InferenceSpecificationName': ['stored'],
  'CreateModel.Containers.MultiModelConfig': ['stored'],
  'CreateModel.InferenceExecutionConfig': ['honoured', 'Serial (default): each request flows through the containers in order; Direct: TargetContainerHostname picks one (every container must be named)'],
  'CreateModel.ExecutionRoleArn': ['stored', 'berth needs no role'],
  'CreateModel.Tags': ['honoured'],
  'CreateModel.VpcConfig': ['stored'],
  'CreateModel.EnableNetworkIsolation': ['stored'],
  'DescribeModel.ModelName': ['honoured', 'case-insensitive lookup'],
  'DeleteModel.ModelName': ['honoured', 'allowed while endpoints use the model, as on SageMaker: they run on their own copy'],
  'ListModels': ['honoured', 'SortBy, SortOrder, NextToken, MaxResults (default 10), NameContains (case-insensitive), CreationTimeAfter (inclusive) and CreationTimeBefore (exclusive)'],

  'CreateEndpointConfig.EndpointConfigName': ['honoured'],
  'CreateEndpointConfig.ProductionVariants': ['stored'],
  'CreateEndpointConfig.ProductionVariants.VariantName': ['honoured', 'unique within the config, case-insensitively'],
  'CreateEndpointConfig.ProductionVariants.ModelName': ['honoured', 'must exist'],
  'CreateEndpointConfig.ProductionVariants.InitialInstanceCount': ['honoured', 'processes started per variant (limit: maxInstancesPerVariant)'],
  'CreateEndpointConfig.ProductionVariants.InstanceType': ['stored', 'required and validated against the 271 types; instances are processes on this machine'],
  'CreateEndpointConfig.ProductionVariants.InitialVariantWeight': ['honoured', 'traffic share = weight / sum of weights; default 1.0'],
  'CreateEndpointConfig.ProductionVariants.ModelDataDownloadTimeoutInSeconds': ['honoured'],
  'CreateEndpointConfig.ProductionVariants.ContainerStartupHealthCheckTimeoutInSeconds': ['honoured', 'default 240 s (setting startupHealthCheckTimeoutMs)'],
  'CreateEndpointConfig.ProductionVariants.ServerlessConfig': ['partial', 'validated; the variant runs one instance (no scale to zero yet)'],
  'CreateEndpointConfig.DataCaptureConfig': ['stored', 'summarised in DescribeEndpoint; nothing is captured yet'],
  'CreateEndpointConfig.Tags': ['honoured'],
  'CreateEndpointConfig.KmsKeyId': ['stored'],
  'CreateEndpointConfig.AsyncInferenceConfig': ['stored', 'echoed by DescribeEndpoint; InvokeEndpointAsync is not served yet'],
  'CreateEndpointConfig.ExplainerConfig': ['stored'],
  'CreateEndpointConfig.ShadowProductionVariants': ['stored', 'validated (one production and one shadow variant); shadows are not started yet'],
  'CreateEndpointConfig.ExecutionRoleArn': ['stored'],
  'CreateEndpointConfig.VpcConfig': ['stored'],
  'CreateEndpointConfig.EnableNetworkIsolation': ['stored'],
  'CreateEndpointConfig.MetricsConfig': ['stored'],
  'DescribeEndpointConfig.EndpointConfigName': ['honoured'],
  'DeleteEndpointConfig.EndpointConfigName': ['honoured', 'allowed while endpoints use it, as on SageMaker'],
  'ListEndpointConfigs': ['honoured', 'as ListModels'],

  'CreateEndpoint.EndpointName': ['honoured', 'case-insensitively unique; the ARN lower-cases it; InvokeEndpoint matches it case-sensitively'],
  'CreateEndpoint.EndpointConfigName': ['honoured', 'the config and its models are copied into the endpoint'],
  'CreateEndpoint.DeploymentConfig': ['partial', 'validated and echoed as LastDeploymentConfig; updates are always blue/green all at once'],
  'CreateEndpoint.Tags': ['honoured'],
  'DescribeEndpoint.EndpointName': ['honoured', 'status, variants with current and desired weights and counts, DeployedImages, VariantStatus, PendingDeploymentSummary, FailureReason'],
  'DeleteEndpoint.EndpointName': ['honoured', 'refused while Creating, Updating or Deleting; instances get SIGTERM, then SIGKILL after the grace'],
  'ListEndpoints': ['honoured', 'as ListModels, plus LastModifiedTime filters, SortBy Status and StatusEquals'],
  'UpdateEndpoint.EndpointName': ['honoured', 'refused while in progress or Failed'],
  'UpdateEndpoint.EndpointConfigName': ['honoured', 'blue/green: the new fleet takes traffic once healthy, the old one drains; a failing new fleet leaves the endpoint InService on the old one with FailureReason'],
  'UpdateEndpoint.RetainAllVariantProperties': ['honoured'],
  'UpdateEndpoint.ExcludeRetainedVariantProperties': ['honoured', 'DesiredInstanceCount and DesiredWeight'],
  'UpdateEndpoint.DeploymentConfig': ['partial', 'as in CreateEndpoint'],
  'UpdateEndpoint.RetainDeploymentConfig': ['honoured'],
  'UpdateEndpointWeightsAndCapacities.EndpointName': ['honoured'],
  'UpdateEndpointWeightsAndCapacities.DesiredWeightsAndCapacities': ['honoured', 'weights apply at once; counts start or drain instances'],
  'UpdateEndpointWeightsAndCapacities.DesiredWeightsAndCapacities.ServerlessUpdateConfig': ['accepted'],

  'AddTags': ['honoured', 'models, endpoint configurations and endpoints'],
  'ListTags': ['honoured', 'MaxResults at least 50, as on SageMaker'],
  'DeleteTags': ['honoured'],
};

const RUNTIME = [
  ['InvokeEndpoint', 'Body', 'honoured', 'up to 6,291,456 bytes (setting maxPayloadBytes); larger bodies are refused from Content-Length before they are read'],
  ['InvokeEndpoint', 'ContentType / Accept', 'honoured', 'forwarded to the container'],
  ['InvokeEndpoint', 'CustomAttributes', 'honoured', 'forwarded both ways'],
  ['InvokeEndpoint', 'TargetVariant', 'honoured', 'overrides weights; reaches variants of weight 0'],
  ['InvokeEndpoint', 'TargetModel', 'honoured', 'multi-model endpoints: the key under the prefix, forwarded as X-Amzn-SageMaker-Target-Model; ValidationError on other endpoints or when missing'],
  ['InvokeEndpoint', 'TargetContainerHostname', 'honoured', 'required for Direct mode, refused elsewhere (ValidationError)'],
  ['InvokeEndpoint', 'InferenceId', 'honoured', 'forwarded to the container'],
  ['InvokeEndpoint', 'EnableExplanations, InferenceComponentName, SessionId', 'accepted', ''],
  ['InvokeEndpointAsync', '(operation)', 'rejected', 'UnknownOperationException: not served yet'],
  ['InvokeEndpointWithResponseStream', '(operation)', 'rejected', 'UnknownOperationException: not served yet'],
];

const src = readFileSync(join(root, 'src/control/shapes.generated.ts'), 'utf8');
const ops = Object.fromEntries([...src.matchAll(/^ {2}(\w+): (\{"input".*\}),$/gm)].map((m) => [m[1], JSON.parse(m[2])]));
const shapes = Object.fromEntries([...src.matchAll(/^ {2}(\w+): (\{"type".*\}),$/gm)].map((m) => [m[1], JSON.parse(m[2])]));

const paths = [];
function walk(shapeName, path, seen) {
  const s = shapes[shapeName];
  if (s.type === 'structure') {
    for (const [m, t] of Object.entries(s.members ?? {})) {
      const p = `${path}.${m}`;
      paths.push(p);
      if (!seen.has(t)) walk(t, p, new Set([...seen, t]));
    }
  } else if (s.type === 'list') walk(s.member, path, seen);
  else if (s.type === 'map') walk(s.value, path, seen);
}
for (const [op, io] of Object.entries(ops)) walk(io.input, op, new Set());

function classify(path) {
  let best;
  for (const key of Object.keys(C)) {
    if ((path === key || path.startsWith(`${key}.`)) && (!best || key.length > best.length)) best = key;
  }
  return best;
}

const problems = [];
const used = new Set();
for (const p of paths) {
  const k = classify(p);
  if (!k) problems.push(`unclassified member ${p}`);
  else used.add(k);
}
for (const k of Object.keys(C)) {
  if (!used.has(k)) problems.push(`classification ${k} matches no member`);
  if (!LEVELS[C[k][0]]) problems.push(`classification ${k} has unknown level ${C[k][0]}`);
}

const out = [];
out.push('# Compatibility with the SageMaker API');
out.push('');
out.push('<!-- GENERATED by scripts/gen-compat.mjs from the botocore shapes and its classification table. Do not edit; `npm test` fails when it is stale. -->');
out.push('');
out.push('Every member of every request berth serves, and what berth does with it. A row covers the member');
out.push('and everything inside it unless a more specific row follows. Levels:');
out.push('');
for (const [k, v] of Object.entries(LEVELS)) out.push(`- **${k}**: ${v}.`);
out.push('- **rejected**: refused with an error that says so.');
out.push('');
out.push('Constraints (required members, lengths, patterns, enums, ranges) are checked for every member at');
out.push("every level, with AWS's messages, whatever berth then does with the value.");
let currentOp = '';
for (const key of Object.keys(C)) {
  const op = key.split('.')[0];
  if (op !== currentOp) {
    currentOp = op;
    out.push('', `## ${op}`, '', '| Member | Level | Notes |', '|---|---|---|');
  }
  const member = key.includes('.') ? key.slice(op.length + 1) : '(all members)';
  out.push(`| \`${member}\` | ${C[key][0]} | ${C[key][1] ?? ''} |`);
}
out.push('', '## SageMaker Runtime', '', '| Operation | Member | Level | Notes |', '|---|---|---|---|');
for (const [op, m, level, note] of RUNTIME) out.push(`| ${op} | ${m} | ${level} | ${note} |`);
out.push('');
const text = out.join('\n');

if (problems.length) {
  console.error(problems.join('\n'));
  process.exit(1);
}
if (process.argv.includes('--check')) {
  if (readFileSync(target, 'utf8') !== text) {
    console.error('docs/compatibility.md is stale: run node scripts/gen-compat.mjs');
    process.exit(1);
  }
  console.log(`docs/compatibility.md is fresh (${paths.length} members classified)`);
} else {
  writeFileSync(target, text);
  console.log(`wrote docs/compatibility.md (${paths.length} members classified)`);
}
