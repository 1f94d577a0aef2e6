// The ONNX runtime: `model.onnx` (or the only .onnx file) served with onnxruntime-node. Inputs are
// shaped and typed from the model's own input metadata, so a client sends plain JSON numbers or CSV.
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { CSV_TYPE, JSON_TYPE, mediaType, negotiate, parseCsv, parseJson, toCsv } from './codecs.js';
import { InvocationError } from './runtime.js';
import type { InvocationInput, InvocationOutput, Runtime } from './runtime.js';

interface InputSpec {
  readonly name: string;
  readonly type: string;
  /** Numbers are fixed dimensions; strings (or -1) are free ones such as the batch size. */
  readonly shape: readonly (number | string)[];
}

type TypedArray = Float32Array | Float64Array | Int32Array | BigInt64Array | Int8Array | Uint8Array | Int16Array | Uint16Array;

const ARRAYS: Readonly<Record<string, (n: number) => TypedArray>> = {
  float32: (n) => new Float32Array(n),
  float64: (n) => new Float64Array(n),
  int32: (n) => new Int32Array(n),
  int64: (n) => new BigInt64Array(n),
  int8: (n) => new Int8Array(n),
  uint8: (n) => new Uint8Array(n),
  int16: (n) => new Int16Array(n),
  uint16: (n) => new Uint16Array(n),
  bool: (n) => new Uint8Array(n),
};

export interface OnnxOptions {
  /** onnxruntime intra-op threads; small models answer fastest on one. */
  readonly intraOpThreads: number;
}

/** An ONNX graph of one Identity node: the smallest model onnxruntime accepts. */
const WARM_UP_MODEL = 'CAg6NwoQCgF4EgF5IghJZGVudGl0eRIBd1oPCgF4EgoKCAgBEgQKAggBYg8KAXkSCgoICAESBAoCCAFCBAoAEA0=';

/**
 * Initialises onnxruntime (its environment and allocators, tens of megabytes) before any model
 * loads, so a multi-model container's memory growth while loading a model is that model's alone.
 */
export async function warmUpOnnxRuntime(): Promise<void> {
  const session = await ort.InferenceSession.create(Buffer.from(WARM_UP_MODEL, 'base64'), { intraOpNumThreads: 1, interOpNumThreads: 1, executionMode: 'sequential' });
  await session.run({ x: new ort.Tensor('float32', new Float32Array([1]), [1]) });
  await session.release();
}

export class OnnxRuntime implements Runtime {
  readonly nativeMemory = true;
  private session: ort.InferenceSession | undefined;
  private inputs: InputSpec[] = [];

  constructor(private readonly options: OnnxOptions) {}

  async load(modelDir: string): Promise<void> {
    const files = (await readdir(modelDir)).filter((f) => f.endsWith('.onnx'));
    const file = files.includes('model.onnx') ? 'model.onnx' : files.length === 1 ? files[0] : undefined;
    if (!file) {
      throw new Error(files.length === 0
        ? `no .onnx file in the model folder ${modelDir}; berth/onnx serves model.onnx (or the only .onnx file) at the top of model.tar.gz`
        : `the model folder holds ${files.length} .onnx files (${files.join(', ')}) and none is model.onnx; name the one to serve model.onnx`);
    }
    try {
      this.session = await ort.InferenceSession.create(join(modelDir, file), {
        intraOpNumThreads: this.options.intraOpThreads,
        interOpNumThreads: 1,
        executionMode: 'sequential',
        graphOptimizationLevel: 'all',
      });
    } catch (err) {
      throw new Error(`onnxruntime could not load ${file}: ${(err as Error).message}`, { cause: err });
    }
    this.inputs = this.session.inputMetadata.map((m) => {
      if (!m.isTensor) throw new Error(`input "${m.name}" of ${file} is not a tensor; berth/onnx serves tensor inputs`);
      if (!ARRAYS[m.type]) throw new Error(`input "${m.name}" of ${file} has type ${m.type}, which berth/onnx cannot fill from JSON or CSV`);
      return { name: m.name, type: m.type, shape: m.shape };
    });
  }

  async unload(): Promise<void> {
    const session = this.session;
    this.session = undefined;
    await session?.release();
  }

  async invoke(input: InvocationInput): Promise<InvocationOutput> {
    const session = this.session;
    if (!session) throw new InvocationError(503, 'the model is not loaded');
    const accept = negotiate(input.accept, [JSON_TYPE, CSV_TYPE], JSON_TYPE);
    const feeds = this.feeds(input);
    let results: ort.InferenceSession.ReturnType;
    try {
      results = await session.run(feeds);
    } catch (err) {
      throw new InvocationError(400, `onnxruntime rejected the input: ${(err as Error).message}`);
    }
    if (accept === CSV_TYPE) {
      const first = results[session.outputNames[0] as string] as ort.Tensor;
      return { body: toCsv(nest(first)), contentType: CSV_TYPE };
    }
    const out: Record<string, unknown> = {};
    for (const name of session.outputNames) out[name] = nest(results[name] as ort.Tensor);
    return { body: JSON.stringify(out), contentType: JSON_TYPE };
  }

