// Multi-model hosting (container-contracts.md §3): which instance serves a TargetModel, getting it
// there (download once into the shared cache, load through the container's POST /models), and
// keeping each instance inside its memory budget and each variant inside its disk budget by
// unloading the least recently used models nobody is using.
//
// Lifecycle of a model on one instance: `loading` (downloading, making room, POST /models) →
// `loaded` (serving; `inUse` counts leases) → gone (unloaded, or lost with its instance). Loads on
// one instance run one at a time, so the container's memory growth during a load is that model's.
import { createHash } from 'node:crypto';
import type { ArtifactCache, ArtifactIdentity } from '../artifacts/index.js';
import { ArtifactError } from '../artifacts/index.js';
import { BerthError } from '../errors/index.js';
import type { ContainerHandle, ContainerRequest, Instance } from '../fleet/index.js';
import type { Labels, Logger, Metrics } from '../telemetry/index.js';
import { instanceMemoryBytes } from './budget.js';
import { processTreeRss } from './memory.js';
import { rendezvous } from './placement.js';

/** What CreateModel said about a multi-model container. */
export interface MultiModelSpec {
  /** ModelDataUrl: the prefix TargetModel is relative to. */
  readonly prefix: string;
  /** MultiModelConfig.ModelCacheSetting: `Disabled` unloads and deletes a model after each call. */
  readonly cacheEnabled: boolean;
  /** Sizes the memory budget unless berth's configuration sets one. */
  readonly instanceType?: string | undefined;
}

export interface ModelHostSettings {
  readonly memoryBudgetBytes?: number | undefined;
  readonly memoryFraction: number;
  readonly diskBudgetBytes: number;
  readonly loadWaitMs: number;
  readonly loadTimeoutMs: number;
  readonly revalidateMs: number;
  readonly replicaOutstanding: number;
}

export interface ModelHostOptions {
  readonly artifacts: ArtifactCache;
  readonly settings: ModelHostSettings;
  readonly metrics?: Metrics | undefined;
  readonly logger?: Logger | undefined;
}

export interface AcquireRequest {
  readonly endpointName: string;
  readonly variantName: string;
  readonly spec: MultiModelSpec;
  readonly instances: readonly Instance[];
  readonly targetModel: string;
}

/** A model loaded on an instance, held for one invocation; `release` once it is answered. */
export interface ModelLease {
  readonly instance: Instance;
  readonly container: ContainerHandle;
  /** The model's name inside the container (an id berth chose; TargetModel is sent as a header). */
  readonly name: string;
  /** The container no longer has the model (it restarted): forget it, so the next call loads it. */
  lost(): void;
  release(): void;
}

/** The container refused to load a model; the router reports it as ModelError. */
export class ModelLoadError extends Error {
  override readonly name = 'ModelLoadError';

  constructor(readonly status: number, readonly text: string, readonly instance: Instance, readonly container: string) {
    super(text);
  }
}

interface HostedModel {
  readonly name: string;
  readonly target: string;
  readonly version: string;
  state: 'loading' | 'loaded' | 'unloading';
  ready: Promise<void>;
  dir?: string;
  memoryBytes: number;
  /** Order of last use (a counter, so ties never blur LRU order) and its wall time. */
  lastUsed: number;
  lastUsedAt: number;
  inUse: number;
  /** A newer version of the artifact exists: unload as soon as nobody uses this one. */
  stale: boolean;
}

interface InstanceModels {
  readonly instance: Instance;
  readonly models: Map<string, HostedModel>;
  /** Loads and unloads on this instance, one at a time. */
  chain: Promise<unknown>;
  /** Woken when a lease is released (a load waiting for room). */
  released: (() => void)[];
}

interface CatalogEntry extends ArtifactIdentity {
  readonly url: string;
  readonly checkedAt: number;
  /** The container's name for this version of the model. */
  readonly name: string;
  /** Metric labels, made once per check rather than per call: SageMaker's and per model. */
  readonly labels: Labels;
  readonly modelLabels: Labels;
}

