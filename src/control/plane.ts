// The SageMaker hosting control plane: validates each request, applies AWS's rules and writes the
// desired state. It never starts anything itself; a change to an endpoint is announced through
// `onEndpointChange` and the reconciler (deploy/) does the work and writes the outcome.
import { BerthError, alreadyExists, endpointInProgress, invalid, notFound } from '../errors/index.js';
import type { Store, StoredRecord } from '../store/index.js';
import { arnOf, parseArn } from './arn.js';
import type { RequestContext } from './arn.js';
import { encodeToken, listQuery } from './pagination.js';
import { IN_PROGRESS } from './resources.js';
import type { DeploymentSpec, EndpointConfigDoc, EndpointDoc, EndpointStatus, ModelDoc, VariantTarget } from './resources.js';
import { checkDeploymentConfig, checkEndpointConfig, checkModel } from './rules.js';
import { OPERATIONS } from './shapes.generated.js';
import type {
  AddTagsInput, AddTagsOutput, CreateEndpointConfigInput, CreateEndpointConfigOutput, CreateEndpointInput, CreateEndpointOutput,
  CreateModelInput, CreateModelOutput, DeleteEndpointConfigInput, DeleteEndpointInput, DeleteModelInput, DeleteTagsInput,
  DescribeEndpointConfigInput, DescribeEndpointConfigOutput, DescribeEndpointInput, DescribeEndpointOutput, DescribeModelInput,
  DescribeModelOutput, ListEndpointConfigsInput, ListEndpointConfigsOutput, ListEndpointsInput, ListEndpointsOutput,
  ListModelsInput, ListModelsOutput, ListTagsInput, ListTagsOutput, OperationName, UpdateEndpointInput, UpdateEndpointOutput,
  UpdateEndpointWeightsAndCapacitiesInput, UpdateEndpointWeightsAndCapacitiesOutput,
} from './shapes.generated.js';
import { validateShape } from './validate.js';

export interface ControlPlaneOptions {
  readonly store: Store;
  /** Upper bound on DesiredInstanceCount / InitialInstanceCount per variant. */
  readonly maxInstancesPerVariant: number;
  /** Called after an endpoint's desired state changed (created, updated, deletion requested). */
  readonly onEndpointChange: (endpointName: string) => void;
  readonly now?: () => number;
}

type Handler = (input: unknown, ctx: RequestContext) => Promise<unknown>;

export class ControlPlane {
  private readonly store: Store;
  private readonly maxInstances: number;
  private readonly changed: (name: string) => void;
  private readonly now: () => number;
  private readonly handlers: Readonly<Record<OperationName, Handler>>;

  constructor(options: ControlPlaneOptions) {
    this.store = options.store;
    this.maxInstances = options.maxInstancesPerVariant;
    this.changed = options.onEndpointChange;
    this.now = options.now ?? (() => Date.now() / 1000);
    this.handlers = {
      CreateModel: (i, c) => this.createModel(i as CreateModelInput, c),
      DescribeModel: (i, c) => this.describeModel(i as DescribeModelInput, c),
      ListModels: (i) => this.listModels(i as ListModelsInput),
      DeleteModel: (i, c) => this.deleteModel(i as DeleteModelInput, c),
      CreateEndpointConfig: (i, c) => this.createEndpointConfig(i as CreateEndpointConfigInput, c),
      DescribeEndpointConfig: (i, c) => this.describeEndpointConfig(i as DescribeEndpointConfigInput, c),
      ListEndpointConfigs: (i) => this.listEndpointConfigs(i as ListEndpointConfigsInput),
      DeleteEndpointConfig: (i, c) => this.deleteEndpointConfig(i as DeleteEndpointConfigInput, c),
      CreateEndpoint: (i, c) => this.createEndpoint(i as CreateEndpointInput, c),
      DescribeEndpoint: (i, c) => this.describeEndpoint(i as DescribeEndpointInput, c),
      ListEndpoints: (i) => this.listEndpoints(i as ListEndpointsInput),
      DeleteEndpoint: (i, c) => this.deleteEndpoint(i as DeleteEndpointInput, c),
      UpdateEndpoint: (i, c) => this.updateEndpoint(i as UpdateEndpointInput, c),
      UpdateEndpointWeightsAndCapacities: (i, c) => this.updateWeightsAndCapacities(i as UpdateEndpointWeightsAndCapacitiesInput, c),
      AddTags: (i) => this.addTags(i as AddTagsInput),
      ListTags: (i) => this.listTags(i as ListTagsInput),
      DeleteTags: (i) => this.deleteTags(i as DeleteTagsInput),
    };
  }

