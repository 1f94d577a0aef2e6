// The reconciler: makes the running fleets match each endpoint's desired state, one endpoint at a time,
// and is the only writer of what is observed. Every step is idempotent, so a crash of berth at any
// point is repaired by reconciling again from the store when it restarts.
import type { ArtifactCache } from '../artifacts/index.js';
import type {
  DeploymentSpec, EndpointRecord, EndpointStates, ObservedState, PendingDeploymentSummary, ProductionVariantStatus,
  ProductionVariantSummary, VariantTarget,
} from '../control/index.js';
import type { FleetProvider, ImageTable, Instance } from '../fleet/index.js';
import type { Logger } from '../telemetry/index.js';
import { planVariant } from './plan.js';
import type { InvocationMode, MultiModelPlan, VariantPlan } from './plan.js';

/** What the data plane needs to route an endpoint (the router implements the publisher). */
export interface FleetRoute {
  readonly status: string;
  readonly variants: readonly {
    readonly name: string;
    readonly weight: number;
    readonly mode: InvocationMode;
    readonly instances: readonly Instance[];
    readonly multiModel?: MultiModelPlan | undefined;
  }[];
}

export interface RoutePublisher {
  publish(endpointName: string, route: FleetRoute | undefined): void;
}

export interface ReconcilerOptions {
  readonly states: EndpointStates;
  readonly fleet: FleetProvider;
  readonly artifacts: ArtifactCache;
  readonly images: ImageTable;
  readonly routes: RoutePublisher;
  readonly logger: Logger;
  readonly startupHealthCheckTimeoutMs: number;
  readonly instanceStopGraceMs: number;
  /** Delay before retrying a replacement instance that failed to start. */
  readonly retryDelayMs?: number;
}

/** SageMaker caps FailureReason at 1024 characters. */
const FAILURE_REASON_MAX = 1024;

interface VariantFleet {
  readonly name: string;
  readonly plan: VariantPlan;
  weight: number;
  target: number;
  /** Healthy instances in rotation. Failed ones are removed the moment they fail. */
  instances: Instance[];
  status: ProductionVariantStatus[];
}

interface Fleet {
  readonly specVersion: number;
  readonly spec: DeploymentSpec;
  readonly variants: VariantFleet[];
}

interface Runtime {
  readonly name: string;
  status: string;
  fleet: Fleet | undefined;
}

class StartError extends Error {}

export class Reconciler {
  private readonly runtimes = new Map<string, Runtime>();
  private readonly queue = new Map<string, { again: boolean; done: Promise<void> }>();
  private readonly retryTimers = new Set<NodeJS.Timeout>();
  private closed = false;

  constructor(private readonly o: ReconcilerOptions) {}

  /** Reconciles every stored endpoint: after a restart this brings InService endpoints back. */
  async start(): Promise<void> {
    for (const rec of await this.o.states.all()) {
      this.runtimes.set(rec.name.toLowerCase(), { name: rec.name, status: rec.status ?? 'Creating', fleet: undefined });
      this.publish(rec.name.toLowerCase());
      this.notify(rec.name);
    }
  }

  /** Schedules a reconcile; calls while one runs collapse into one more pass. */
  notify(endpointName: string): void {
    if (this.closed) return;
    const key = endpointName.toLowerCase();
    const pending = this.queue.get(key);
    if (pending) {
      pending.again = true;
      return;
    }
    const entry = { again: false, done: Promise.resolve() };
    entry.done = (async () => {
      do {
        entry.again = false;
        try {
          await this.reconcile(key);
        } catch (err) {
          this.o.logger.error({ err, endpoint: endpointName }, 'reconcile failed');
        }
      } while (entry.again && !this.closed);
      this.queue.delete(key);
    })();
    this.queue.set(key, entry);
  }

  /** Resolves once no reconcile is running or scheduled (tests and shutdown use it). */
  async idle(): Promise<void> {
    while (this.queue.size > 0) await Promise.all([...this.queue.values()].map((e) => e.done));
  }