interface VariantModels {
  readonly endpointName: string;
  readonly variantName: string;
  spec: MultiModelSpec;
  budgetBytes: number;
  readonly catalog: Map<string, CatalogEntry>;
  readonly checking: Map<string, Promise<CatalogEntry>>;
  readonly instances: Map<string, InstanceModels>;
  /** Memory last measured per model name, the estimate for its next load. */
  readonly costs: Map<string, number>;
  /** Unpacked artifacts on disk, by folder. */
  readonly disk: Map<string, { bytes: number; lastUsed: number }>;
  /** The instance list last reconciled with `instances`. */
  seen?: readonly Instance[];
}

/** One model's view for `GET /_berth/endpoints/{name}/models`. */
export interface HostedModelView {
  readonly targetModel: string;
  readonly version: string;
  readonly state: string;
  readonly memoryBytes: number;
  readonly inUse: number;
  readonly lastUsedAt: string;
}

export interface InstanceModelsView {
  readonly variantName: string;
  readonly instanceId: string;
  readonly memoryBudgetBytes: number;
  readonly memoryUsedBytes: number;
  /** Least recently used first: the order eviction takes. */
  readonly models: HostedModelView[];
}

/** The multi-model API's answers are short JSON; this only bounds a misbehaving container. */
const MANAGEMENT_ANSWER_LIMIT = 16 * 1024 * 1024;
const NOT_FOUND_HINT = 'Please ensure that there is an object located at the URL and that the role passed to CreateModel has permissions to download the model.';

export class ModelHost {
  private readonly variants = new Map<string, VariantModels>();
  private tick = 0;

  constructor(private readonly o: ModelHostOptions) {}

  /**
   * The warm path, without a promise: a model checked recently and loaded somewhere is leased at
   * once. Anything else (a check due, a load, an error) returns undefined for `acquire`.
   */
  tryAcquire(r: AcquireRequest): ModelLease | undefined {
    const v = this.variants.get(`${r.endpointName}\0${r.variantName}`);
    if (v?.spec !== r.spec) return undefined;
    const entry = v.catalog.get(r.targetModel);
    if (!entry || Date.now() - entry.checkedAt >= this.o.settings.revalidateMs) return undefined;
    return this.leaseLoaded(v, this.sync(v, r.instances), entry, r.targetModel);
  }

  private leaseLoaded(v: VariantModels, ready: InstanceModels[], entry: CatalogEntry, target: string): ModelLease | undefined {
    const holder = leastBusyHolder(ready, entry.name);
    if (!holder) return undefined;
    this.observe('ModelCacheHit', entry.labels, entry.modelLabels, 1);
    const m = holder.models.get(entry.name) as HostedModel;
    if (m.inUse >= this.o.settings.replicaOutstanding) this.addReplica(v, ready, entry, entry.name, target);
    return this.lease(v, holder, m);
  }

  async acquire(r: AcquireRequest): Promise<ModelLease> {
    if (r.targetModel.split('/').some((part) => part === '..' || part === '.') || r.targetModel.startsWith('/')) {
      throw new BerthError('ValidationError', `TargetModel "${r.targetModel}" must be a path relative to the endpoint's model data prefix, without "." or ".." parts or a leading "/".`);
    }
    const v = this.variant(r);
    const entry = await this.lookup(v, r.targetModel);
    const name = entry.name;
    const { labels, modelLabels } = entry;
    const ready = this.sync(v, r.instances);
    if (ready.length === 0) {
      throw new BerthError('ServiceUnavailable', `No instance of variant ${r.variantName} of endpoint ${r.endpointName} is ready to serve; instances are being replaced. Retry shortly.`);
    }
    const leased = this.leaseLoaded(v, ready, entry, r.targetModel);
    if (leased) return leased;
    this.observe('ModelCacheHit', labels, modelLabels, 0);
    const started = process.hrtime.bigint();
    let im = ready.find((x) => x.models.get(name)?.state === 'loading');
    if (!im) {
      const [first] = rendezvous(ready.map((x) => ({ id: x.instance.id, x })), r.targetModel);
      const chosen: InstanceModels = first?.x ?? (ready[0] as InstanceModels);
      this.startLoad(v, chosen, entry, name, r.targetModel);
      im = chosen;
    }
    const m = im.models.get(name) as HostedModel;
    // A waiting call holds the model like a running one, so a load elsewhere cannot evict it the
    // moment it arrives.
    m.inUse += 1;
    try {
      await withinMs(m.ready, this.o.settings.loadWaitMs);
    } catch (err) {
      m.inUse -= 1;
      if (err instanceof StillWaiting) {
        throw new BerthError('ModelNotReadyException', `Model ${r.targetModel} is still being downloaded and loaded on endpoint ${r.endpointName}; loading continues, so retry the request.`);
      }
      throw err;
    }
    this.observe('ModelLoadingWaitTime', labels, modelLabels, Number((process.hrtime.bigint() - started) / 1000n));
    m.inUse -= 1;
    if (m.state !== 'loaded') {
      throw new BerthError('ServiceUnavailable', `Model ${r.targetModel} was unloaded from its instance while the call waited for it; retry the request.`);
    }
    return this.lease(v, im, m);
  }

