// The SageMaker XGBoost algorithm container's serving behaviour (container-contracts.md §5) on berth's
// own evaluator: every regular, non-dot file of the model folder is a model (several average, or vote
// for label objectives), requests are CSV, libsvm or RecordIO-protobuf, answers follow Accept and
// SAGEMAKER_INFERENCE_OUTPUT, and the status codes are the container's: 204, 400, 406, 415.
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { mediaType } from '../codecs.js';
import { InvocationError } from '../runtime.js';
import type { InvocationInput, InvocationOutput, Runtime } from '../runtime.js';
import type { Matrix } from './compile.js';
import { ParallelModel } from './parallel.js';
import { decodeRecordio, encodeRecordio } from './recordio.js';

export interface XgboostOptions {
  /** SAGEMAKER_INFERENCE_ENSEMBLE: several model files average (true, the default) or the first serves. */
  readonly ensemble: boolean;
  /** SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT (the container's default: text/csv). */
  readonly defaultAccept: string;
  /** SAGEMAKER_INFERENCE_OUTPUT, comma-separated keys; undefined for the plain formats. */
  readonly inferenceOutput?: string | undefined;
  /** SAGEMAKER_PROGRAM: set, it selects framework mode, which is the Python container's. */
  readonly program?: string | undefined;
  /** Threads for large batches (this one included). */
  readonly threads: number;
  /**
   * Served as one model of a multi-model container: the answers of SageMaker's XGBoost MME handler
   * (container-contracts.md §5.8), which differ from the single-model server's.
   */
  readonly multiModel?: boolean;
}

const CSV = 'text/csv';
const LIBSVM = ['text/libsvm', 'text/x-libsvm', 'libsvm'];
const RECORDIO = ['application/x-recordio-protobuf', 'recordio-protobuf'];
const ACCEPTS = ['application/json', 'application/jsonlines', 'application/x-recordio-protobuf', 'text/csv'];

// SageMaker's selectable inference keys, by objective (serve_utils.VALID_OBJECTIVES).
const CLASSIFICATION = ['predicted_label', 'labels', 'probability', 'probabilities', 'raw_score', 'raw_scores'];
const VALID_KEYS: Readonly<Record<string, readonly string[]>> = {
  'reg:squarederror': ['predicted_score'],
  'reg:logistic': ['predicted_score'],
  'reg:gamma': ['predicted_score'],
  'reg:tweedie': ['predicted_score'],
  'binary:logistic': CLASSIFICATION,
  'binary:logitraw': ['predicted_label', 'labels', 'raw_score', 'raw_scores'],
  'binary:hinge': ['predicted_label', 'labels', 'raw_score', 'raw_scores'],
  'multi:softmax': ['predicted_label', 'labels', 'raw_score', 'raw_scores'],
  'multi:softprob': CLASSIFICATION,
};

type Prediction = number | number[];

export class XgboostRuntime implements Runtime {
  private models: ParallelModel[] = [];

  constructor(private readonly o: XgboostOptions) {}

  async load(modelDir: string): Promise<void> {
    if (this.o.program) {
      throw new Error(`SAGEMAKER_PROGRAM=${this.o.program} selects XGBoost framework mode (your own inference.py), which runs on berth's Python container; berth/xgboost serves models in algorithm mode, without SAGEMAKER_PROGRAM`);
    }
    const names = (await readdir(modelDir)).filter((n) => !n.startsWith('.')).sort();
    const files: string[] = [];
    for (const n of names) if ((await stat(join(modelDir, n))).isFile()) files.push(n);
    if (files.length === 0) throw new Error(`no model file in ${modelDir}; the artifact must hold the model (for example xgboost-model) at its top level`);
    for (const f of this.o.ensemble ? files : files.slice(0, 1)) {
      try {
        this.models.push(new ParallelModel(await readFile(join(modelDir, f)), this.o.threads));
      } catch (err) {
        throw new Error(`Model ${f} cannot be loaded: ${(err as Error).message}`, { cause: err });
      }
    }
  }

  async unload(): Promise<void> {
    await Promise.all(this.models.map((m) => m.close()));
    this.models = [];
  }

  async invoke(input: InvocationInput): Promise<InvocationOutput> {
    if (input.body.length === 0 || input.body.toString('latin1').trim() === '') {
      return { status: 204, body: '', contentType: 'text/plain' };
    }
    const x = this.parse(input);
    const first = (this.models[0] as ParallelModel).compiled;
    if (x.cols > first.model.numFeature) {
      throw new InvocationError(400, `Unable to evaluate payload provided: Feature size of ${mediaType(input.contentType) || CSV} inference data ${x.cols} is not consistent with feature size of trained model ${first.model.numFeature}.`);
    }
    const predictions = await this.predict(x);
    const accept = this.accept(input.accept);
    return this.encode(predictions, accept);
  }

