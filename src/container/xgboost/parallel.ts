// Large batches on every core, as XGBoost does with its threads: the rows are split between this
// thread and worker threads that compile the same model from the same bytes. Small batches stay on
// this thread, where a prediction costs less than a message to a worker.
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { compile } from './compile.js';
import type { CompiledModel, Matrix } from './compile.js';
import { readModel } from './model.js';

/** Below this many rows a batch is not worth splitting. */
const PARALLEL_MIN_ROWS = 4096;

interface Pending { resolve: (out: Float32Array) => void; reject: (err: Error) => void }

export class ParallelModel {
  readonly compiled: CompiledModel;
  private readonly workers: Worker[] = [];
  private readonly pending = new Map<number, Pending>();
  private nextId = 0;

  constructor(private readonly bytes: Uint8Array, private readonly threads = availableParallelism()) {
    this.compiled = compile(readModel(bytes));
  }

  /**
   * Workers start with the first batch large enough to split, not with the model: a multi-model
   * container holds hundreds of models, most of which only ever see small requests.
   */
  private startWorkers(): void {
    for (let i = 1; i < this.threads; i++) {
      const w = new Worker(new URL('./worker.js', import.meta.url), { workerData: { bytes: this.bytes } });
      w.unref();
      w.on('message', (m: { id: number; out?: Float32Array; error?: string }) => {
        const p = this.pending.get(m.id);
        this.pending.delete(m.id);
        if (m.out) p?.resolve(m.out);
        else p?.reject(new Error(m.error ?? 'worker failed'));
      });
      w.on('error', (err) => { for (const p of this.pending.values()) p.reject(err); this.pending.clear(); });
      this.workers.push(w);
    }
  }

  get width(): number {
    return this.compiled.width;
  }

  async predict(x: Matrix): Promise<Float32Array> {
    if (x.rows < PARALLEL_MIN_ROWS || this.threads <= 1) return this.compiled.predict(x);
    if (this.workers.length === 0) this.startWorkers();
    const parts = this.workers.length + 1;
    const per = Math.ceil(x.rows / parts);
    const jobs: Promise<Float32Array>[] = this.workers.map((w, i) => {
      const start = (i + 1) * per;
      const end = Math.min(x.rows, start + per);
      if (start >= end) return Promise.resolve(new Float32Array(0));
      const id = this.nextId++;
      const data = x.data.slice(start * x.cols, end * x.cols);
      return new Promise<Float32Array>((resolve, reject) => {
        this.pending.set(id, { resolve, reject });
        w.postMessage({ id, data, rows: end - start, cols: x.cols }, [data.buffer]);
      });
    });
    const mine = this.compiled.predict({ data: x.data.subarray(0, per * x.cols), rows: Math.min(per, x.rows), cols: x.cols });
    const rest = await Promise.all(jobs);
    const out = new Float32Array(x.rows * this.width);
    out.set(mine, 0);
    let offset = mine.length;
    for (const r of rest) {
      out.set(r, offset);
      offset += r.length;
    }
    return out;
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