  /** Every instance's loaded models, for operators and tests. */
  describe(endpointName: string): InstanceModelsView[] {
    const out: InstanceModelsView[] = [];
    for (const v of this.variants.values()) {
      if (v.endpointName !== endpointName) continue;
      for (const im of v.instances.values()) {
        const models = [...im.models.values()].sort((a, b) => a.lastUsed - b.lastUsed);
        out.push({
          variantName: v.variantName,
          instanceId: im.instance.id,
          memoryBudgetBytes: v.budgetBytes,
          memoryUsedBytes: usedBytes(im),
          models: models.map((m) => ({
            targetModel: m.target, version: m.version, state: m.state, memoryBytes: m.memoryBytes, inUse: m.inUse, lastUsedAt: new Date(m.lastUsedAt).toISOString(),
          })),
        });
      }
    }
    return out;
  }

  /** Forgets an endpoint (deleted); its instances, and the models in them, are stopped by the fleet. */
  forget(endpointName: string): void {
    for (const [key, v] of this.variants) if (v.endpointName === endpointName) this.variants.delete(key);
  }

  // ---- catalog -------------------------------------------------------------------------------

  /**
   * The artifact's identity, checked again once `revalidateMs` has passed, so an object replaced
   * under the same key is reloaded on its next use and a new key is servable the moment it exists.
   */
  private lookup(v: VariantModels, target: string): Promise<CatalogEntry> {
    const known = v.catalog.get(target);
    if (known && Date.now() - known.checkedAt < this.o.settings.revalidateMs) return Promise.resolve(known);
    const running = v.checking.get(target);
    if (running) return running;
    const url = modelUrl(v.spec.prefix, target);
    const job = (async () => {
      let identity: ArtifactIdentity;
      try {
        identity = await this.o.artifacts.identify(url, 30_000);
      } catch (err) {
        if (err instanceof ArtifactError && err.missing) {
          v.catalog.delete(target);
          throw new BerthError('ValidationError', `Failed to download model data(${describeUrl(url)}). ${NOT_FOUND_HINT}`);
        }
        throw new BerthError('InternalDependencyException', `Could not check model ${target} at ${url}: ${(err as Error).message}.`);
      }
      const labels = { EndpointName: v.endpointName, VariantName: v.variantName };
      const entry: CatalogEntry = {
        url, version: identity.version, size: identity.size, checkedAt: Date.now(), name: modelName(url, identity.version),
        labels, modelLabels: { ...labels, TargetModel: target },
      };
      if (known && known.version !== entry.version) this.retireOldVersions(v, target, entry.name);
      v.catalog.set(target, entry);
      return entry;
    })().finally(() => v.checking.delete(target));
    v.checking.set(target, job);
    return job;
  }

  private retireOldVersions(v: VariantModels, target: string, current: string): void {
    for (const im of v.instances.values()) {
      for (const m of im.models.values()) {
        if (m.target !== target || m.name === current) continue;
        m.stale = true;
        if (m.state === 'loaded' && m.inUse === 0) void this.queue(im, () => this.unload(v, im, m));
      }
    }
  }

  // ---- placement -----------------------------------------------------------------------------

