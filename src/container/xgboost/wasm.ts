// The XGBoost evaluator's fast engine: every tree becomes a WebAssembly function of nested f32
// comparisons over a block of rows, and one exported `run` walks the blocks and calls the trees in
// order. WebAssembly's f32 arithmetic is XGBoost's float arithmetic exactly (no rounding emulation),
// and its loads need no bounds checks, which makes it faster than generated JavaScript (bench/xgboost
// prints the ratio of the two engines on one thread).
// Categorical splits stay on the JavaScript engine (compile.ts).
import type { Tree, XgbModel } from './types.js';

/** Rows per block: one tree's code stays hot in the instruction cache for a block. */
const BLOCK = 8192;

const OP = {
  block: 0x02, loop: 0x03, if: 0x04, else: 0x05, end: 0x0b, br: 0x0c, brIf: 0x0d, call: 0x10, select: 0x1b,
  localGet: 0x20, localSet: 0x21, i32Const: 0x41, f32Const: 0x43, f32Load: 0x2a, f32Store: 0x38,
  i32Eqz: 0x45, i32LtS: 0x48, i32GeS: 0x4e, f32Lt: 0x5d, f32Ge: 0x60, i32Add: 0x6a, i32Sub: 0x6b, i32Mul: 0x6c,
  f32Add: 0x92, f32Mul: 0x94, void: 0x40, i32: 0x7f, f32: 0x7d,
} as const;

function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
  return out;
}

function sleb(n: number): number[] {
  const out: number[] = [];
  for (;;) {
    const b = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (b & 0x40) === 0) || (n === -1 && (b & 0x40) !== 0)) {
      out.push(b);
      return out;
    }
    out.push(b | 0x80);
  }
}

function f32Bytes(v: number): number[] {
  return Array.from(new Uint8Array(new Float32Array([v]).buffer));
}

function vec(items: number[][]): number[] {
  return [...uleb(items.length), ...items.flat()];
}

function section(id: number, bytes: number[]): number[] {
  return [id, ...uleb(bytes.length), ...bytes];
}

function name(s: string): number[] {
  return vec([...s].map((c) => [c.charCodeAt(0)]));
}

/**
 * One tree: params (x, rows, stride, out, outStride) in bytes; locals r (i32), lv (f32).
 * For each row: walk the tree to a leaf value, then out += leaf (× dart weight), in f32.
 */
function treeFunction(tree: Tree, weight: number | undefined): number[] {
  const [X, N, STRIDE, OUT, OSTRIDE, R, LV] = [0, 1, 2, 3, 4, 5, 6];
  const c: number[] = [];
  c.push(OP.i32Const, 0, OP.localSet, R);
  c.push(OP.block, OP.void, OP.loop, OP.void);
  c.push(OP.localGet, R, OP.localGet, N, OP.i32GeS, OP.brIf, 1);
  const emit = (node: number) => {
    const left = tree.left[node] as number;
    if (left < 0) {
      c.push(OP.f32Const, ...f32Bytes(tree.value[node] as number), OP.localSet, LV);
      return;
    }
    c.push(OP.localGet, X, OP.f32Load, 2, ...uleb(4 * (tree.feature[node] as number)));
    c.push(OP.f32Const, ...f32Bytes(tree.value[node] as number));
    // f32.lt is false for NaN (missing goes right); eqz(f32.ge) is true for NaN (missing goes left).
    if (tree.defaultLeft[node] === 1) c.push(OP.f32Ge, OP.i32Eqz);
    else c.push(OP.f32Lt);
    c.push(OP.if, OP.void);
    emit(left);
    c.push(OP.else);
    emit(tree.right[node] as number);
    c.push(OP.end);
  };
  emit(0);
  // out[0] = out[0] + lv (× weight)
  c.push(OP.localGet, OUT, OP.localGet, OUT, OP.f32Load, 2, 0, OP.localGet, LV);
  if (weight !== undefined) c.push(OP.f32Const, ...f32Bytes(weight), OP.f32Mul);
  c.push(OP.f32Add, OP.f32Store, 2, 0);
  c.push(OP.localGet, X, OP.localGet, STRIDE, OP.i32Add, OP.localSet, X);
  c.push(OP.localGet, OUT, OP.localGet, OSTRIDE, OP.i32Add, OP.localSet, OUT);
  c.push(OP.localGet, R, OP.i32Const, 1, OP.i32Add, OP.localSet, R);
  c.push(OP.br, 0, OP.end, OP.end, OP.end);
  const body = [...uleb(2), 1, OP.i32, 1, OP.f32, ...c];
  return [...uleb(body.length), ...body];
}