  /** Stops reconciling and stops every instance; stored state is left as is for the next start. */
  async close(): Promise<void> {
    this.closed = true;
    for (const t of this.retryTimers) clearTimeout(t);
    await Promise.all([...this.queue.values()].map((e) => e.done.catch(() => undefined)));
    await this.o.fleet.stopAll(this.o.instanceStopGraceMs);
  }

  private async reconcile(key: string): Promise<void> {
    const rec = await this.o.states.get(key);
    let rt = this.runtimes.get(key);
    if (!rec) {
      if (rt) await this.teardown(key, rt);
      return;
    }
    if (!rt) {
      rt = { name: rec.name, status: rec.status ?? 'Creating', fleet: undefined };
      this.runtimes.set(key, rt);
    }
    rt.status = rec.status ?? 'Creating';
    this.publish(key);
    switch (rec.status) {
      case 'Deleting':
        await this.teardown(key, rt);
        await this.o.states.remove(rec.name);
        return;
      case 'Creating':
        return this.create(key, rt, rec);
      case 'Updating':
        return this.update(key, rt, rec);
      case 'InService':
        return this.converge(key, rt, rec);
      case 'Failed':
        if (rt.fleet) await this.retire(rt.fleet);
        rt.fleet = undefined;
        this.publish(key);
        return;
      default:
        return;
    }
  }

  // ---- the operations ----------------------------------------------------------------------

  private async create(key: string, rt: Runtime, rec: EndpointRecord): Promise<void> {
    const desired = rec.doc.desired;
    const startedAt = Date.now() / 1000;
    await this.observe(rt.name, desired.generation, 'Creating', () => ({
      generation: rec.doc.observed.generation,
      variants: desired.variants.map((t) => startingSummary(t, startedAt, 'Creating')),
    }));
    try {
      const fleet = await this.buildFleet(rt.name, regionOf(rec.arn), desired.specVersion, desired.spec, desired.variants);
      rt.fleet = fleet;
      await this.settle(key, rt, rec, undefined);
    } catch (err) {
      await this.observe(rt.name, desired.generation, 'Creating', () => ({
        generation: desired.generation,
        failureReason: truncate((err as Error).message),
      }), 'Failed');
      rt.status = 'Failed';
      this.publish(key);
    }
  }

  private async update(key: string, rt: Runtime, rec: EndpointRecord): Promise<void> {
    const desired = rec.doc.desired;
    const observed = rec.doc.observed;
    const region = regionOf(rec.arn);
    if (rt.fleet && rt.fleet.specVersion === desired.specVersion) {
      // UpdateEndpointWeightsAndCapacities: weights move at once, capacity through the fleet.
      await this.scale(key, rt.fleet, desired.variants);
      await this.settle(key, rt, rec, observed.failureReason);
      return;
    }
    // UpdateEndpoint: blue/green, all at once. The new fleet comes up beside the old one and takes
    // the traffic only when every instance is healthy; then the old one drains and stops.
    const startedAt = Date.now() / 1000;
    const pending: PendingDeploymentSummary = {
      EndpointConfigName: desired.spec.endpointConfigName,
      ProductionVariants: desired.variants.map((t) => startingSummary(t, startedAt, 'Creating')),
      StartTime: startedAt,
    };
    await this.observe(rt.name, desired.generation, 'Updating', (cur) => ({ ...cur.doc.observed, pending }));
    let fleet: Fleet;
    try {
      fleet = await this.buildFleet(rt.name, region, desired.specVersion, desired.spec, desired.variants);
    } catch (err) {
      const reason = truncate((err as Error).message);
      this.o.logger.warn({ endpoint: rt.name, reason }, 'update failed; the endpoint keeps its current fleet');
      if (!rt.fleet && observed.serving) {
        // berth restarted during the update: bring the previous fleet back.
        try {
          rt.fleet = await this.buildFleet(rt.name, region, observed.serving.specVersion, observed.serving.spec, observed.serving.variants);
        } catch (again) {
          await this.observe(rt.name, desired.generation, 'Updating', () => ({ ...observed, pending: undefined, failureReason: truncate((again as Error).message) }), 'Failed');
          return;
        }
      }
      // As on SageMaker: the update is abandoned, the endpoint stays InService on the old fleet.
      await this.observe(rt.name, desired.generation, 'Updating', (cur) => ({
        ...cur.doc.observed,
        generation: desired.generation,
        pending: undefined,
        failureReason: reason,
        variants: rt.fleet ? summaries(rt.fleet, cur.doc.observed.serving?.variants ?? []) : cur.doc.observed.variants,
      }), 'InService');
      rt.status = 'InService';
      this.publish(key);
      return;
    }
    const old = rt.fleet;
    rt.fleet = fleet;
    this.publish(key);
    await this.settle(key, rt, rec, undefined);
    if (old) await this.retire(old);
  }