  /** Whether berth serves this operation of the SageMaker API. */
  supports(operation: string): operation is OperationName {
    return Object.hasOwn(OPERATIONS, operation);
  }

  /** Runs one operation on a raw JSON input: validates it against the operation's shape, then applies it. */
  async execute(operation: OperationName, rawInput: unknown, ctx: RequestContext): Promise<unknown> {
    const input = validateShape(OPERATIONS[operation].input, rawInput);
    return this.handlers[operation](input, ctx);
  }

  // ---- models -------------------------------------------------------------------------------

  private async createModel(input: CreateModelInput, ctx: RequestContext): Promise<CreateModelOutput> {
    checkModel(input);
    const { Tags, ...doc } = input;
    const arn = arnOf('model', input.ModelName, ctx);
    const t = this.now();
    const ok = await this.store.insert<ModelDoc>({ kind: 'model', name: input.ModelName, arn, createdAt: t, updatedAt: t, doc });
    if (!ok) throw alreadyExists('model', arn);
    if (Tags?.length) await this.store.addTags(arn, Tags);
    return { ModelArn: arn };
  }

  private async describeModel(input: DescribeModelInput, ctx: RequestContext): Promise<DescribeModelOutput> {
    const rec = await this.mustGet<ModelDoc>('model', input.ModelName, ctx);
    return { ...rec.doc, ModelName: rec.name, ModelArn: rec.arn, CreationTime: rec.createdAt };
  }

  private async listModels(input: ListModelsInput): Promise<ListModelsOutput> {
    const q = listQuery(input);
    const page = await this.store.list<ModelDoc>('model', q);
    return {
      Models: page.records.map((r) => ({ ModelName: r.name, ModelArn: r.arn, CreationTime: r.createdAt })),
      ...(page.more ? { NextToken: encodeToken(q.offset + q.limit) } : {}),
    };
  }

  private async deleteModel(input: DeleteModelInput, ctx: RequestContext): Promise<Record<string, never>> {
    // As on SageMaker, deleting a model an endpoint uses is allowed: the endpoint runs on its own copy.
    if (!(await this.store.delete('model', input.ModelName))) throw notFound('model', arnOf('model', input.ModelName, ctx));
    return {};
  }

  // ---- endpoint configurations --------------------------------------------------------------

  private async createEndpointConfig(input: CreateEndpointConfigInput, ctx: RequestContext): Promise<CreateEndpointConfigOutput> {
    checkEndpointConfig(input);
    for (const v of [...input.ProductionVariants, ...(input.ShadowProductionVariants ?? [])]) {
      await this.mustGet('model', v.ModelName as string, ctx);
    }
    const { Tags, ...rest } = input;
    // SageMaker reports the default weight of 1.0 in DescribeEndpointConfig when none was given.
    const withWeights = (vs: CreateEndpointConfigInput['ProductionVariants']) => vs.map((v) => ({ ...v, InitialVariantWeight: v.InitialVariantWeight ?? 1 }));
    const doc: EndpointConfigDoc = {
      ...rest,
      ProductionVariants: withWeights(rest.ProductionVariants),
      ...(rest.ShadowProductionVariants ? { ShadowProductionVariants: withWeights(rest.ShadowProductionVariants) } : {}),
    };
    const arn = arnOf('endpoint-config', input.EndpointConfigName, ctx);
    const t = this.now();
    const ok = await this.store.insert<EndpointConfigDoc>({ kind: 'endpoint-config', name: input.EndpointConfigName, arn, createdAt: t, updatedAt: t, doc });
    if (!ok) throw alreadyExists('endpoint configuration', arn);
    if (Tags?.length) await this.store.addTags(arn, Tags);
    return { EndpointConfigArn: arn };
  }

  private async describeEndpointConfig(input: DescribeEndpointConfigInput, ctx: RequestContext): Promise<DescribeEndpointConfigOutput> {
    const rec = await this.mustGet<EndpointConfigDoc>('endpoint-config', input.EndpointConfigName, ctx);
    return { ...rec.doc, EndpointConfigName: rec.name, EndpointConfigArn: rec.arn, CreationTime: rec.createdAt };
  }

  private async listEndpointConfigs(input: ListEndpointConfigsInput): Promise<ListEndpointConfigsOutput> {
    const q = listQuery(input);
    const page = await this.store.list<EndpointConfigDoc>('endpoint-config', q);
    return {
      EndpointConfigs: page.records.map((r) => ({ EndpointConfigName: r.name, EndpointConfigArn: r.arn, CreationTime: r.createdAt })),
      ...(page.more ? { NextToken: encodeToken(q.offset + q.limit) } : {}),
    };
  }

