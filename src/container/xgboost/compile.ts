// berth's XGBoost evaluator. Each tree becomes straight-line JavaScript (nested comparisons with its
// split values as literals), compiled once per model, so a prediction is a few dozen comparisons with
// no tree walking. Arithmetic follows XGBoost's CPU predictor in float32: the margin starts at the
// base score's margin, each tree's leaf is added in tree order with float32 rounding (dart scales it
// by the tree's weight first), and the objective's transform runs in float32 too.
import type { Tree, XgbModel } from './types.js';
import { canUseWasm, compileWasm } from './wasm.js';

/** Rows are a row-major Float32Array with NaN for a missing value. */
export interface Matrix {
  readonly data: Float32Array;
  readonly rows: number;
  readonly cols: number;
}

export interface CompiledModel {
  readonly model: XgbModel;
  /** Outputs per row: num_class for softprob, 1 otherwise. */
  readonly width: number;
  /** Predictions after the objective's transform, row-major, `width` per row. */
  predict(x: Matrix): Float32Array;
}

const f32 = Math.fround;

/** A float32 value as a JavaScript literal that reads back exactly. */
function lit(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (!Number.isFinite(v)) return v > 0 ? 'Infinity' : '-Infinity';
  return String(f32(v));
}

/** base_score (as the user gave it) → margin, as each objective's ProbToMargin does in float32. */
function baseMargin(model: XgbModel): number {
  const b = f32(model.baseScore);
  switch (model.objective) {
    case 'reg:logistic': case 'binary:logistic':
      return f32(-Math.log(f32(f32(1 / b) - 1)));
    case 'count:poisson': case 'reg:gamma': case 'reg:tweedie':
      return f32(Math.log(b));
    default:
      return b;
  }
}

/** The code of one tree as nested branches that assign its leaf value to `lv`. */
function treeCode(tree: Tree, catTables: string[]): string {
  const lines: string[] = [];
  const emit = (node: number, depth: number) => {
    const pad = ' '.repeat(depth + 1);
    const l = tree.left[node] as number;
    if (l < 0) {
      lines.push(`${pad}lv = ${lit(tree.value[node] as number)};`);
      return;
    }
    const f = tree.feature[node] as number;
    const dl = tree.defaultLeft[node] === 1;
    const cats = tree.categories.get(node);
    let goLeft: string;
    if (cats) {
      // Categories listed at the node go right; anything else (including an unseen or negative
      // category) goes left, and a missing value takes the default branch (XGBoost's Decision()).
      const max = cats.reduce((m, c) => Math.max(m, c), 0);
      const table = new Uint8Array(max + 1);
      for (const c of cats) table[c] = 1;
      const id = catTables.length;
      catTables.push(`const C${id} = new Uint8Array([${Array.from(table).join(',')}]);`);
      goLeft = `(v !== v ? ${dl} : !(v >= 0 && v < ${max + 1} && C${id}[v | 0] === 1))`;
    } else {
      // NaN fails every comparison: `v < c` sends a missing value right, `!(v >= c)` sends it left,
      // each in a single comparison.
      goLeft = dl ? `(!(v >= ${lit(tree.value[node] as number)}))` : `(v < ${lit(tree.value[node] as number)})`;
    }
    lines.push(`${pad}v = x[o + ${f}];`);
    lines.push(`${pad}if ${goLeft} {`);
    emit(l, depth + 1);
    lines.push(`${pad}} else {`);
    emit(tree.right[node] as number, depth + 1);
    lines.push(`${pad}}`);
  };
  emit(0, 0);
  return lines.join('\n');
}

/** How many trees SageMaker's container predicts with: best_ntree_limit iterations, else all. */
function treesUsed(model: XgbModel, groups: number): number {
  const perIteration = model.numParallelTree * groups;
  if (model.bestNtreeLimit && model.bestNtreeLimit > 0) {
    const iterations = Math.floor(model.bestNtreeLimit / model.numParallelTree);
    return Math.min(model.trees.length, iterations * perIteration);
  }
  return model.trees.length;
}

/** Trees per generated function: big enough to amortise calls, small enough for V8 to optimise. */
const CHUNK = 64;
/** Rows per block in the tree-major loop. */
const BLOCK = 256;

type Accumulate = (x: Float32Array, rows: number, cols: number, out: Float32Array) => void;