  private async converge(key: string, rt: Runtime, rec: EndpointRecord): Promise<void> {
    const desired = rec.doc.desired;
    if (!rt.fleet) {
      // berth restarted: bring the serving fleet back under the status it had.
      const serving = rec.doc.observed.serving ?? { specVersion: desired.specVersion, spec: desired.spec, variants: desired.variants };
      try {
        rt.fleet = await this.buildFleet(rt.name, regionOf(rec.arn), serving.specVersion, serving.spec, desired.variants);
      } catch (err) {
        await this.observe(rt.name, desired.generation, 'InService', (cur) => ({
          ...cur.doc.observed,
          failureReason: truncate(`The endpoint could not be brought back after berth restarted: ${(err as Error).message}`),
        }), 'Failed');
        rt.status = 'Failed';
        this.publish(key);
        return;
      }
      this.publish(key);
    } else {
      await this.scale(key, rt.fleet, desired.variants);
    }
    await this.observe(rt.name, desired.generation, 'InService', (cur) => ({
      ...cur.doc.observed,
      variants: summaries(rt.fleet as Fleet, desired.variants),
    }));
  }

  /** Records that the endpoint reached its desired generation and is serving from `rt.fleet`. */
  private async settle(key: string, rt: Runtime, rec: EndpointRecord, failureReason: string | undefined): Promise<void> {
    const desired = rec.doc.desired;
    const fleet = rt.fleet as Fleet;
    const written = await this.observe(rt.name, desired.generation, rec.status as string, () => ({
      generation: desired.generation,
      serving: { specVersion: fleet.specVersion, spec: fleet.spec, variants: desired.variants },
      variants: summaries(fleet, desired.variants),
      failureReason,
      lastDeploymentConfig: desired.deploymentConfig,
    }), 'InService');
    if (written?.status === 'InService') rt.status = 'InService';
    this.publish(key);
  }

  private async teardown(key: string, rt: Runtime): Promise<void> {
    rt.status = 'Deleting';
    this.publish(key);
    if (rt.fleet) await this.retire(rt.fleet);
    rt.fleet = undefined;
    this.runtimes.delete(key);
    this.o.routes.publish(rt.name, undefined);
  }

  // ---- fleets -------------------------------------------------------------------------------

  private async buildFleet(name: string, region: string, specVersion: number, spec: DeploymentSpec, targets: readonly VariantTarget[]): Promise<Fleet> {
    const ctx = {
      images: this.o.images,
      artifacts: this.o.artifacts,
      region,
      defaultStartupTimeoutMs: this.o.startupHealthCheckTimeoutMs,
    };
    const variants: VariantFleet[] = [];
    try {
      for (const t of targets) {
        const plan = await planVariant(spec, t.VariantName, ctx, name).catch((err: Error) => {
          throw new StartError(`Variant ${t.VariantName}: ${err.message}`);
        });
        variants.push({ name: t.VariantName, plan, weight: t.weight, target: t.instanceCount, instances: [], status: [] });
      }
      await Promise.all(variants.map(async (vf) => {
        const started = await Promise.allSettled(Array.from({ length: vf.target }, () => this.startInstance(name, vf)));
        for (const s of started) if (s.status === 'fulfilled') vf.instances.push(s.value);
        const failure = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
        if (failure) throw failure.reason;
      }));
    } catch (err) {
      await Promise.all(variants.flatMap((vf) => vf.instances.map((i) => i.stop(0))));
      throw err;
    }
    const fleet: Fleet = { specVersion, spec, variants };
    for (const vf of variants) for (const i of vf.instances) this.watch(name, vf, i);
    return fleet;
  }