  private async deleteEndpointConfig(input: DeleteEndpointConfigInput, ctx: RequestContext): Promise<Record<string, never>> {
    // SageMaker does not refuse deleting a config an endpoint uses; the endpoint keeps running.
    if (!(await this.store.delete('endpoint-config', input.EndpointConfigName))) {
      throw notFound('endpoint configuration', arnOf('endpoint-config', input.EndpointConfigName, ctx));
    }
    return {};
  }

  // ---- endpoints ----------------------------------------------------------------------------

  /** Copies the config and every model it names, checking each exists (AWS: `Could not find model`). */
  private async snapshot(configName: string, ctx: RequestContext): Promise<DeploymentSpec> {
    const config = await this.mustGet<EndpointConfigDoc>('endpoint-config', configName, ctx);
    const models: Record<string, ModelDoc> = {};
    for (const v of [...config.doc.ProductionVariants, ...(config.doc.ShadowProductionVariants ?? [])]) {
      const name = v.ModelName as string;
      models[name] = (await this.mustGet<ModelDoc>('model', name, ctx)).doc;
    }
    for (const v of config.doc.ProductionVariants) this.checkCount(v.VariantName, v.InitialInstanceCount ?? 1);
    return { endpointConfigName: config.name, endpointConfig: config.doc, models };
  }

  private checkCount(variant: string, count: number): void {
    if (count > this.maxInstances) {
      throw new BerthError('ResourceLimitExceeded', `Variant "${variant}" asks for ${count} instances; this berth allows at most ${this.maxInstances} per variant (setting maxInstancesPerVariant).`);
    }
  }

  private async createEndpoint(input: CreateEndpointInput, ctx: RequestContext): Promise<CreateEndpointOutput> {
    const arn = arnOf('endpoint', input.EndpointName, ctx);
    if (await this.store.get('endpoint', input.EndpointName)) throw alreadyExists('endpoint', arn);
    const spec = await this.snapshot(input.EndpointConfigName, ctx);
    checkDeploymentConfig(input.DeploymentConfig, spec.endpointConfig.ProductionVariants.length);
    const t = this.now();
    const doc: EndpointDoc = {
      EndpointName: input.EndpointName,
      desired: {
        generation: 1,
        specVersion: 1,
        spec,
        variants: initialTargets(spec),
        deploymentConfig: input.DeploymentConfig,
        requestedAt: t,
      },
      observed: { generation: 0 },
    };
    const ok = await this.store.insert<EndpointDoc>({ kind: 'endpoint', name: input.EndpointName, arn, createdAt: t, updatedAt: t, status: 'Creating', doc });
    if (!ok) throw alreadyExists('endpoint', arn);
    if (input.Tags?.length) await this.store.addTags(arn, input.Tags);
    this.changed(input.EndpointName);
    return { EndpointArn: arn };
  }

  private async describeEndpoint(input: DescribeEndpointInput, ctx: RequestContext): Promise<DescribeEndpointOutput> {
    const rec = await this.mustGet<EndpointDoc>('endpoint', input.EndpointName, ctx);
    return describeEndpointRecord(rec);
  }

  private async listEndpoints(input: ListEndpointsInput): Promise<ListEndpointsOutput> {
    const q = listQuery(input);
    const page = await this.store.list<EndpointDoc>('endpoint', q);
    return {
      Endpoints: page.records.map((r) => ({
        EndpointName: r.name,
        EndpointArn: r.arn,
        CreationTime: r.createdAt,
        LastModifiedTime: r.updatedAt,
        EndpointStatus: r.status as EndpointStatus,
      })),
      ...(page.more ? { NextToken: encodeToken(q.offset + q.limit) } : {}),
    };
  }

  private async deleteEndpoint(input: DeleteEndpointInput, ctx: RequestContext): Promise<Record<string, never>> {
    const arn = arnOf('endpoint', input.EndpointName, ctx);
    let refused = false;
    const rec = await this.store.update<EndpointDoc>('endpoint', input.EndpointName, (cur) => {
      if (IN_PROGRESS.has(cur.status ?? '')) {
        refused = true;
        return undefined;
      }
      return { status: 'Deleting', updatedAt: this.now() };
    });
    if (!rec) throw notFound('endpoint', arn);
    if (refused) throw endpointInProgress(arn);
    this.changed(rec.name);
    return {};
  }