  private variant(r: AcquireRequest): VariantModels {
    const key = `${r.endpointName}\0${r.variantName}`;
    let v = this.variants.get(key);
    if (v?.spec === r.spec) return v;
    const budget = this.o.settings.memoryBudgetBytes ?? Math.floor(instanceMemoryBytes(r.spec.instanceType) * this.o.settings.memoryFraction);
    if (!v || v.spec.prefix !== r.spec.prefix) {
      v = {
        endpointName: r.endpointName, variantName: r.variantName, spec: r.spec, budgetBytes: budget,
        catalog: new Map(), checking: new Map(), instances: new Map(), costs: new Map(), disk: new Map(),
      };
      this.variants.set(key, v);
    }
    // An update may change the instance type or the cache setting; what is loaded stays.
    v.spec = r.spec;
    v.budgetBytes = budget;
    return v;
  }

  /** Drops the state of instances that are gone; returns the ready ones. */
  private sync(v: VariantModels, instances: readonly Instance[]): InstanceModels[] {
    let changed = false;
    const ready: InstanceModels[] = [];
    for (const i of instances) {
      if (i.state !== 'ready') {
        if ((i.state === 'failed' || i.state === 'stopped') && v.instances.delete(i.id)) changed = true;
        continue;
      }
      let im = v.instances.get(i.id);
      if (!im) {
        im = { instance: i, models: new Map(), chain: Promise.resolve(), released: [] };
        v.instances.set(i.id, im);
      }
      ready.push(im);
    }
    // Instances that left the route: looked for only when the router was given a new list.
    if (instances !== v.seen) {
      v.seen = instances;
      const live = new Set(instances.map((i) => i.id));
      for (const id of v.instances.keys()) {
        if (!live.has(id)) {
          v.instances.delete(id);
          changed = true;
        }
      }
    }
    if (changed) this.recordLoaded(v);
    return ready;
  }

  /** A busy model gets one more copy, on the next instance in its hash order that lacks one. */
  private addReplica(v: VariantModels, ready: InstanceModels[], entry: CatalogEntry, name: string, target: string): void {
    // Checked on every busy call: cheap tests first, hashing only when another copy can be made.
    if (ready.every((im) => im.models.has(name))) return;
    if (ready.some((im) => im.models.get(name)?.state === 'loading')) return;
    const next = rendezvous(ready.map((x) => ({ id: x.instance.id, x })), target).map((s) => s.x).find((im) => !im.models.has(name));
    if (!next) return;
    this.o.logger?.info({ endpoint: v.endpointName, variant: v.variantName, model: target, instance: next.instance.id }, 'loading another copy of a busy model');
    this.startLoad(v, next, entry, name, target);
    (next.models.get(name) as HostedModel).ready.catch(() => undefined);
  }

  private lease(v: VariantModels, im: InstanceModels, m: HostedModel): ModelLease {
    m.inUse += 1;
    this.touch(m);
    let done = false;
    return {
      instance: im.instance,
      container: im.instance.containers[0] as ContainerHandle,
      name: m.name,
      lost: () => {
        if (im.models.get(m.name) === m) im.models.delete(m.name);
        this.recordLoaded(v);
      },
      release: () => {
        if (done) return;
        done = true;
        m.inUse -= 1;
        this.touch(m);
        for (const wake of im.released.splice(0)) wake();
        if (m.inUse === 0 && m.state === 'loaded' && (m.stale || !v.spec.cacheEnabled)) void this.queue(im, () => this.unload(v, im, m));
      },
    };
  }

  private touch(m: HostedModel): void {
    m.lastUsed = ++this.tick;
    m.lastUsedAt = Date.now();
  }

  // ---- loading and unloading -----------------------------------------------------------------

  private queue<T>(im: InstanceModels, job: () => Promise<T>): Promise<T> {
    const run = im.chain.then(job);
    im.chain = run.catch(() => undefined);
    return run;
  }

  private startLoad(v: VariantModels, im: InstanceModels, entry: CatalogEntry, name: string, target: string): void {
    const m: HostedModel = {
      name, target, version: entry.version, state: 'loading', ready: Promise.resolve(), memoryBytes: 0, lastUsed: ++this.tick, lastUsedAt: Date.now(), inUse: 0, stale: false,
    };
    im.models.set(name, m);
    m.ready = this.load(v, im, m, entry);
    m.ready.catch((err: unknown) => {
      if (im.models.get(name) === m) im.models.delete(name);
      this.o.logger?.warn({ endpoint: v.endpointName, model: target, instance: im.instance.id, err: (err as Error).message }, 'model load failed');
    });
  }

