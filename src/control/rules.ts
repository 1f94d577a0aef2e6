// Cross-field rules the shapes cannot express. Where AWS's text is known it is used; elsewhere the
// message names the member and says what to change.
import { constraintViolations, invalid } from '../errors/index.js';
import type { ConstraintViolation } from '../errors/index.js';
import type { ContainerDefinition, CreateEndpointConfigInput, CreateModelInput, DeploymentConfig, ProductionVariant } from './shapes.generated.js';

/** SageMaker's limit on all Environment keys and values of one model, summed (container-contracts.md §1.1). */
const ENVIRONMENT_BUDGET_BYTES = 32 * 1024;
const SERVERLESS_MEMORY_MB = [1024, 2048, 3072, 4096, 5120, 6144];

export function checkModel(input: CreateModelInput): void {
  if (input.PrimaryContainer && input.Containers) {
    throw invalid('Specify either PrimaryContainer or Containers, not both: PrimaryContainer is a single-container model, Containers an inference pipeline or multi-container model.');
  }
  const containers: readonly ContainerDefinition[] = input.Containers ?? (input.PrimaryContainer ? [input.PrimaryContainer] : []);
  if (containers.length === 0) {
    throw invalid('A model needs a container: specify PrimaryContainer (one container) or Containers (1 to 15).');
  }
  const base = input.Containers ? 'containers' : 'primaryContainer';
  const violations: ConstraintViolation[] = [];
  containers.forEach((c, i) => {
    const path = input.Containers ? `${base}.${i + 1}.member` : base;
    if (!c.Image && !c.ModelPackageName) violations.push({ path: `${path}.image`, value: null, constraint: 'Member must not be null' });
  });
  if (violations.length > 0) throw constraintViolations(violations);

  let envBytes = 0;
  for (const c of containers) {
    for (const [k, v] of Object.entries(c.Environment ?? {})) envBytes += Buffer.byteLength(k) + Buffer.byteLength(v);
  }
  if (envBytes > ENVIRONMENT_BUDGET_BYTES) {
    throw invalid(`The Environment of all containers of a model may hold at most ${ENVIRONMENT_BUDGET_BYTES} bytes of keys and values; this model has ${envBytes}.`);
  }

  if (input.Containers) {
    const named = input.Containers.filter((c) => c.ContainerHostname !== undefined);
    if (named.length > 0 && named.length < input.Containers.length) {
      throw invalid('If any container of Containers sets ContainerHostname, all of them must.');
    }
    if (input.Containers.length > 1 && input.Containers.some((c) => c.Mode === 'MultiModel')) {
      throw invalid('A container in MultiModel mode must be the only container of its model: multi-model hosting is not available for inference pipelines or direct invocation.');
    }
    if (input.InferenceExecutionConfig?.Mode === 'Direct' && named.length < input.Containers.length) {
      throw invalid('InferenceExecutionConfig Mode Direct needs a ContainerHostname on every container: callers name the container to invoke with TargetContainerHostname.');
    }
    const seen = new Set<string>();
    for (const c of named) {
      const h = c.ContainerHostname as string;
      if (seen.has(h)) throw invalid(`ContainerHostname "${h}" is used by more than one container; hostnames must be unique within a model.`);
      seen.add(h);
    }
  } else if (input.InferenceExecutionConfig) {
    throw invalid('InferenceExecutionConfig applies only to models with Containers; a model with a PrimaryContainer has a single container.');
  }
}

function variantViolations(variants: readonly ProductionVariant[], listPath: string): ConstraintViolation[] {
  const out: ConstraintViolation[] = [];
  variants.forEach((v, i) => {
    const path = `${listPath}.${i + 1}.member`;
    if (!v.ModelName) out.push({ path: `${path}.modelName`, value: null, constraint: 'Member must not be null' });
    if (v.ServerlessConfig) {
      const mem = v.ServerlessConfig.MemorySizeInMB;
      if (!SERVERLESS_MEMORY_MB.includes(mem)) {
        out.push({ path: `${path}.serverlessConfig.memorySizeInMB`, value: mem, constraint: `Member must satisfy enum value set: [${SERVERLESS_MEMORY_MB.join(', ')}]` });
      }
    } else {
      if (!v.InstanceType) out.push({ path: `${path}.instanceType`, value: null, constraint: 'Member must not be null' });
      if (v.InitialInstanceCount === undefined) out.push({ path: `${path}.initialInstanceCount`, value: null, constraint: 'Member must not be null' });
    }
  });
  return out;
}

export function checkEndpointConfig(input: CreateEndpointConfigInput): void {
  const shadows = input.ShadowProductionVariants ?? [];
  const violations = [
    ...variantViolations(input.ProductionVariants, 'productionVariants'),
    ...variantViolations(shadows, 'shadowProductionVariants'),
  ];
  if (violations.length > 0) throw constraintViolations(violations);

  const all = [...input.ProductionVariants, ...shadows];
  const names = new Set<string>();
  for (const v of all) {
    const key = v.VariantName.toLowerCase();
    if (names.has(key)) throw invalid(`The variant name "${v.VariantName}" is used more than once; variant names must be unique within an endpoint configuration.`);
    names.add(key);
  }
  for (const v of all) {
    if (v.ServerlessConfig && (v.InstanceType || v.InitialInstanceCount !== undefined)) {
      throw invalid(`Variant "${v.VariantName}" sets ServerlessConfig together with InstanceType or InitialInstanceCount; a variant is either serverless or instance-based.`);
    }
    const sc = v.ServerlessConfig;
    if (sc?.ProvisionedConcurrency !== undefined && sc.ProvisionedConcurrency > sc.MaxConcurrency) {
      throw invalid(`Variant "${v.VariantName}": ProvisionedConcurrency (${sc.ProvisionedConcurrency}) must not exceed MaxConcurrency (${sc.MaxConcurrency}).`);
    }
  }
  const serverless = all.filter((v) => v.ServerlessConfig).length;
  if (serverless > 0 && serverless < all.length) {
    throw invalid('An endpoint configuration cannot mix serverless and instance-based variants.');
  }
  if (shadows.length > 0 && (input.ProductionVariants.length !== 1 || shadows.length !== 1)) {
    throw invalid('An endpoint configuration with ShadowProductionVariants must have exactly one production variant and one shadow variant.');
  }
}

export function checkDeploymentConfig(dc: DeploymentConfig | undefined, variantCount: number): void {
  if (!dc) return;
  if (dc.BlueGreenUpdatePolicy && dc.RollingUpdatePolicy) {
    throw invalid('DeploymentConfig takes either BlueGreenUpdatePolicy or RollingUpdatePolicy, not both.');
  }
  if (dc.RollingUpdatePolicy && variantCount > 1) {
    throw invalid('RollingUpdatePolicy applies only to endpoints with a single production variant.');
  }
  const routing = dc.BlueGreenUpdatePolicy?.TrafficRoutingConfiguration;
  if (routing?.Type === 'CANARY' && !routing.CanarySize) {
    throw invalid('TrafficRoutingConfiguration of Type CANARY needs CanarySize.');
  }
  if (routing?.Type === 'LINEAR' && !routing.LinearStepSize) {
    throw invalid('TrafficRoutingConfiguration of Type LINEAR needs LinearStepSize.');
  }
}