  private async updateEndpoint(input: UpdateEndpointInput, ctx: RequestContext): Promise<UpdateEndpointOutput> {
    const arn = arnOf('endpoint', input.EndpointName, ctx);
    const existing = await this.mustGet<EndpointDoc>('endpoint', input.EndpointName, ctx);
    assertUpdatable(existing, arn);
    const spec = await this.snapshot(input.EndpointConfigName, ctx);
    const deploymentConfig = input.RetainDeploymentConfig ? existing.doc.observed.lastDeploymentConfig : input.DeploymentConfig;
    checkDeploymentConfig(deploymentConfig, spec.endpointConfig.ProductionVariants.length);

    let conflict: BerthError | undefined;
    const rec = await this.store.update<EndpointDoc>('endpoint', input.EndpointName, (cur) => {
      try {
        assertUpdatable(cur, arn);
      } catch (err) {
        conflict = err as BerthError;
        return undefined;
      }
      const variants = input.RetainAllVariantProperties
        ? retainedTargets(spec, cur.doc.desired.variants, new Set((input.ExcludeRetainedVariantProperties ?? []).map((p) => p.VariantPropertyType)))
        : initialTargets(spec);
      const t = this.now();
      return {
        status: 'Updating',
        updatedAt: t,
        doc: {
          ...cur.doc,
          desired: {
            generation: cur.doc.desired.generation + 1,
            specVersion: cur.doc.desired.specVersion + 1,
            spec,
            variants,
            deploymentConfig,
            requestedAt: t,
          },
        },
      };
    });
    if (!rec) throw notFound('endpoint', arn);
    if (conflict) throw conflict;
    this.changed(rec.name);
    return { EndpointArn: rec.arn };
  }

  private async updateWeightsAndCapacities(
    input: UpdateEndpointWeightsAndCapacitiesInput,
    ctx: RequestContext,
  ): Promise<UpdateEndpointWeightsAndCapacitiesOutput> {
    const arn = arnOf('endpoint', input.EndpointName, ctx);
    const seen = new Set<string>();
    for (const d of input.DesiredWeightsAndCapacities) {
      if (seen.has(d.VariantName)) throw invalid(`The variant name "${d.VariantName}" was non-unique within the request.`);
      seen.add(d.VariantName);
      if (d.DesiredWeight === undefined && d.DesiredInstanceCount === undefined && !d.ServerlessUpdateConfig) {
        throw invalid(`Variant "${d.VariantName}": give DesiredWeight, DesiredInstanceCount or both.`);
      }
      if (d.DesiredInstanceCount !== undefined) this.checkCount(d.VariantName, d.DesiredInstanceCount);
    }
    let problem: BerthError | undefined;
    const rec = await this.store.update<EndpointDoc>('endpoint', input.EndpointName, (cur) => {
      try {
        assertUpdatable(cur, arn);
        const known = new Set(cur.doc.desired.variants.map((v) => v.VariantName));
        const unknown = input.DesiredWeightsAndCapacities.filter((d) => !known.has(d.VariantName)).map((d) => d.VariantName);
        if (unknown.length > 0) {
          throw invalid(`The variant name(s) "${unknown.join('", "')}" is/are not present within endpoint configuration "${cur.doc.desired.spec.endpointConfigName}".`);
        }
      } catch (err) {
        problem = err as BerthError;
        return undefined;
      }
      const variants = cur.doc.desired.variants.map((v) => {
        const d = input.DesiredWeightsAndCapacities.find((x) => x.VariantName === v.VariantName);
        return d ? { VariantName: v.VariantName, weight: d.DesiredWeight ?? v.weight, instanceCount: d.DesiredInstanceCount ?? v.instanceCount } : v;
      });
      if (variants.every((v) => v.weight === 0)) {
        problem = invalid('At least one variant must keep a weight greater than 0, or no traffic could be routed.');
        return undefined;
      }
      const t = this.now();
      return {
        status: 'Updating',
        updatedAt: t,
        doc: { ...cur.doc, desired: { ...cur.doc.desired, generation: cur.doc.desired.generation + 1, variants, requestedAt: t } },
      };
    });
    if (!rec) throw notFound('endpoint', arn);
    if (problem) throw problem;
    this.changed(rec.name);
    return { EndpointArn: rec.arn };
  }

  // ---- tags ---------------------------------------------------------------------------------

  private async taggable(arn: string): Promise<StoredRecord> {
    const target = parseArn(arn);
    if (target.kind === undefined) {
      throw invalid(`berth does not store resources of type "${target.type}" (ARN "${arn}"); tags apply to models, endpoint configurations and endpoints.`);
    }
    const rec = await this.store.get(target.kind, target.name);
    const kindName = target.kind === 'endpoint-config' ? 'endpoint configuration' : target.kind;
    if (!rec || rec.arn.toLowerCase() !== arn.toLowerCase()) throw notFound(kindName, arn);
    return rec;
  }