  private async load(v: VariantModels, im: InstanceModels, m: HostedModel, entry: CatalogEntry): Promise<void> {
    const labels = { EndpointName: v.endpointName, VariantName: v.variantName };
    const modelLabels = { ...labels, TargetModel: m.target };
    const deadline = Date.now() + this.o.settings.loadTimeoutMs;
    const container = im.instance.containers[0] as ContainerHandle;
    const downloadStarted = process.hrtime.bigint();
    let artifact;
    try {
      artifact = await this.o.artifacts.unpackArchive(entry.url, entry, this.o.settings.loadTimeoutMs);
    } catch (err) {
      if (err instanceof ArtifactError && err.missing) throw new BerthError('ValidationError', `Failed to download model data(${describeUrl(entry.url)}). ${NOT_FOUND_HINT}`);
      if (err instanceof ArtifactError) throw new ModelLoadError(400, `Model data of ${m.target} from ${entry.url} could not be used: ${err.message}`, im.instance, container.name);
      throw err;
    }
    if (artifact.fetched) this.observe('ModelDownloadingTime', labels, modelLabels, Number((process.hrtime.bigint() - downloadStarted) / 1000n));
    m.dir = artifact.dir;
    v.disk.set(artifact.dir, { bytes: artifact.bytes, lastUsed: ++this.tick });
    await this.queue(im, async () => {
      const estimate = v.costs.get(m.name) ?? artifact.bytes;
      if (estimate > v.budgetBytes) {
        throw new ModelLoadError(507, `Model ${m.target} needs about ${mb(estimate)} of memory, more than the ${mb(v.budgetBytes)} budget of an instance of this endpoint; raise multiModelMemoryBudgetBytes or use a larger InstanceType.`, im.instance, container.name);
      }
      await this.makeRoom(v, im, estimate, deadline, m);
      const before = await processTreeRss(container.pid);
      const started = process.hrtime.bigint();
      let loadAnswer: string;
      for (;;) {
        let res: { status: number; text: string };
        try {
          res = await management(container, 'POST', '/models', { model_name: m.name, url: artifact.dir }, deadline);
        } catch (err) {
          // The container went away or stopped answering mid-load: a replaced instance is worth a
          // retry; a container that hangs is the model's problem.
          if (im.instance.state === 'failed' || im.instance.state === 'stopped') {
            throw new BerthError('ServiceUnavailable', `The instance loading model ${m.target} stopped before the load finished; retry the request.`);
          }
          throw new ModelLoadError(0, `The container did not answer the load of model ${m.target} (${(err as Error).message}).`, im.instance, container.name);
        }
        loadAnswer = res.text;
        if (res.status === 507) {
          // The container ran out of memory: make room by one more model, as SageMaker does.
          const victim = leastRecentlyUsedIdle(im, m);
          if (!victim) throw new ModelLoadError(507, `The container has no memory left for model ${m.target} and every other loaded model is in use: ${res.text}`, im.instance, container.name);
          await this.unload(v, im, victim);
          continue;
        }
        // 409: the container has it already (berth lost track of it); it is loaded either way.
        if (res.status !== 200 && res.status !== 409) throw new ModelLoadError(res.status, mmsMessage(res.text), im.instance, container.name);
        break;
      }
      this.observe('ModelLoadingTime', labels, modelLabels, Number((process.hrtime.bigint() - started) / 1000n));
      const after = await processTreeRss(container.pid);
      // The container's own report when it gives one (berth's model server does), else what its
      // processes grew by; never less than the model's files, since memory an earlier unload freed
      // can be reused and hide what a model holds.
      const reported = reportedMemory(loadAnswer);
      m.memoryBytes = Math.max(reported ?? after - before, artifact.bytes);
      v.costs.set(m.name, m.memoryBytes);
      m.state = 'loaded';
      // The model turned out bigger than its estimate: others make way now, not at the next load.
      try {
        await this.makeRoom(v, im, 0, deadline, m);
      } catch (err) {
        await this.unload(v, im, m, true);
        throw err;
      }
    });
    this.recordLoaded(v);
    await this.enforceDisk(v);
  }