  private feeds(input: InvocationInput): Record<string, ort.Tensor> {
    const type = mediaType(input.contentType);
    const values: Record<string, unknown> = {};
    const single = this.inputs.length === 1 ? this.inputs[0] : undefined;
    if (type === CSV_TYPE) {
      if (!single) throw new InvocationError(400, `CSV fills a single input, but this model has ${this.inputs.length} (${this.names()}); send JSON with named tensors.`);
      values[single.name] = parseCsv(input.body);
    } else if (type === JSON_TYPE || type === '') {
      Object.assign(values, this.fromJson(parseJson(input.body)));
    } else {
      throw new InvocationError(415, `Content type "${input.contentType}" is not supported by berth/onnx; send application/json or text/csv.`);
    }
    const feeds: Record<string, ort.Tensor> = {};
    for (const spec of this.inputs) {
      const v = values[spec.name];
      if (v === undefined) throw new InvocationError(400, `Input "${spec.name}" is missing; this model takes ${this.describe()}.`);
      feeds[spec.name] = tensor(spec, v);
    }
    return feeds;
  }

  /** `{"inputs": …}`, `{"instances": …}`, a bare nested array, or named tensors `{"name": array}`. */
  private fromJson(json: unknown): Record<string, unknown> {
    const wrapped = isObject(json) ? (json['inputs'] ?? json['instances']) : undefined;
    const payload = wrapped ?? json;
    if (Array.isArray(payload)) {
      const single = this.inputs.length === 1 ? this.inputs[0] : undefined;
      if (!single) throw new InvocationError(400, `This model has ${this.inputs.length} inputs (${this.names()}); send them as named tensors {"name": array}.`);
      return { [single.name]: payload };
    }
    if (isObject(payload)) {
      const unknown = Object.keys(payload).filter((k) => !this.inputs.some((i) => i.name === k));
      if (unknown.length > 0) throw new InvocationError(400, `Unknown input ${unknown.map((u) => `"${u}"`).join(', ')}; this model takes ${this.describe()}.`);
      return payload;
    }
    throw new InvocationError(400, `JSON input must be a nested array, {"inputs": …}, or named tensors; this model takes ${this.describe()}.`);
  }

  private names(): string {
    return this.inputs.map((i) => i.name).join(', ');
  }

  private describe(): string {
    return this.inputs.map((i) => `"${i.name}" ${i.type} [${i.shape.join(', ')}]`).join(' and ');
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The shape of a rectangular nested array and its values in row-major order. */
function flatten(value: unknown, spec: InputSpec): { shape: number[]; flat: unknown[] } {
  const shape: number[] = [];
  let probe: unknown = value;
  while (Array.isArray(probe)) {
    shape.push(probe.length);
    probe = probe[0];
  }
  const flat: unknown[] = [];
  const walk = (v: unknown, depth: number) => {
    if (depth === shape.length) {
      flat.push(v);
      return;
    }
    if (!Array.isArray(v) || v.length !== shape[depth]) {
      throw new InvocationError(400, `Input "${spec.name}" is not a rectangular array: every row at depth ${depth + 1} must have ${shape[depth]} elements.`);
    }
    for (const x of v) walk(x, depth + 1);
  };
  walk(value, 0);
  return { shape, flat };
}

function tensor(spec: InputSpec, value: unknown): ort.Tensor {
  const flattened = flatten(value, spec);
  const flat = flattened.flat;
  let shape = flattened.shape;
  const expected = spec.shape;
  // A single example without its batch dimension: [4] for a model that takes [batch, 4].
  if (shape.length === expected.length - 1 && typeof expected[0] !== 'number') shape = [1, ...shape];
  const fits = shape.length === expected.length && expected.every((d, i) => typeof d !== 'number' || d < 0 || d === shape[i]);
  if (!fits) {
    throw new InvocationError(400, `Input "${spec.name}" expects shape [${expected.join(', ')}] of ${spec.type}; got [${shape.join(', ')}].`);
  }
  const data = (ARRAYS[spec.type] as (n: number) => TypedArray)(flat.length);
  for (let i = 0; i < flat.length; i++) {
    const v = flat[i];
    if (typeof v !== 'number' && typeof v !== 'boolean') {
      throw new InvocationError(400, `Input "${spec.name}" holds ${JSON.stringify(v)} at position ${i}; ${spec.type} needs numbers.`);
    }
    if (data instanceof BigInt64Array) {
      if (!Number.isInteger(v)) throw new InvocationError(400, `Input "${spec.name}" is int64 but holds ${String(v)} at position ${i}.`);
      data[i] = BigInt(v);
    } else {
      data[i] = Number(v);
    }
  }
  return new ort.Tensor(spec.type as 'float32', data as Float32Array, shape);
}

/** A tensor as nested arrays of JSON numbers (int64 as numbers, bool as true/false). */
function nest(t: ort.Tensor): unknown {
  const data = t.data as ArrayLike<number | bigint | string>;
  const isBool = t.type === 'bool';
  const item = (i: number): unknown => {
    const v = data[i];
    if (typeof v === 'bigint') return Number(v);
    return isBool ? v === 1 : v;
  };
  const dims = t.dims;
  if (dims.length === 0) return item(0);
  let index = 0;
  const build = (depth: number): unknown[] => {
    const n = dims[depth] as number;
    const out = new Array<unknown>(n);
    for (let i = 0; i < n; i++) out[i] = depth === dims.length - 1 ? item(index++) : build(depth + 1);
    return out;
  };
  return build(0);
}
