// The data plane's protocol-free core: `invoke(request)` picks a variant (TargetVariant, else by
// weight), an instance (least outstanding requests among ready ones), forwards over that instance's
// keep-alive pool, and maps the container's answer to SageMaker's response or error.
import { BerthError } from '../errors/index.js';
import { ContainerCallError } from '../fleet/index.js';
import type { ContainerCallFailure, ContainerHandle, ContainerResponse, Instance } from '../fleet/index.js';
import { ModelLoadError } from '../multimodel/index.js';
import type { ModelHost, ModelLease, MultiModelSpec } from '../multimodel/index.js';
import type { Labels, Metrics, Series } from '../telemetry/index.js';

/**
 * How invocations reach an instance's containers: `single` (its one container), `serial` (an
 * inference pipeline: each answer is the next container's request) or `direct` (the container named
 * by TargetContainerHostname).
 */
export type InvocationMode = 'single' | 'serial' | 'direct';

export interface VariantRoute {
  readonly name: string;
  readonly weight: number;
  readonly mode: InvocationMode;
  /** Every instance the variant has; only `ready` ones receive traffic. */
  readonly instances: readonly Instance[];
  /** Set for a multi-model variant: invocations name a TargetModel under this prefix. */
  readonly multiModel?: MultiModelSpec | undefined;
}

export interface EndpointRoute {
  /** The endpoint's status; traffic flows while InService, Updating or RollingBack. */
  readonly status: string;
  readonly variants: readonly VariantRoute[];
}

export interface InvocationRequest {
  readonly endpointName: string;
  readonly body: Buffer;
  readonly contentType?: string | undefined;
  readonly accept?: string | undefined;
  readonly customAttributes?: string | undefined;
  readonly targetVariant?: string | undefined;
  /** Multi-model endpoints only (X-Amzn-SageMaker-Target-Model). */
  readonly targetModel?: string | undefined;
  /** Direct-mode multi-container endpoints only (X-Amzn-SageMaker-Target-Container-Hostname). */
  readonly targetContainerHostname?: string | undefined;
  readonly inferenceId?: string | undefined;
  /** Region of the caller's SigV4 scope, for the LogStreamArn in errors. */
  readonly region: string;
  /** The request's id, which some of SageMaker's messages quote. */
  readonly requestId?: string | undefined;
}

export interface InvocationResponse {
  readonly body: Buffer;
  readonly contentType?: string | undefined;
  readonly customAttributes?: string | undefined;
  readonly invokedVariant: string;
}

export interface RouterOptions {
  readonly accountId: string;
  /** Largest answer one container of a pipeline may pass to the next (SageMaker: 5 MB). */
  readonly maxPipelinePayloadBytes?: number;
  /** Where Invocations, ModelLatency, … are counted. */
  readonly metrics?: Metrics;
  readonly invocationTimeoutMs: number;
  /** Largest response body accepted from a container (the same 6 MB SageMaker allows). */
  readonly maxResponseBytes: number;
  readonly random?: () => number;
  /** Multi-model placement and loading; without it multi-model variants cannot be invoked. */
  readonly models?: ModelHost | undefined;
}

/** Where one call goes inside an instance: a container and the path to post to. */
interface CallTarget {
  readonly container: ContainerHandle;
  readonly path: string;
}

const SERVING = new Set(['InService', 'Updating', 'RollingBack']);

/**
 * How a call that another path delivered to a container ended, other than in a 2xx answer (the native
 * invocation front, src/wire/native): the container's answer, or the container client's failure.
 */
export type DeliveredOutcome =
  | { readonly kind: 'answer'; readonly status: number; readonly body: Buffer }
  | { readonly kind: Exclude<ContainerCallFailure, 'refused'>; readonly detail: string; readonly status?: number | undefined };

export class Router {
  private readonly routes = new Map<string, EndpointRoute>();
  private readonly listeners: ((endpointName: string) => void)[] = [];
  private readonly watched = new WeakSet<Instance>();
  private readonly series = new WeakMap<VariantRoute, InvocationSeries>();
  private readonly random: () => number;

  constructor(private readonly options: RouterOptions) {
    this.random = options.random ?? Math.random;
  }

  /** Replaces what the router knows of an endpoint; `undefined` forgets it. Names are case-sensitive. */
  publish(endpointName: string, route: EndpointRoute | undefined): void {
    if (route) {
      this.routes.set(endpointName, route);
    } else {
      this.routes.delete(endpointName);
      this.options.models?.forget(endpointName);
    }
    if (this.listeners.length === 0) return;
    for (const v of route?.variants ?? []) {
      for (const i of v.instances) {
        if (this.watched.has(i)) continue;
        this.watched.add(i);
        i.on('state', () => this.changed(endpointName));
      }
    }
    this.changed(endpointName);
  }