  /** Starts one instance and waits for its /ping; on failure it is stopped and the reason thrown. */
  private async startInstance(endpointName: string, vf: VariantFleet): Promise<Instance> {
    const instance = await this.o.fleet.start({ ...vf.plan.instance, endpointName });
    try {
      await instance.waitUntilHealthy(vf.plan.startupTimeoutMs);
      return instance;
    } catch (err) {
      // Give the process a moment to flush what it wrote before dying.
      await new Promise((r) => setTimeout(r, 50));
      const tail = instance.logTail(20);
      await instance.stop(0);
      const containers = vf.plan.instance.containers;
      const logs = tail.length ? ` Last log lines: ${tail.join(' | ')}` : ' The container wrote no log lines.';
      if (containers.length === 1) {
        const cmd = [...(containers[0]?.command ?? []), 'serve'].join(' ');
        throw new StartError(`The primary container for production variant ${vf.name} did not pass the ping health check: ${(err as Error).message}. Command: ${cmd}.${logs}`);
      }
      const cmds = containers.map((c) => `${c.name}: ${[...c.command, 'serve'].join(' ')}`).join('; ');
      throw new StartError(`The containers for production variant ${vf.name} did not pass the ping health check: ${(err as Error).message}. Commands: ${cmds}.${logs}`);
    }
  }

  /** Takes a failed instance out of rotation at once and has the reconciler replace it. */
  private watch(endpointName: string, vf: VariantFleet, instance: Instance): void {
    instance.on('failed', (reason) => {
      this.o.logger.warn({ endpoint: endpointName, variant: vf.name, instance: instance.id, reason }, 'instance failed; replacing it');
      vf.instances = vf.instances.filter((i) => i !== instance);
      vf.status = [{ Status: 'Updating', StatusMessage: `Replacing instance ${instance.id}: ${reason}.`, StartTime: Date.now() / 1000 }];
      this.publish(endpointName.toLowerCase());
      void this.recordVariants(endpointName).then(() => instance.stop(0)).finally(() => this.notify(endpointName));
    });
  }

  /** Moves a variant fleet to its target weights and counts. */
  private async scale(key: string, fleet: Fleet, targets: readonly VariantTarget[]): Promise<void> {
    const name = this.runtimes.get(key)?.name ?? key;
    let failed = false;
    await Promise.all(fleet.variants.map(async (vf) => {
      const t = targets.find((x) => x.VariantName === vf.name);
      if (!t) return;
      vf.weight = t.weight;
      vf.target = t.instanceCount;
      this.publish(key);
      const missing = vf.target - vf.instances.length;
      if (missing > 0) {
        const started = await Promise.allSettled(Array.from({ length: missing }, () => this.startInstance(name, vf)));
        for (const s of started) {
          if (s.status === 'fulfilled') {
            vf.instances.push(s.value);
            this.watch(name, vf, s.value);
          } else {
            failed = true;
            vf.status = [{ Status: 'Updating', StatusMessage: truncate((s.reason as Error).message), StartTime: Date.now() / 1000 }];
          }
        }
        if (!failed) vf.status = [];
        this.publish(key);
      } else if (missing < 0) {
        // Scale in: the least busy instances leave rotation first, finish their work, then stop.
        const leaving = [...vf.instances].sort((a, b) => a.outstanding - b.outstanding).slice(0, -missing);
        vf.instances = vf.instances.filter((i) => !leaving.includes(i));
        this.publish(key);
        await Promise.all(leaving.map(async (i) => {
          await i.drain(this.o.instanceStopGraceMs);
          await i.stop(this.o.instanceStopGraceMs);
        }));
      } else if (vf.status.length > 0 && vf.instances.every((i) => i.state === 'ready')) {
        vf.status = [];
      }
    }));
    if (failed) this.retryLater(name);
  }