/** run(x, rows, stride, out): blocks of rows, every tree in order for each block. */
function runFunction(treeGroups: readonly number[], groups: number): number[] {
  const [X, ROWS, STRIDE, OUT, B, N] = [0, 1, 2, 3, 4, 5];
  const c: number[] = [];
  c.push(OP.i32Const, 0, OP.localSet, B);
  c.push(OP.block, OP.void, OP.loop, OP.void);
  c.push(OP.localGet, B, OP.localGet, ROWS, OP.i32GeS, OP.brIf, 1);
  // n = min(BLOCK, rows - b)
  c.push(OP.localGet, ROWS, OP.localGet, B, OP.i32Sub, OP.i32Const, ...sleb(BLOCK), OP.localGet, ROWS, OP.localGet, B, OP.i32Sub, OP.i32Const, ...sleb(BLOCK), OP.i32LtS, OP.select, OP.localSet, N);
  treeGroups.forEach((g, t) => {
    c.push(OP.localGet, X, OP.localGet, B, OP.localGet, STRIDE, OP.i32Mul, OP.i32Add);
    c.push(OP.localGet, N, OP.localGet, STRIDE);
    c.push(OP.localGet, OUT, OP.localGet, B, OP.i32Const, ...sleb(groups), OP.i32Mul, OP.i32Const, ...sleb(g), OP.i32Add, OP.i32Const, 4, OP.i32Mul, OP.i32Add);
    c.push(OP.i32Const, ...sleb(groups * 4));
    c.push(OP.call, ...uleb(t));
  });
  c.push(OP.localGet, B, OP.i32Const, ...sleb(BLOCK), OP.i32Add, OP.localSet, B);
  c.push(OP.br, 0, OP.end, OP.end, OP.end);
  const body = [...uleb(1), 2, OP.i32, ...c];
  return [...uleb(body.length), ...body];
}

export type WasmAccumulate = (x: Float32Array, rows: number, cols: number, margins: Float32Array) => void;

export function canUseWasm(model: XgbModel): boolean {
  return model.booster !== 'gblinear' && model.trees.every((t) => t.categories.size === 0);
}

/** Compiles the first `treeCount` trees; the result adds their outputs into `margins`. */
export function compileWasm(model: XgbModel, treeCount: number, groups: number): WasmAccumulate {
  const trees = model.trees.slice(0, treeCount);
  const treeType = [0x60, ...vec([[OP.i32], [OP.i32], [OP.i32], [OP.i32], [OP.i32]]), 0];
  const runType = [0x60, ...vec([[OP.i32], [OP.i32], [OP.i32], [OP.i32]]), 0];
  const types = section(1, vec([treeType, runType]));
  const imports = section(2, vec([[...name('e'), ...name('m'), 0x02, 0x00, ...uleb(1)]]));
  const funcs = section(3, vec([...trees.map(() => [0]), [1]]));
  const exports = section(7, vec([[...name('run'), 0x00, ...uleb(trees.length)]]));
  const code = section(10, vec([
    ...trees.map((t, i) => treeFunction(t, model.weightDrop?.[i])),
    runFunction(trees.map((_, i) => model.treeInfo[i] ?? 0), groups),
  ]));
  const bytes = new Uint8Array([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, ...types, ...imports, ...funcs, ...exports, ...code]);
  const memory = new WebAssembly.Memory({ initial: 1 });
  const instance = new WebAssembly.Instance(new WebAssembly.Module(bytes), { e: { m: memory } });
  const run = instance.exports['run'] as (x: number, rows: number, stride: number, out: number) => void;
  return (x, rows, cols, margins) => {
    const need = (rows * cols + margins.length) * 4;
    if (memory.buffer.byteLength < need) memory.grow(Math.ceil((need - memory.buffer.byteLength) / 65536));
    const heap = new Float32Array(memory.buffer);
    heap.set(x.subarray(0, rows * cols), 0);
    const outOffset = rows * cols;
    heap.set(margins, outOffset);
    run(0, rows, cols * 4, outOffset * 4);
    margins.set(heap.subarray(outOffset, outOffset + margins.length));
  };
}