function compileTrees(model: XgbModel, groups: number): Accumulate[] {
  const n = treesUsed(model, groups);
  const chunks: Accumulate[] = [];
  for (let start = 0; start < n; start += CHUNK) {
    const end = Math.min(n, start + CHUNK);
    const tables: string[] = [];
    const fns: string[] = [];
    const calls: string[] = [];
    for (let t = start; t < end; t++) {
      const g = model.treeInfo[t] ?? 0;
      const w = model.weightDrop?.[t];
      const add = w === undefined ? 'lv' : `f32(lv * ${lit(w)})`;
      // One function per tree, looping over a block of rows with the tree inlined: no call per row,
      // and each row still sums its trees in tree order.
      fns.push(`function t${t}(x, b, e, cols, out) {\n for (let r = b, o = b * cols, p = b * ${groups}; r < e; r++, o += cols, p += ${groups}) {\n  let v, lv;\n${treeCode(model.trees[t] as Tree, tables)}\n  out[p + ${g}] = f32(out[p + ${g}] + ${add});\n }\n}`);
      calls.push(`  t${t}(x, b, e, cols, out);`);
    }
    // Tree-major over blocks of rows, as XGBoost's CPU predictor walks them: one tree's code stays
    // hot in the instruction cache for a block.
    const body = `${tables.join('\n')}\n${fns.join('\n')}\nreturn function (x, rows, cols, out) {\n for (let b = 0; b < rows; b += ${BLOCK}) {\n  const e = Math.min(rows, b + ${BLOCK});\n${calls.join('\n')}\n }\n};`;
    // The generated code is built only from numbers read out of the model (feature indices, split
    // values, leaf values, category tables), never from strings of the model file.
    // eslint-disable-next-line @typescript-eslint/no-implied-eval, @typescript-eslint/no-unsafe-call
    chunks.push(new Function('f32', body)(f32) as Accumulate);
  }
  return chunks;
}

function sigmoid(x: number): number {
  // XGBoost: 1.0f / (expf(min(-x, 88.7f)) + 1.0f + 1e-16f), all in float32.
  const e = f32(Math.exp(Math.min(f32(-x), 88.7)));
  return f32(1 / f32(e + 1));
}

function transform(model: XgbModel, margins: Float32Array, rows: number, groups: number): { out: Float32Array; width: number } {
  const obj = model.objective;
  if (obj === 'multi:softprob' || obj === 'multi:softmax') {
    if (obj === 'multi:softmax') {
      const out = new Float32Array(rows);
      for (let r = 0; r < rows; r++) {
        let best = 0;
        for (let g = 1; g < groups; g++) if ((margins[r * groups + g] as number) > (margins[r * groups + best] as number)) best = g;
        out[r] = best;
      }
      return { out, width: 1 };
    }
    for (let r = 0; r < rows; r++) {
      const o = r * groups;
      let max = margins[o] as number;
      for (let g = 1; g < groups; g++) max = Math.max(max, margins[o + g] as number);
      let sum = 0; // XGBoost sums the exponentials in double
      for (let g = 0; g < groups; g++) {
        const e = f32(Math.exp(f32((margins[o + g] as number) - max)));
        margins[o + g] = e;
        sum += e;
      }
      const s = f32(sum);
      for (let g = 0; g < groups; g++) margins[o + g] = f32((margins[o + g] as number) / s);
    }
    return { out: margins, width: groups };
  }
  const apply = ((): ((m: number) => number) | undefined => {
    switch (obj) {
      case 'reg:logistic': case 'binary:logistic': return sigmoid;
      case 'count:poisson': case 'reg:gamma': case 'reg:tweedie': return (m) => f32(Math.exp(m));
      case 'binary:hinge': return (m) => (m > 0 ? 1 : 0);
      default: return undefined; // reg:squarederror, binary:logitraw, rank:*, pseudohuber …: the margin itself
    }
  })();
  if (apply) for (let i = 0; i < margins.length; i++) margins[i] = apply(margins[i] as number);
  return { out: margins, width: groups };
}

function linearPredict(model: XgbModel, x: Matrix, groups: number, base: number): Float32Array {
  const w = model.linearWeights as Float32Array;
  const nf = model.numFeature;
  const out = new Float32Array(x.rows * groups);
  for (let r = 0; r < x.rows; r++) {
    const o = r * x.cols;
    for (let g = 0; g < groups; g++) {
      let s = f32((w[nf * groups + g] as number) + base);
      for (let f = 0; f < nf && f < x.cols; f++) {
        const v = x.data[o + f] as number;
        if (v === v) s = f32(s + f32(v * (w[f * groups + g] as number)));
      }
      out[r * groups + g] = s;
    }
  }
  return out;
}

export interface CompileOptions {
  /** `wasm` (the default where the model allows it) or `js`; categorical splits always use `js`. */
  readonly engine?: 'wasm' | 'js';
}

export function compile(model: XgbModel, options: CompileOptions = {}): CompiledModel {
  const groups = Math.max(1, model.numClass);
  const base = baseMargin(model);
  const wasm = (options.engine ?? 'wasm') === 'wasm' && canUseWasm(model);
  const chunks = model.booster === 'gblinear' ? [] : wasm ? [compileWasm(model, treesUsed(model, groups), groups)] : compileTrees(model, groups);
  const width = model.objective === 'multi:softmax' ? 1 : groups;
  return {
    model,
    width,
    predict(x: Matrix): Float32Array {
      let margins: Float32Array;
      if (model.booster === 'gblinear') {
        margins = linearPredict(model, x, groups, base);
      } else {
        margins = new Float32Array(x.rows * groups).fill(base);
        for (const c of chunks) c(x.data, x.rows, x.cols, margins);
      }
      return transform(model, margins, x.rows, groups).out;
    },
  };
}