  /**
   * `listener` is told the name of an endpoint whose routing changed: a new route, or a state change
   * of one of its instances (the router itself reads instance states at every call; a copy of the
   * routes, such as the native invocation front's, must follow them).
   */
  onChange(listener: (endpointName: string) => void): void {
    this.listeners.push(listener);
  }

  private changed(endpointName: string): void {
    for (const l of this.listeners) l(endpointName);
  }

  /**
   * The ModelError for a call to instance `instanceId` of variant `variantName` that another path
   * delivered (the container saw the request, so it is not sent again) and that did not end in a
   * 2xx answer; counted as the router counts its own calls' failures.
   */
  delivered(req: InvocationRequest, variantName: string, instanceId: string, outcome: DeliveredOutcome): BerthError {
    const variant = this.routes.get(req.endpointName)?.variants.find((v) => v.name === variantName);
    const container = variant?.instances.find((i) => i.id === instanceId)?.containers[0]?.name ?? 'primary';
    const err = outcome.kind === 'answer'
      ? this.modelError(outcome.status, outcome.body.toString('utf8'), container, instanceId, variantName, req)
      : this.callError(new ContainerCallError(outcome.kind, outcome.detail, outcome.status), container, instanceId, variantName, req);
    this.countFailure(err, { EndpointName: req.endpointName, VariantName: variantName });
    return err;
  }

  route(endpointName: string): EndpointRoute | undefined {
    return this.routes.get(endpointName);
  }

  /** The endpoints that have a route. */
  routeNames(): string[] {
    return [...this.routes.keys()];
  }

  /**
   * Successful calls another path made to variant `variantName` (the native invocation front adds
   * its own in batches): the same series the router's own calls update.
   */
  recordDelivered(endpointName: string, variantName: string, invocations: number, modelSumUs: number, modelCount: number, overheadSumUs: number, overheadCount: number): void {
    const metrics = this.options.metrics;
    if (!metrics) return;
    const labels = { EndpointName: endpointName, VariantName: variantName };
    metrics.series('Invocations', labels).add(invocations);
    const model = metrics.series('ModelLatency', labels);
    model.sum += modelSumUs;
    model.count += modelCount;
    const overhead = metrics.series('OverheadLatency', labels);
    overhead.sum += overheadSumUs;
    overhead.count += overheadCount;
  }

  async invoke(req: InvocationRequest): Promise<InvocationResponse> {
    const route = this.routes.get(req.endpointName);
    const account = this.options.accountId;
    if (!route) throw new BerthError('ValidationError', `Endpoint ${req.endpointName} of account ${account} not found.`);
    if (!SERVING.has(route.status)) {
      throw new BerthError('ValidationError', notServingMessage(req.endpointName, account, route.status));
    }
    const variant = this.pickVariant(route, req);
    if (variant.multiModel) return this.invokeMultiModel(variant, variant.multiModel, req);
    if (req.targetModel !== undefined) {
      throw new BerthError('ValidationError', `Endpoint ${req.endpointName} is not a multi-model endpoint and does not support target model header.`);
    }
    if (variant.mode !== 'direct' && req.targetContainerHostname !== undefined) {
      throw new BerthError('ValidationError', `Endpoint ${req.endpointName} is not a multi-container endpoint in Direct mode (InferenceExecutionConfig Mode Direct) and does not support the target container hostname header.`);
    }
    if (variant.mode === 'direct') {
      const names = variant.instances[0]?.containers.map((c) => c.name) ?? [];
      if (req.targetContainerHostname === undefined) {
        throw new BerthError('ValidationError', `Endpoint ${req.endpointName} invokes its containers directly (InferenceExecutionConfig Mode Direct): set TargetContainerHostname to one of: ${names.join(', ')}.`);
      }
      if (names.length > 0 && !names.includes(req.targetContainerHostname)) {
        throw new BerthError('ValidationError', `The container hostname "${req.targetContainerHostname}" is not present on endpoint ${req.endpointName}; its containers are: ${names.join(', ')}.`);
      }
    }
    let tried: Set<Instance> | undefined; // made only for a retry: most calls are delivered at once
    for (;;) {
      const instance = pickInstance(variant, tried, this.random);
      if (!instance) {
        throw new BerthError('ServiceUnavailable', `No instance of variant ${variant.name} of endpoint ${req.endpointName} is ready to serve; instances are being replaced. Retry shortly.`);
      }
      try {
        return await this.forward(instance, variant, req);
      } catch (err) {
        if (!(err instanceof NotDelivered)) throw err;
        (tried ??= new Set()).add(instance);
      }
    }
  }

