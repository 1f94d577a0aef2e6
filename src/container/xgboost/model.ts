// One in-memory form for every XGBoost model format: the trees (or linear weights) and what
// prediction needs to know about them. Readers for JSON, UBJSON, the legacy binary format and pickled
// Boosters all produce it; the evaluator (compile.ts) only sees this.
import { decodeUbjson } from './ubjson.js';
import { boosterBytesFromPickle } from './pickle.js';
import { readLegacyBinary } from './legacy.js';
import { ModelFormatError } from './types.js';
import type { Tree, XgbModel } from './types.js';

export { ModelFormatError };
export type { Tree, XgbModel };

type Json = Record<string, unknown>;

/** JSON as XGBoost writes it, which may contain bare NaN and Infinity tokens. */
function parseXgbJson(text: string): unknown {
  const cleaned = text.replace(/([:,[]\s*)(-?)(NaN|Infinity)(?=\s*[,\]}])/g, (_m, pre: string, sign: string, word: string) => `${pre}"__${sign}${word}__"`);
  return JSON.parse(cleaned, (_k, v: unknown) => {
    if (v === '__NaN__' || v === '__-NaN__') return NaN;
    if (v === '__Infinity__') return Infinity;
    if (v === '__-Infinity__') return -Infinity;
    return v;
  });
}

function nums(v: unknown, what: string): ArrayLike<number> {
  if (Array.isArray(v) || ArrayBuffer.isView(v)) return v as ArrayLike<number>;
  throw new ModelFormatError(`${what} is missing or not an array`);
}

function num(v: unknown, what: string): number {
  const n = typeof v === 'string' ? Number(v) : typeof v === 'number' ? v : NaN;
  if (Number.isNaN(n)) throw new ModelFormatError(`${what} is missing or not a number`);
  return n;
}

function treeFromJson(t: Json, index: number): Tree {
  const at = (k: string) => nums(t[k], `tree ${index} ${k}`);
  const left = Int32Array.from(at('left_children'));
  const n = left.length;
  const categories = new Map<number, number[]>();
  const catNodes = t['categories_nodes'] ? nums(t['categories_nodes'], 'categories_nodes') : [];
  if (catNodes.length > 0) {
    const segments = at('categories_segments');
    const sizes = at('categories_sizes');
    const cats = at('categories');
    for (let i = 0; i < catNodes.length; i++) {
      const start = segments[i] as number;
      categories.set(catNodes[i] as number, Array.from({ length: sizes[i] as number }, (_, j) => cats[start + j] as number));
    }
  }
  const tree: Tree = {
    left,
    right: Int32Array.from(at('right_children')),
    feature: Int32Array.from(at('split_indices')),
    value: Float32Array.from(at('split_conditions')),
    defaultLeft: Uint8Array.from(at('default_left'), (x) => (x ? 1 : 0)),
    categories,
  };
  for (const k of ['right', 'feature', 'value', 'defaultLeft'] as const) {
    if (tree[k].length !== n) throw new ModelFormatError(`tree ${index} has ${n} nodes but ${tree[k].length} entries in ${k}`);
  }
  return tree;
}

/** The learner object of XGBoost's JSON schema (also what UBJSON and 1.x pickles hold). */
export function fromLearner(root: unknown, format: XgbModel['format']): XgbModel {
  const doc = (root as Json | undefined)?.['Model'] ?? root; // pickles hold {"Config": …, "Model": …}
  const learner = (doc as Json | undefined)?.['learner'] as Json | undefined;
  if (!learner) throw new ModelFormatError('there is no "learner" object; this is not an XGBoost model');
  const param = learner['learner_model_param'] as Json;
  const objName = (learner['objective'] as Json | undefined)?.['name'];
  const objective = typeof objName === 'string' ? objName : '';
  const gb = learner['gradient_booster'] as Json;
  const gbName = gb?.['name'];
  const name = typeof gbName === 'string' ? gbName : '';
  const attributes = (learner['attributes'] ?? {}) as Json;
  const base = {
    objective,
    numClass: num(param?.['num_class'], 'num_class'),
    numFeature: num(param?.['num_feature'], 'num_feature'),
    baseScore: num(param?.['base_score'], 'base_score'),
    bestNtreeLimit: attributes['best_ntree_limit'] !== undefined ? Number(attributes['best_ntree_limit']) : undefined,
    format,
  };
  if (name === 'gblinear') {
    const weights = Float32Array.from(nums((gb['model'] as Json)['weights'], 'gblinear weights'));
    return { ...base, booster: 'gblinear', trees: [], treeInfo: [], numParallelTree: 1, linearWeights: weights };
  }
  const treesModel = (name === 'dart' ? (gb['gbtree'] as Json)['model'] : gb['model']) as Json;
  if (name !== 'gbtree' && name !== 'dart') throw new ModelFormatError(`booster "${name}" is not one berth evaluates (gbtree, dart, gblinear)`);
  const trees = (treesModel['trees'] as Json[]).map((t, i) => treeFromJson(t, i));
  const mparam = treesModel['gbtree_model_param'] as Json;
  return {
    ...base,
    booster: name,
    trees,
    treeInfo: Array.from(nums(treesModel['tree_info'], 'tree_info')),
    numParallelTree: Number(mparam?.['num_parallel_tree'] ?? 1) || 1,
    weightDrop: name === 'dart' ? Float32Array.from(nums(gb['weight_drop'], 'weight_drop')) : undefined,
  };
}

/** Reads a model file of any supported format, telling them apart by content as XGBoost does. */
export function readModel(bytes: Uint8Array): XgbModel {
  if (bytes.length === 0) throw new ModelFormatError('the file is empty');
  if (bytes[0] === 0x80) {
    const handle = boosterBytesFromPickle(bytes);
    return { ...readModel(handle), format: 'pickle' };
  }
  if (bytes[0] === 0x7b) {
    // '{' then a UBJSON length marker or an optimised-container marker, else text JSON.
    const second = bytes[1];
    if (second !== undefined && 'iUIlL$#'.includes(String.fromCharCode(second))) return fromLearner(decodeUbjson(bytes), 'ubjson');
    let text: string;
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    } catch {
      throw new ModelFormatError('the file starts like JSON but is not UTF-8 text');
    }
    let parsed: unknown;
    try {
      parsed = parseXgbJson(text);
    } catch (err) {
      throw new ModelFormatError(`the file is not valid JSON: ${(err as Error).message}`);
    }
    return fromLearner(parsed, 'json');
  }
  return readLegacyBinary(bytes);
}