  /** Unloads least recently used idle models until `need` more bytes fit the budget. */
  private async makeRoom(v: VariantModels, im: InstanceModels, need: number, deadline: number, loading: HostedModel): Promise<void> {
    const container = im.instance.containers[0] as ContainerHandle;
    while (usedBytes(im) + need > v.budgetBytes) {
      const victim = leastRecentlyUsedIdle(im, loading);
      if (victim) {
        await this.unload(v, im, victim);
        continue;
      }
      const busy = [...im.models.values()].some((x) => x !== loading && x.state === 'loaded' && x.inUse > 0);
      if (!busy) {
        throw new ModelLoadError(507, `Model ${loading.target} needs about ${mb(loading.memoryBytes || need)} of memory, more than the ${mb(v.budgetBytes)} budget of an instance of this endpoint; raise multiModelMemoryBudgetBytes or use a larger InstanceType.`, im.instance, container.name);
      }
      // Everything else loaded is serving a call: wait for one to finish rather than evict it.
      const woke = await new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => resolve(false), Math.max(0, deadline - Date.now()));
        im.released.push(() => {
          clearTimeout(timer);
          resolve(true);
        });
      });
      if (!woke) throw new ModelLoadError(507, `No memory for model ${loading.target}: the loaded models fill the ${mb(v.budgetBytes)} budget and all stayed in use.`, im.instance, container.name);
    }
  }

  /** `force`: even with calls waiting on it (a model that cannot stay, whose load failed). */
  private async unload(v: VariantModels, im: InstanceModels, m: HostedModel, force = false): Promise<void> {
    if (m.state !== 'loaded' || (m.inUse > 0 && !force)) return;
    m.state = 'unloading';
    if (im.models.get(m.name) === m) im.models.delete(m.name);
    const labels = { EndpointName: v.endpointName, VariantName: v.variantName };
    const container = im.instance.containers[0] as ContainerHandle;
    const started = process.hrtime.bigint();
    try {
      const res = await management(container, 'DELETE', `/models/${encodeURIComponent(m.name)}`, undefined, Date.now() + 60_000);
      if (res.status !== 200 && res.status !== 404) this.o.logger?.warn({ model: m.target, status: res.status, text: res.text }, 'the container refused to unload a model');
    } catch (err) {
      this.o.logger?.warn({ model: m.target, err: (err as Error).message }, 'could not unload a model (the instance may be gone)');
    }
    this.observe('ModelUnloadingTime', labels, { ...labels, TargetModel: m.target }, Number((process.hrtime.bigint() - started) / 1000n));
    this.recordLoaded(v);
    if ((!v.spec.cacheEnabled || m.stale) && m.dir && !inUseOnDisk(v, m.dir)) {
      v.disk.delete(m.dir);
      await this.o.artifacts.discard(m.dir);
    }
  }

  /** Deletes least recently used unpacked models that no instance holds until the disk budget fits. */
  private async enforceDisk(v: VariantModels): Promise<void> {
    let total = [...v.disk.values()].reduce((s, d) => s + d.bytes, 0);
    if (total <= this.o.settings.diskBudgetBytes) return;
    const candidates = [...v.disk.entries()].filter(([dir]) => !inUseOnDisk(v, dir)).sort((a, b) => a[1].lastUsed - b[1].lastUsed);
    for (const [dir, d] of candidates) {
      if (total <= this.o.settings.diskBudgetBytes) break;
      v.disk.delete(dir);
      total -= d.bytes;
      await this.o.artifacts.discard(dir);
    }
  }

  // ---- metrics -------------------------------------------------------------------------------

  /** SageMaker's series (endpoint and variant) and berth's per-model one (with TargetModel). */
  private observe(name: 'ModelCacheHit' | 'ModelLoadingWaitTime' | 'ModelDownloadingTime' | 'ModelLoadingTime' | 'ModelUnloadingTime', labels: Labels, modelLabels: Labels, value: number): void {
    this.o.metrics?.observe(name, labels, value);
    this.o.metrics?.observe(name, modelLabels, value);
  }

  private recordLoaded(v: VariantModels): void {
    const metrics = this.o.metrics;
    if (!metrics) return;
    let count = 0;
    let bytes = 0;
    for (const im of v.instances.values()) {
      for (const m of im.models.values()) {
        if (m.state !== 'loaded') continue;
        count += 1;
        bytes += m.memoryBytes;
      }
    }
    const labels = { EndpointName: v.endpointName, VariantName: v.variantName };
    metrics.set('LoadedModelCount', labels, count);
    metrics.set('LoadedModelBytes', labels, bytes);
  }
}