  /**
   * A multi-model variant: the model host picks an instance that has TargetModel loaded (loading it
   * first if none has), and the call goes to the container's /models/{name}/invoke.
   */
  private async invokeMultiModel(variant: VariantRoute, spec: MultiModelSpec, req: InvocationRequest): Promise<InvocationResponse> {
    if (req.targetModel === undefined) {
      throw new BerthError('ValidationError', `Request ${req.requestId ?? ''} is missing a target model header. Endpoint ${req.endpointName} is a multi-model endpoint: set TargetModel to the model's path under its model data prefix (for example model-a.tar.gz).`);
    }
    const models = this.options.models;
    if (!models) throw new BerthError('InternalFailure', 'This berth has no multi-model host.');
    // A model the container lost (it restarted) or an instance that went away is retried once
    // elsewhere: the call never reached a model, so sending it again is safe.
    for (let attempt = 0; ; attempt++) {
      let lease: ModelLease;
      try {
        const wanted = { endpointName: req.endpointName, variantName: variant.name, spec, instances: variant.instances, targetModel: req.targetModel };
        lease = models.tryAcquire(wanted) ?? (await models.acquire(wanted));
      } catch (err) {
        if (err instanceof ModelLoadError) {
          const failed = this.modelError(err.status, err.text, err.container, err.instance.id, variant.name, req);
          this.countFailure(failed, { EndpointName: req.endpointName, VariantName: variant.name });
          throw failed;
        }
        throw err;
      }
      try {
        return await this.forward(lease.instance, variant, req, { container: lease.container, path: `/models/${encodeURIComponent(lease.name)}/invoke` });
      } catch (err) {
        const notLoaded = err instanceof BerthError && err.members['OriginalStatusCode'] === 404 && String(err.members['OriginalMessage']).includes('ModelNotFoundException');
        if ((err instanceof NotDelivered || notLoaded) && attempt < 2) {
          lease.lost();
          continue;
        }
        if (err instanceof NotDelivered) throw new BerthError('ServiceUnavailable', `The instance holding model ${req.targetModel} is being replaced. Retry shortly.`);
        throw err;
      } finally {
        lease.release();
      }
    }
  }

  private pickVariant(route: EndpointRoute, req: InvocationRequest): VariantRoute {
    if (req.targetVariant !== undefined) {
      const v = route.variants.find((x) => x.name === req.targetVariant);
      if (!v) {
        const names = route.variants.map((x) => x.name).join(', ');
        throw new BerthError('ValidationError', `Variant ${req.targetVariant} does not exist on endpoint ${req.endpointName}; its variants are: ${names}.`);
      }
      return v;
    }
    // One variant takes all the traffic there is (the arrays below are garbage made on every call).
    if (route.variants.length === 1) return route.variants[0] as VariantRoute;
    // Weighted choice among variants that can take traffic; weight 0 means "only when targeted".
    const live = route.variants.filter((v) => v.weight > 0 && v.instances.some((i) => i.state === 'ready'));
    const pool = live.length > 0 ? live : route.variants.filter((v) => v.weight > 0);
    const total = pool.reduce((s, v) => s + v.weight, 0);
    let r = this.random() * total;
    for (const v of pool) {
      r -= v.weight;
      if (r < 0) return v;
    }
    const last = pool[pool.length - 1] ?? route.variants[0];
    if (!last) throw new BerthError('ServiceUnavailable', `Endpoint ${req.endpointName} has no variants ready to serve.`);
    return last;
  }