  private parse(input: InvocationInput): Matrix {
    const type = mediaType(input.contentType);
    // A request without Content-Type is libsvm, the algorithm's documented default.
    const kind = type === '' || LIBSVM.includes(type) ? 'libsvm' : type === CSV || type === 'csv' ? 'csv' : RECORDIO.includes(type) ? 'recordio' : undefined;
    if (!kind) {
      throw new InvocationError(415, `Content-type ${input.contentType ?? ''} is not supported. Supported content types: text/csv, text/libsvm, application/x-recordio-protobuf.`);
    }
    const labelSize = /label_size=(\d+)/.exec(input.contentType ?? '')?.[1];
    if (kind === 'csv' && labelSize !== undefined && labelSize !== '1') {
      throw new InvocationError(415, `Loading csv data failed: label_size=${labelSize} is not supported; inference CSV has no label column.`);
    }
    try {
      if (kind === 'csv') return csvMatrix(input.body.toString('utf8'));
      if (kind === 'libsvm') return libsvmMatrix(input.body.toString('utf8'));
      const { rows, cols } = decodeRecordio(input.body);
      return toMatrix(rows, cols);
    } catch (err) {
      if (err instanceof InvocationError) throw err;
      throw new InvocationError(415, `Loading ${kind} data failed with Exception, please ensure data is in ${kind} format: ${(err as Error).message}`);
    }
  }

  private async predict(x: Matrix): Promise<Prediction[]> {
    const outs = await Promise.all(this.models.map((m) => m.predict(x)));
    const first = (this.models[0] as ParallelModel).compiled;
    const width = first.width;
    const objective = first.model.objective;
    const vote = objective === 'multi:softmax' || objective === 'binary:hinge';
    const rows: Prediction[] = [];
    for (let r = 0; r < x.rows; r++) {
      const row: number[] = [];
      for (let c = 0; c < width; c++) {
        const values = outs.map((o) => o[r * width + c] as number);
        row.push(values.length === 1 ? (values[0] as number) : vote ? mode(values) : Math.fround(values.reduce((a, b) => a + b, 0) / values.length));
      }
      rows.push(width === 1 ? (row[0] as number) : row);
    }
    return rows;
  }

  private accept(accept: string | undefined): string {
    const t = mediaType(accept);
    const chosen = t === '' || t === '*/*' ? mediaType(this.o.defaultAccept) : t;
    if (this.o.multiModel && chosen !== 'application/json' && chosen !== CSV) {
      throw new InvocationError(415, `Accept type ${accept ?? ''} is not supported. Please use supported accept types: [application/json, text/csv].`);
    }
    if (!ACCEPTS.includes(chosen)) {
      throw new InvocationError(406, `Accept type ${accept ?? ''} is not supported. Please use supported accept types: [${ACCEPTS.join(', ')}].`);
    }
    return chosen;
  }

  private encode(predictions: Prediction[], accept: string): InvocationOutput {
    if (this.o.multiModel) {
      // SageMaker's MME handler: JSON is a bare list, and CSV one comma-joined line (rows of a
      // multi-class answer go on lines of their own, where SageMaker's would print arrays).
      if (accept === 'application/json') return { body: JSON.stringify(predictions), contentType: accept };
      const line = (p: Prediction) => (Array.isArray(p) ? p.map(f32String).join(',') : f32String(p));
      const multi = predictions.some(Array.isArray);
      return { body: multi ? predictions.map(line).join('\n') : predictions.map(line).join(','), contentType: CSV };
    }
    if (this.o.inferenceOutput !== undefined) return this.selectable(predictions, accept);
    switch (accept) {
      case 'application/json':
        return { body: JSON.stringify({ predictions: predictions.map((p) => ({ score: p })) }), contentType: accept };
      case 'application/jsonlines':
        return { body: predictions.map((p) => `${JSON.stringify({ score: p })}\n`).join(''), contentType: accept };
      case 'application/x-recordio-protobuf':
        return { body: encodeRecordio(predictions.map((p) => ({ score: Array.isArray(p) ? p : [p] }))), contentType: accept };
      default:
        return { body: predictions.map((p) => (Array.isArray(p) ? p.map(f32String).join(',') : f32String(p))).join('\n') + '\n', contentType: CSV };
    }
  }

  /** SAGEMAKER_INFERENCE_OUTPUT: the requested keys per prediction, NaN for keys the objective lacks. */
  private selectable(predictions: Prediction[], accept: string): InvocationOutput {
    const model = (this.models[0] as ParallelModel).compiled.model;
    const keys = (this.o.inferenceOutput as string).replace(/\s/g, '').toLowerCase().split(',').filter(Boolean);
    const valid = VALID_KEYS[model.objective];
    if (!valid) throw new InvocationError(500, `Objective \`${model.objective}\` unsupported for selectable inference predictions.`);
    const records = predictions.map((p) => {
      const out: Record<string, number | number[]> = {};
      for (const k of keys) out[k] = valid.includes(k) ? selected(k, model.objective, model.numClass, p) : NaN;
      return out;
    });
    switch (accept) {
      case 'application/json':
        return { body: jsonWithNaN({ predictions: records }), contentType: accept };
      case 'application/jsonlines':
        return { body: records.map((r) => `${jsonWithNaN(r)}\n`).join(''), contentType: accept };
      case 'application/x-recordio-protobuf':
        return { body: encodeRecordio(records.map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, Array.isArray(v) ? v : [v]])))), contentType: accept };
      default:
        return {
          body: records.map((r) => keys.map((k) => {
            const v = r[k] as number | number[];
            return Array.isArray(v) ? `"[${v.map(pyFloat).join(', ')}]"` : pyFloat(v);
          }).join(',')).join('\n'),
          contentType: CSV,
        };
    }
  }
}

