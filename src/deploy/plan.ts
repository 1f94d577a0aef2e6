// Turns a variant of a deployment spec into what the fleet must start: for each container the command
// its image resolves to, the model data and the environment, plus how invocations reach the
// containers. Every failure here is a reason a person can act on, because it ends up in
// DescribeEndpoint's FailureReason.
import { createHash } from 'node:crypto';
import type { ArtifactCache, ModelSource } from '../artifacts/index.js';
import type { ContainerDefinition, DeployedImage, DeploymentSpec, ModelDoc, ProductionVariant } from '../control/index.js';
import { parseImage } from '../fleet/index.js';
import type { ContainerSpec, ImageTable, InstanceSpec } from '../fleet/index.js';

export class PlanError extends Error {
  override readonly name = 'PlanError';
}

/**
 * How an invocation reaches an instance's containers:
 * - `single`: the one container.
 * - `serial`: an inference pipeline — each container's answer is the next one's request.
 * - `direct`: the container named by TargetContainerHostname.
 */
export type InvocationMode = 'single' | 'serial' | 'direct';

/** A multi-model container: TargetModels are relative to `prefix` and loaded on first use. */
export interface MultiModelPlan {
  readonly prefix: string;
  readonly cacheEnabled: boolean;
  readonly instanceType?: string | undefined;
}

export interface VariantPlan {
  readonly variant: ProductionVariant;
  readonly multiModel?: MultiModelPlan | undefined;
  readonly model: ModelDoc;
  readonly instance: Omit<InstanceSpec, 'endpointName'>;
  readonly mode: InvocationMode;
  readonly deployedImages: DeployedImage[];
  readonly startupTimeoutMs: number;
}

export interface PlanContext {
  readonly images: ImageTable;
  readonly artifacts: ArtifactCache;
  readonly region: string;
  readonly defaultStartupTimeoutMs: number;
}

/** SageMaker's default when ModelDataDownloadTimeoutInSeconds is not set. */
const DEFAULT_DOWNLOAD_TIMEOUT_MS = 3_600_000;

function containersOf(model: ModelDoc): ContainerDefinition[] {
  return model.Containers ?? (model.PrimaryContainer ? [model.PrimaryContainer] : []);
}

/** ModelDataUrl is always a model.tar.gz; ModelDataSource says what it holds. */
function modelSource(c: ContainerDefinition): ModelSource | undefined {
  if (c.ModelDataUrl) return { url: c.ModelDataUrl, compression: 'Gzip', dataType: 'S3Object' };
  const s3 = c.ModelDataSource?.S3DataSource;
  if (s3) return { url: s3.S3Uri, compression: s3.CompressionType, dataType: s3.S3DataType };
  return undefined;
}

/** The hostnames containers run under: ContainerHostname, else `primary` or SageMaker's `container_N`. */
function hostnames(model: ModelDoc): string[] {
  const cs = containersOf(model);
  if (!model.Containers) return ['primary'];
  return cs.map((c, i) => c.ContainerHostname ?? `container_${i + 1}`);
}

async function planContainer(
  container: ContainerDefinition, name: string, modelName: string, variant: ProductionVariant, ctx: PlanContext, endpointName: string,
): Promise<{ spec: ContainerSpec; image: DeployedImage }> {
  if (!container.Image) {
    throw new PlanError(`Model ${modelName} names ModelPackageName "${container.ModelPackageName}" without an Image; berth runs containers from images in its image table, not from model packages.`);
  }
  const resolved = ctx.images.resolve(container.Image);
  if (!resolved) {
    const known = ctx.images.keys();
    throw new PlanError(
      `Image "${container.Image}" of model ${modelName} is not in berth's image table, so there is no program to run for it. ` +
      `Register it with \`berth serve --image ${container.Image}=/path/to/program\` or an "images" entry in the config file` +
      (known.length ? ` (known images: ${known.join(', ')}).` : '.'),
    );
  }
  let modelDir: string | undefined;
  const source = modelSource(container);
  const multiModel = container.Mode === 'MultiModel';
  if (multiModel && !source) {
    throw new PlanError(`Model ${modelName} is in MultiModel mode without ModelDataUrl; set ModelDataUrl to the S3 prefix that holds the models' .tar.gz files.`);
  }
  // A multi-model container starts empty: its models are fetched when first invoked.
  if (source && !multiModel) {
    const timeoutMs = (variant.ModelDataDownloadTimeoutInSeconds ?? 0) * 1000 || DEFAULT_DOWNLOAD_TIMEOUT_MS;
    try {
      modelDir = await ctx.artifacts.materialize(source, { timeoutMs, container: name });
    } catch (err) {
      throw new PlanError((err as Error).message);
    }
  }
  const env: Record<string, string> = {
    ...resolved.env,
    AWS_REGION: ctx.region,
    AWS_DEFAULT_REGION: ctx.region,
    ...container.Environment,
    BERTH_ENDPOINT_NAME: endpointName,
    BERTH_VARIANT_NAME: variant.VariantName,
    BERTH_CONTAINER_HOSTNAME: name,
  };
  if (multiModel) env['SAGEMAKER_MULTI_MODEL'] = 'true';
  const command = container.Environment?.['SAGEMAKER_PROGRAM'] && resolved.programCommand ? resolved.programCommand : resolved.command;
  const digest = createHash('sha256').update(JSON.stringify(command)).digest('hex');
  const ref = parseImage(container.Image);
  const repository = ref.registry ? `${ref.registry}/${ref.repository}` : ref.repository;
  return {
    spec: { name, command, env, modelDir },
    image: {
      SpecifiedImage: container.Image,
      // SageMaker resolves tags to digests; berth's equivalent pins the command the image ran as.
      ResolvedImage: `${repository}@sha256:${digest}`.slice(-255),
      ResolutionTime: Date.now() / 1000,
    },
  };
}

export async function planVariant(spec: DeploymentSpec, variantName: string, ctx: PlanContext, endpointName: string): Promise<VariantPlan> {
  const variant = spec.endpointConfig.ProductionVariants.find((v) => v.VariantName === variantName);
  if (!variant) throw new PlanError(`variant ${variantName} is not in endpoint configuration ${spec.endpointConfigName}`);
  const modelName = variant.ModelName as string;
  const model = spec.models[modelName];
  if (!model) throw new PlanError(`model ${modelName} of variant ${variantName} was not recorded with the endpoint`);
  const containers = containersOf(model);
  const names = hostnames(model);
  const planned = await Promise.all(containers.map((c, i) => planContainer(c, names[i] as string, modelName, variant, ctx, endpointName)));
  const mode: InvocationMode = containers.length === 1 ? 'single' : model.InferenceExecutionConfig?.Mode === 'Direct' ? 'direct' : 'serial';
  const first = containers[0];
  const prefix = first ? modelSource(first)?.url : undefined;
  return {
    variant,
    multiModel: first?.Mode === 'MultiModel' && prefix !== undefined
      ? { prefix, cacheEnabled: first.MultiModelConfig?.ModelCacheSetting !== 'Disabled', instanceType: variant.InstanceType }
      : undefined,
    model,
    instance: { variantName, containers: planned.map((p) => p.spec) },
    mode,
    deployedImages: planned.map((p) => p.image),
    startupTimeoutMs: (variant.ContainerStartupHealthCheckTimeoutInSeconds ?? 0) * 1000 || ctx.defaultStartupTimeoutMs,
  };
}