  private async forward(instance: Instance, variant: VariantRoute, req: InvocationRequest, target?: CallTarget): Promise<InvocationResponse> {
    const deadline = Date.now() + this.options.invocationTimeoutMs;
    const started = performance.now();
    const timing = { modelMs: 0 };
    instance.outstanding += 1;
    try {
      let result: InvocationResponse;
      if (variant.mode === 'serial') {
        result = await this.pipeline(instance, variant, req, deadline, timing);
      } else {
        const call = target ?? {
          container: variant.mode === 'direct'
            ? (instance.containers.find((c) => c.name === req.targetContainerHostname) as ContainerHandle)
            : (instance.containers[0] as ContainerHandle),
          path: '/invocations',
        };
        const out = await this.call(call, req.body, req.contentType, req.accept, req, deadline, instance, variant, true, timing);
        result = { body: out.body, contentType: out.contentType, customAttributes: out.customAttributes, invokedVariant: variant.name };
      }
      const series = this.seriesFor(variant, req);
      if (series) {
        const modelUs = Math.round(timing.modelMs * 1000);
        series.invocations.add();
        series.modelLatency.record(modelUs);
        series.overheadLatency.record(Math.max(0, Math.round((performance.now() - started) * 1000) - modelUs));
      }
      return result;
    } catch (err) {
      if (!(err instanceof NotDelivered)) this.countFailure(err, labelsFor(variant, req));
      throw err;
    } finally {
      instance.outstanding -= 1;
    }
  }

  /**
   * The series a successful invocation updates, looked up once per published variant route rather
   * than per call (Direct mode's per-container series are looked up each time).
   */
  private seriesFor(variant: VariantRoute, req: InvocationRequest): InvocationSeries | undefined {
    const metrics = this.options.metrics;
    if (!metrics) return undefined;
    const direct = variant.mode === 'direct';
    let series = direct ? undefined : this.series.get(variant);
    if (series?.endpointName !== req.endpointName) {
      const labels = labelsFor(variant, req);
      series = {
        endpointName: req.endpointName,
        invocations: metrics.series('Invocations', labels),
        modelLatency: metrics.series('ModelLatency', labels),
        overheadLatency: metrics.series('OverheadLatency', labels),
      };
      if (!direct) this.series.set(variant, series);
    }
    return series;
  }

  private countFailure(err: unknown, labels: Labels): void {
    const metrics = this.options.metrics;
    if (!metrics) return;
    metrics.increment('Invocations', labels);
    const status = err instanceof BerthError ? Number(err.members['OriginalStatusCode'] ?? err.status) : 500;
    metrics.increment(status >= 400 && status < 500 ? 'Invocation4XXErrors' : 'Invocation5XXErrors', labels);
  }

  /**
   * An inference pipeline: the client's Content-Type reaches the first container, each answer's
   * Content-Type becomes the next request's, the client's Accept reaches only the last container.
   */
  private async pipeline(instance: Instance, variant: VariantRoute, req: InvocationRequest, deadline: number, timing: { modelMs: number }): Promise<InvocationResponse> {
    let body = req.body;
    let contentType = req.contentType;
    let customAttributes: string | undefined;
    const limit = this.options.maxPipelinePayloadBytes ?? 5 * 1024 * 1024;
    const last = instance.containers.length - 1;
    for (const [i, container] of instance.containers.entries()) {
      const out = await this.call({ container, path: '/invocations' }, body, contentType, i === last ? req.accept : undefined, req, deadline, instance, variant, i === 0, timing);
      if (i < last && out.body.length > limit) {
        throw this.modelError(500, `the answer of container ${container.name} is ${out.body.length} bytes, more than the ${limit} bytes one container of an inference pipeline may pass to the next`, container.name, instance.id, variant.name, req);
      }
      body = out.body;
      contentType = out.contentType;
      customAttributes = out.customAttributes ?? customAttributes;
    }
    return { body, contentType, customAttributes, invokedVariant: variant.name };
  }

  /** One request to one container; a 4xx/5xx answer or a transport failure becomes ModelError. */
  private async call(
    { container, path }: CallTarget, body: Buffer, contentType: string | undefined, accept: string | undefined,
    req: InvocationRequest, deadline: number, instance: Instance, variant: VariantRoute, retryable: boolean, timing: { modelMs: number },
  ): Promise<{ body: Buffer; contentType?: string | undefined; customAttributes?: string | undefined }> {
    // Only what the caller sent: a missing Content-Type means something to some containers
    // (XGBoost reads libsvm), so none is invented here.
    const headers: Record<string, string> = {};
    if (contentType !== undefined) headers['content-type'] = contentType;
    if (accept !== undefined) headers['accept'] = accept;
    if (req.customAttributes !== undefined) headers['x-amzn-sagemaker-custom-attributes'] = req.customAttributes;
    if (req.inferenceId !== undefined) headers['x-amzn-sagemaker-inference-id'] = req.inferenceId;
    // Multi-model containers receive TargetModel "for logging" (the model is named by the path).
    if (req.targetModel !== undefined) headers['x-amzn-sagemaker-target-model'] = req.targetModel;
    const sent = performance.now();
    let res: ContainerResponse;
    try {
      res = await container.client.request({
        method: 'POST', path, headers, body, timeoutMs: Math.max(1, deadline - Date.now()), maxResponseBytes: this.options.maxResponseBytes,
      });
    } catch (err) {
      timing.modelMs += performance.now() - sent;
      if (retryable && err instanceof ContainerCallError && err.kind === 'refused') throw new NotDelivered();
      throw this.callError(err, container.name, instance.id, variant.name, req);
    }
    timing.modelMs += performance.now() - sent;
    if (res.status < 200 || res.status >= 300) {
      throw this.modelError(res.status, res.body.toString('utf8'), container.name, instance.id, variant.name, req);
    }
    return { body: res.body, contentType: res.headers['content-type'], customAttributes: res.headers['x-amzn-sagemaker-custom-attributes'] };
  }