function selected(key: string, objective: string, numClass: number, p: Prediction): number | number[] {
  const v = Array.isArray(p) ? p : [p];
  const scalar = v[0] as number;
  switch (key) {
    case 'predicted_score': return scalar;
    case 'labels': return objective.startsWith('binary:') ? [0, 1] : Array.from({ length: numClass }, (_, i) => i);
    case 'predicted_label':
      if (objective === 'multi:softprob') return v.indexOf(Math.max(...v));
      if (objective === 'binary:logistic') return scalar > 0.5 ? 1 : 0;
      if (objective === 'binary:logitraw') return scalar > 0 ? 1 : 0;
      return scalar;
    case 'probability': case 'raw_score':
      return objective === 'multi:softprob' ? Math.max(...v) : scalar;
    case 'probabilities': case 'raw_scores':
      return objective === 'multi:softprob' ? v : [1 - scalar, scalar];
    default: return NaN;
  }
}

function mode(values: number[]): number {
  const counts = new Map<number, number>();
  for (const v of values) counts.set(v, (counts.get(v) ?? 0) + 1);
  let best = values[0] as number;
  for (const [v, n] of counts) if (n > (counts.get(best) ?? 0) || (n === counts.get(best) && v < best)) best = v;
  return best;
}

/** Shortest decimal that reads back as the same float32, as numpy prints float32 values. */
export function f32String(v: number): string {
  if (!Number.isFinite(v)) return Number.isNaN(v) ? 'nan' : v > 0 ? 'inf' : '-inf';
  for (let p = 1; p <= 9; p++) {
    const s = v.toPrecision(p);
    if (Math.fround(Number(s)) === v) return String(Number(s));
  }
  return String(v);
}

/** A number as Python's repr writes it in the container's CSV (`nan` for NaN). */
function pyFloat(v: number): string {
  return Number.isNaN(v) ? 'nan' : String(v);
}

/** JSON as Python's json.dumps writes it: NaN stays a bare NaN, as the container sends it. */
function jsonWithNaN(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => (typeof v === 'number' && Number.isNaN(v) ? '__NaN__' : v)).replace(/"__NaN__"/g, 'NaN');
}

/** CSV rows without a label column; the delimiter is sniffed from the first line as the container does. */
function csvMatrix(text: string): Matrix {
  const lines = text.trim().split(/\r?\n/).filter((l) => l.trim() !== '');
  const first = (lines[0] ?? '').slice(0, 512);
  const delimiter = [',', '\t', ';', '|', ' '].find((d) => first.includes(d)) ?? ',';
  const rows = lines.map((l, i) => l.split(delimiter).map((cell, j) => {
    const c = cell.trim();
    if (c === '') return NaN;
    const n = Number(c);
    if (Number.isNaN(n) && c.toLowerCase() !== 'nan') throw new InvocationError(415, `Loading csv data failed with Exception, please ensure data is in csv format: line ${i + 1}, column ${j + 1} is not a number: "${c}"`);
    return n;
  }));
  return toMatrix(rows, Math.max(...rows.map((r) => r.length)));
}

/** libsvm rows `label idx:value …`; labels are ignored; 1-based indices are shifted to 0-based. */
function libsvmMatrix(text: string): Matrix {
  const lines = text.trim().split(/\r?\n/);
  const parsed = lines.map((l, i) => l.trim().split(/\s+/).filter((t) => t.includes(':')).map((t) => {
    const [k, v] = t.split(':');
    const index = Number(k);
    const value = Number(v);
    if (!Number.isInteger(index) || index < 0 || Number.isNaN(value)) throw new InvocationError(415, `Loading libsvm data failed with Exception, please ensure data is in libsvm format: line ${i + 1} has "${t}"`);
    return [index, value] as const;
  }));
  const all = parsed.flat();
  const shift = all.length > 0 && Math.min(...all.map(([k]) => k)) >= 1 ? 1 : 0;
  const cols = all.reduce((m, [k]) => Math.max(m, k - shift + 1), 0);
  const rows = parsed.map((entries) => {
    const row = new Array<number>(cols).fill(NaN);
    for (const [k, v] of entries) row[k - shift] = v;
    return row;
  });
  return toMatrix(rows, cols);
}

function toMatrix(rows: number[][], cols: number): Matrix {
  const data = new Float32Array(rows.length * cols).fill(NaN);
  rows.forEach((r, i) => r.forEach((v, j) => { data[i * cols + j] = v; }));
  return { data, rows: rows.length, cols };
}
