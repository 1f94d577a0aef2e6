// The multi-model side of the container contract (container-contracts.md §3.2): with
// SAGEMAKER_MULTI_MODEL=true the container starts empty and berth loads, lists and unloads models
// by name through /models, then invokes one with POST /models/{name}/invoke. Names are opaque ids
// chosen by berth; `url` is the folder holding the unpacked model.
import { stat } from 'node:fs/promises';
import type { Runtime } from './runtime.js';

/** An answer of the management API, in Multi Model Server's shapes (berth speaks to MMS containers too). */
export interface ManagementAnswer {
  readonly status: number;
  readonly body: unknown;
}

interface Loaded {
  readonly name: string;
  readonly url: string;
  readonly runtime: Runtime;
}

/** MMS's error body: `{"code", "type", "message"}`. */
function failure(status: number, type: string, message: string): ManagementAnswer {
  return { status, body: { code: status, type, message } };
}

/** What a JavaScript engine throws when memory runs out while a model loads. */
function outOfMemory(err: unknown): boolean {
  const e = err as { code?: string; message?: string };
  const message = e.message ?? '';
  return (err instanceof RangeError && /allocation failed|Invalid array length|WebAssembly.Memory/i.test(message))
    || e.code === 'ERR_MEMORY_ALLOCATION_FAILED'
    || /out of memory|bad_alloc|Failed to allocate/i.test(message);
}

const PAGE_MAX = 100;

/** Memory use after a full collection when the process runs with --expose-gc (berth starts it so). */
function memorySample(): NodeJS.MemoryUsage {
  (globalThis as { gc?: () => void }).gc?.();
  return process.memoryUsage();
}

export class ModelTable {
  private readonly models = new Map<string, Loaded>();
  private readonly loading = new Set<string>();
  /** Loads run one at a time, so each model's memory can be told apart from the next one's. */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly newRuntime: () => Runtime) {}

  get(name: string): Runtime | undefined {
    return this.models.get(name)?.runtime;
  }

  async load(request: unknown): Promise<ManagementAnswer> {
    const r = request as { model_name?: unknown; url?: unknown } | null;
    if (typeof r?.model_name !== 'string' || r.model_name === '' || typeof r.url !== 'string' || r.url === '') {
      return failure(400, 'BadRequestException', 'The body must be JSON {"model_name": "<name>", "url": "<folder of the unpacked model>"}.');
    }
    const { model_name: name, url } = r as { model_name: string; url: string };
    if (this.models.has(name) || this.loading.has(name)) {
      return failure(409, 'ConflictStatusException', `Model ${name} is already loaded; unload it (DELETE /models/${name}) before loading it again.`);
    }
    this.loading.add(name);
    const job = this.queue.then(() => this.loadNow(name, url));
    this.queue = job.catch(() => undefined);
    try {
      return await job;
    } finally {
      this.loading.delete(name);
    }
  }

  private async loadNow(name: string, url: string): Promise<ManagementAnswer> {
    const info = await stat(url).catch(() => undefined);
    if (!info?.isDirectory()) return failure(404, 'ModelNotFoundException', `Model not found at ${url}: the url must be a folder holding the unpacked model.`);
    const runtime = this.newRuntime();
    const before = memorySample();
    try {
      await runtime.load(url);
    } catch (err) {
      await runtime.unload?.().catch(() => undefined);
      if (outOfMemory(err)) return failure(507, 'InsufficientMemoryException', `Not enough memory to load model ${name}: ${(err as Error).message}`);
      console.error(`model ${name} from ${url} failed to load: ${(err as Error).stack ?? String(err)}`);
      return failure(500, 'InternalServerException', `Failed to load model ${name}: ${(err as Error).message}`);
    }
    const after = memorySample();
    // What the model holds, measured after a full collection: the live JavaScript heap and external
    // buffers (WebAssembly memory) it added, plus, for runtimes that allocate natively, the growth
    // of the resident set outside those. The heap's reserve grows in steps and allocators keep freed
    // pages, so resident-set growth is counted only where the model really lives there.
    const js = Math.max(0, after.heapUsed - before.heapUsed) + Math.max(0, after.external - before.external);
    const native = Math.max(0, (after.rss - after.heapTotal - after.external) - (before.rss - before.heapTotal - before.external));
    const memoryBytes = js + (runtime.nativeMemory ? native : 0);
    this.models.set(name, { name, url, runtime });
    console.log(`model ${name} loaded from ${url} (${memoryBytes} bytes)`);
    return { status: 200, body: { status: 'Workers scaled', memoryBytes } };
  }

  list(limitParam: string | null, tokenParam: string | null): ManagementAnswer {
    const limit = Math.min(PAGE_MAX, Math.max(1, Number(limitParam ?? PAGE_MAX) || PAGE_MAX));
    const start = Math.max(0, Number(tokenParam ?? 0) || 0);
    const all = [...this.models.values()];
    const page = all.slice(start, start + limit).map((m) => ({ modelName: m.name, modelUrl: m.url }));
    const body: { models: unknown[]; nextPageToken?: string } = { models: page };
    if (start + limit < all.length) body.nextPageToken = String(start + limit);
    return { status: 200, body };
  }

  describe(name: string): ManagementAnswer {
    const m = this.models.get(name);
    if (!m) return failure(404, 'ModelNotFoundException', `Model not found: ${name}`);
    return { status: 200, body: { modelName: m.name, modelUrl: m.url } };
  }

  async unload(name: string): Promise<ManagementAnswer> {
    const m = this.models.get(name);
    if (!m) return failure(404, 'ModelNotFoundException', `Model not found: ${name}`);
    this.models.delete(name);
    await m.runtime.unload?.();
    console.log(`model ${name} unloaded`);
    return { status: 200, body: { status: `Model "${name}" unregistered` } };
  }

  notLoaded(name: string): ManagementAnswer {
    return failure(404, 'ModelNotFoundException', `Model not found: ${name}; load it with POST /models first.`);
  }
}