  private callError(err: unknown, container: string, instance: string, variant: string, req: InvocationRequest): BerthError {
    if (!(err instanceof ContainerCallError)) throw err;
    switch (err.kind) {
      case 'timeout':
        return this.modelError(0,
          `Your invocation timed out while waiting for a response from container ${container}. Review the latency metrics for each container in Amazon CloudWatch, resolve the issue, and try again.`,
          container, instance, variant, req);
      case 'too-large':
        return this.modelError(500, `the response body is larger than ${this.options.maxResponseBytes} bytes`, container, instance, variant, req, 'and sent a response that is too large');
      case 'malformed':
        return this.modelError(err.status ?? 0, `The container ${container} answered with something that is not HTTP/1.1 (${err.message}).`, container, instance, variant, req);
      case 'refused':
      case 'closed':
        if (err.status !== undefined) return this.modelError(err.status, '', container, instance, variant, req, 'and could not load the entire response body');
        return this.modelError(0, `The connection to container ${container} closed before it answered (${err.message}); the container may have crashed.`, container, instance, variant, req);
    }
  }

  private modelError(
    status: number, text: string, container: string, instance: string, variant: string, req: InvocationRequest, unreadable?: string,
  ): BerthError {
    const kind = status >= 400 && status < 500 ? 'client' : 'server';
    const logGroup = `/aws/sagemaker/Endpoints/${req.endpointName}`;
    const logStreamArn = `arn:aws:logs:${req.region}:${this.options.accountId}:log-group:${logGroup}:log-stream:${variant}/${instance}`;
    const see = `See the instance logs (berth logs ${req.endpointName}) for more information.`;
    const message = unreadable
      ? `Received ${kind} error (${status}) from ${container} ${unreadable}. ${see}`
      : `Received ${kind} error (${status}) from ${container} with message "${text}". ${see}`;
    return new BerthError('ModelError', message, { OriginalStatusCode: status, OriginalMessage: text, LogStreamArn: logStreamArn });
  }
}

class NotDelivered extends Error {}

interface InvocationSeries {
  readonly endpointName: string;
  readonly invocations: Series;
  readonly modelLatency: Series;
  readonly overheadLatency: Series;
}

/** SageMaker's dimensions; in Direct mode each container also has its own series. */
function labelsFor(variant: VariantRoute, req: InvocationRequest): Labels {
  if (variant.mode === 'direct' && req.targetContainerHostname !== undefined) {
    return { EndpointName: req.endpointName, VariantName: variant.name, ContainerName: req.targetContainerHostname };
  }
  return { EndpointName: req.endpointName, VariantName: variant.name };
}

function pickInstance(variant: VariantRoute, exclude: ReadonlySet<Instance> | undefined, random: () => number): Instance | undefined {
  let best: Instance | undefined;
  let ties = 0;
  for (const i of variant.instances) {
    if (i.state !== 'ready' || exclude?.has(i)) continue;
    if (!best || i.outstanding < best.outstanding) {
      best = i;
      ties = 1;
    } else if (i.outstanding === best.outstanding) {
      // Reservoir choice among equals spreads load when all are idle.
      ties += 1;
      if (random() * ties < 1) best = i;
    }
  }
  return best;
}

function notServingMessage(name: string, account: string, status: string): string {
  switch (status) {
    case 'Creating':
      return `Endpoint ${name} of account ${account} is not in service yet (status Creating); wait until DescribeEndpoint reports InService.`;
    case 'Failed':
      return `Endpoint ${name} of account ${account} is not in service (status Failed); DescribeEndpoint's FailureReason says why.`;
    case 'Deleting':
      return `Endpoint ${name} of account ${account} is being deleted.`;
    default:
      return `Endpoint ${name} of account ${account} is not in service (status ${status}).`;
  }
}