  private retryLater(name: string): void {
    const t = setTimeout(() => {
      this.retryTimers.delete(t);
      this.notify(name);
    }, this.o.retryDelayMs ?? 5_000);
    t.unref();
    this.retryTimers.add(t);
  }

  /** Drains and stops every instance of a fleet that no longer receives traffic. */
  private async retire(fleet: Fleet): Promise<void> {
    await Promise.all(fleet.variants.flatMap((vf) => vf.instances.map(async (i) => {
      await i.drain(this.o.instanceStopGraceMs);
      await i.stop(this.o.instanceStopGraceMs);
    })));
  }

  // ---- publishing and observing -------------------------------------------------------------

  /** Writes the serving fleet's variant summaries now, so DescribeEndpoint shows a lost instance at once. */
  private async recordVariants(name: string): Promise<void> {
    const rt = this.runtimes.get(name.toLowerCase());
    const fleet = rt?.fleet;
    if (!fleet) return;
    await this.o.states.observe(name, (cur) => {
      if (cur.doc.observed.serving?.specVersion !== fleet.specVersion) return undefined;
      return { observed: { ...cur.doc.observed, variants: summaries(fleet, cur.doc.desired.variants) } };
    });
  }

  private publish(key: string): void {
    const rt = this.runtimes.get(key);
    if (!rt) return;
    this.o.routes.publish(rt.name, {
      status: rt.status,
      variants: (rt.fleet?.variants ?? []).map((vf) => ({
        name: vf.name, weight: vf.weight, mode: vf.plan.mode, instances: [...vf.instances], multiModel: vf.plan.multiModel,
      })),
    });
  }

  /**
   * Writes an observation if the endpoint is still at `generation` and in `expectStatus`; a newer
   * request (or a deletion) in between wins, and its own reconcile pass will write instead.
   */
  private observe(
    name: string,
    generation: number,
    expectStatus: string,
    build: (cur: EndpointRecord) => ObservedState,
    status?: 'InService' | 'Failed',
  ): Promise<EndpointRecord | undefined> {
    return this.o.states.observe(name, (cur) => {
      if (cur.doc.desired.generation !== generation || cur.status !== expectStatus) return undefined;
      return { observed: build(cur), ...(status ? { status } : {}) };
    });
  }
}

function summaries(fleet: Fleet, targets: readonly VariantTarget[]): ProductionVariantSummary[] {
  return fleet.variants.map((vf) => {
    const t = targets.find((x) => x.VariantName === vf.name);
    return {
      VariantName: vf.name,
      DeployedImages: vf.plan.deployedImages,
      CurrentWeight: vf.weight,
      DesiredWeight: t?.weight ?? vf.weight,
      CurrentInstanceCount: vf.instances.filter((i) => i.state === 'ready').length,
      DesiredInstanceCount: t?.instanceCount ?? vf.target,
      ...(vf.status.length ? { VariantStatus: vf.status } : {}),
    };
  });
}

function startingSummary(t: VariantTarget, startedAt: number, status: 'Creating' | 'Updating'): ProductionVariantSummary {
  return {
    VariantName: t.VariantName,
    CurrentWeight: 0,
    DesiredWeight: t.weight,
    CurrentInstanceCount: 0,
    DesiredInstanceCount: t.instanceCount,
    VariantStatus: [{ Status: status, StartTime: startedAt }],
  };
}

function regionOf(arn: string): string {
  return arn.split(':')[3] ?? 'us-east-1';
}

function truncate(reason: string): string {
  return reason.length <= FAILURE_REASON_MAX ? reason : `${reason.slice(0, FAILURE_REASON_MAX - 1)}…`;
}