class StillWaiting extends Error {}

function withinMs(p: Promise<void>, ms: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new StillWaiting()), ms);
    p.then(() => { clearTimeout(timer); resolve(); }, (err: unknown) => { clearTimeout(timer); reject(err instanceof Error ? err : new Error(String(err))); });
  });
}

function leastBusyHolder(ready: readonly InstanceModels[], name: string): InstanceModels | undefined {
  let best: InstanceModels | undefined;
  let bestLoad = Infinity;
  for (const im of ready) {
    const m = im.models.get(name);
    if (m?.state !== 'loaded') continue;
    const load = m.inUse * 1000 + im.instance.outstanding;
    if (load < bestLoad) {
      best = im;
      bestLoad = load;
    }
  }
  return best;
}

function leastRecentlyUsedIdle(im: InstanceModels, except: HostedModel): HostedModel | undefined {
  let victim: HostedModel | undefined;
  for (const m of im.models.values()) {
    if (m === except || m.state !== 'loaded' || m.inUse > 0) continue;
    if (!victim || m.lastUsed < victim.lastUsed) victim = m;
  }
  return victim;
}

/** Memory of the models loaded, and being loaded, on an instance. */
function usedBytes(im: InstanceModels): number {
  let total = 0;
  for (const m of im.models.values()) if (m.state === 'loaded') total += m.memoryBytes;
  return total;
}

function inUseOnDisk(v: VariantModels, dir: string): boolean {
  for (const im of v.instances.values()) for (const m of im.models.values()) if (m.dir === dir) return true;
  return false;
}

/** The container's name for a model: the same artifact version always gets the same name. */
function modelName(url: string, version: string): string {
  return createHash('sha256').update(url).update('\0').update(version).digest('hex').slice(0, 32);
}

/** TargetModel is a path relative to the prefix, as SageMaker joins them. */
export function modelUrl(prefix: string, target: string): string {
  return prefix.endsWith('/') ? prefix + target : `${prefix}/${target}`;
}

function describeUrl(url: string): string {
  const s3 = /^s3:\/\/([^/]+)\/(.*)$/.exec(url);
  return s3 ? `bucket: ${s3[1]}, key: ${s3[2]}` : `url: ${url}`;
}

function mb(bytes: number): string {
  return `${(bytes / 2 ** 20).toFixed(1)} MiB`;
}

/** `memoryBytes` in a load answer: what the container says the model holds. */
function reportedMemory(text: string): number | undefined {
  try {
    const n = (JSON.parse(text) as { memoryBytes?: unknown }).memoryBytes;
    return typeof n === 'number' && Number.isFinite(n) && n >= 0 ? n : undefined;
  } catch {
    return undefined;
  }
}

/** MMS's error body is JSON with a message; anything else is passed on as it came. */
function mmsMessage(text: string): string {
  try {
    const body = JSON.parse(text) as { message?: unknown };
    if (typeof body.message === 'string') return body.message;
  } catch {
    // not JSON
  }
  return text;
}

async function management(container: ContainerHandle, method: ContainerRequest['method'], path: string, body: unknown, deadline: number): Promise<{ status: number; text: string }> {
  const timeoutMs = Math.max(1, deadline - Date.now());
  const res = await container.client.request({
    method,
    path,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
    timeoutMs,
    maxResponseBytes: MANAGEMENT_ANSWER_LIMIT,
    poll: false, // loading a model takes far longer than SpinWait would poll
  });
  return { status: res.status, text: res.body.toString('utf8') };
}