  private async addTags(input: AddTagsInput): Promise<AddTagsOutput> {
    const rec = await this.taggable(input.ResourceArn);
    await this.store.addTags(rec.arn, input.Tags);
    return { Tags: input.Tags };
  }

  private async listTags(input: ListTagsInput): Promise<ListTagsOutput> {
    const rec = await this.taggable(input.ResourceArn);
    const q = listQuery({ NextToken: input.NextToken, MaxResults: input.MaxResults }, 50);
    const page = await this.store.listTags(rec.arn, q.offset, q.limit);
    return { Tags: page.tags, ...(page.more ? { NextToken: encodeToken(q.offset + q.limit) } : {}) };
  }

  private async deleteTags(input: DeleteTagsInput): Promise<Record<string, never>> {
    const rec = await this.taggable(input.ResourceArn);
    await this.store.deleteTags(rec.arn, input.TagKeys);
    return {};
  }

  // ---- helpers ------------------------------------------------------------------------------

  private async mustGet<T>(kind: 'model' | 'endpoint-config' | 'endpoint', name: string, ctx: RequestContext): Promise<StoredRecord<T>> {
    const rec = await this.store.get<T>(kind, name);
    if (!rec) throw notFound(kind === 'endpoint-config' ? 'endpoint configuration' : kind, arnOf(kind, name, ctx));
    return rec;
  }
}

function assertUpdatable(rec: StoredRecord<EndpointDoc>, arn: string): void {
  if (IN_PROGRESS.has(rec.status ?? '')) throw endpointInProgress(arn);
  if (rec.status === 'Failed') {
    throw invalid(`Cannot update failed endpoint "${arn}". Delete it and create it again once the cause in FailureReason is fixed.`);
  }
}

function initialTargets(spec: DeploymentSpec): VariantTarget[] {
  return spec.endpointConfig.ProductionVariants.map((v) => ({
    VariantName: v.VariantName,
    weight: v.InitialVariantWeight ?? 1,
    // A serverless variant runs one instance until serverless scaling manages it.
    instanceCount: v.InitialInstanceCount ?? 1,
  }));
}

/** RetainAllVariantProperties: keep the running weights and counts unless a property is excluded. */
function retainedTargets(spec: DeploymentSpec, current: readonly VariantTarget[], exclude: ReadonlySet<string>): VariantTarget[] {
  return initialTargets(spec).map((t) => {
    const cur = current.find((c) => c.VariantName === t.VariantName);
    if (!cur) return t;
    return {
      VariantName: t.VariantName,
      weight: exclude.has('DesiredWeight') ? t.weight : cur.weight,
      instanceCount: exclude.has('DesiredInstanceCount') ? t.instanceCount : cur.instanceCount,
    };
  });
}

function describeEndpointRecord(rec: StoredRecord<EndpointDoc>): DescribeEndpointOutput {
  const { desired, observed } = rec.doc;
  const status = rec.status as EndpointStatus;
  // The config shown is the one serving; while the first fleet starts it is the requested one.
  const configName = observed.serving?.spec.endpointConfigName ?? desired.spec.endpointConfigName;
  const config = observed.serving?.spec.endpointConfig ?? desired.spec.endpointConfig;
  const capture = config.DataCaptureConfig;
  return {
    EndpointName: rec.name,
    EndpointArn: rec.arn,
    EndpointConfigName: configName,
    ...(observed.variants ? { ProductionVariants: [...observed.variants] } : {}),
    ...(capture
      ? {
          DataCaptureConfig: {
            EnableCapture: capture.EnableCapture ?? true,
            CaptureStatus: capture.EnableCapture === false ? 'Stopped' : 'Started',
            CurrentSamplingPercentage: capture.InitialSamplingPercentage,
            DestinationS3Uri: capture.DestinationS3Uri,
            KmsKeyId: capture.KmsKeyId ?? '',
          },
        }
      : {}),
    EndpointStatus: status,
    ...(observed.failureReason ? { FailureReason: observed.failureReason } : {}),
    CreationTime: rec.createdAt,
    LastModifiedTime: rec.updatedAt,
    ...(observed.lastDeploymentConfig ? { LastDeploymentConfig: observed.lastDeploymentConfig } : {}),
    ...(config.AsyncInferenceConfig ? { AsyncInferenceConfig: config.AsyncInferenceConfig } : {}),
    ...(observed.pending ? { PendingDeploymentSummary: observed.pending } : {}),
    ...(config.ExplainerConfig ? { ExplainerConfig: config.ExplainerConfig } : {}),
    ...(config.MetricsConfig ? { MetricsConfig: config.MetricsConfig } : {}),
  };
}
