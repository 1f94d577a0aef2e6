// XGBoost's legacy binary model format (what `save_model("model.bin")` wrote before JSON, and what
// SageMaker's XGBoost 0.90–1.2 pickles wrap): little-endian C structs in a fixed order. Versions 1.0+
// prefix it with "binf"; older files start directly with the learner parameters.
import { ModelFormatError } from './types.js';
import type { Tree, XgbModel } from './types.js';

const LEARNER_PARAM_BYTES = 136; // LearnerModelParamLegacy
const GBTREE_PARAM_BYTES = 160; // GBTreeModelParam
const TREE_PARAM_BYTES = 148; // TreeParam
const NODE_BYTES = 20; // RegTree::Node
const STAT_BYTES = 16; // RTreeNodeStat
const GBLINEAR_PARAM_BYTES = 136; // GBLinearModelParam

export function readLegacyBinary(bytes: Uint8Array): XgbModel {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let pos = 0;
  const need = (n: number, what: string) => {
    if (pos + n > bytes.length) throw new ModelFormatError(`the binary model ends inside ${what} (byte ${pos} of ${bytes.length}); it is truncated or not an XGBoost model`);
  };
  const str = (what: string) => {
    need(8, what);
    const n = Number(view.getBigUint64(pos, true));
    pos += 8;
    if (n > 4096) throw new ModelFormatError(`${what} has an implausible length ${n}; this is not an XGBoost model`);
    need(n, what);
    pos += n;
    return new TextDecoder().decode(bytes.subarray(pos - n, pos));
  };

  if (bytes[0] === 0x62 && bytes[1] === 0x69 && bytes[2] === 0x6e && bytes[3] === 0x66) pos = 4; // "binf"
  need(LEARNER_PARAM_BYTES, 'the learner parameters');
  const baseScore = view.getFloat32(pos, true);
  const numFeature = view.getUint32(pos + 4, true);
  const numClass = view.getInt32(pos + 8, true);
  const containExtraAttrs = view.getInt32(pos + 12, true);
  pos += LEARNER_PARAM_BYTES;
  const objective = str('the objective name');
  const booster = str('the booster name');
  if (!/^[a-z]+:[a-z]+$/.test(objective)) throw new ModelFormatError(`"${objective.slice(0, 40)}" is not an objective name; this is not an XGBoost model`);

  if (booster === 'gblinear') {
    need(GBLINEAR_PARAM_BYTES, 'the gblinear parameters');
    pos += GBLINEAR_PARAM_BYTES;
    need(8, 'the linear weights');
    const n = Number(view.getBigUint64(pos, true));
    pos += 8;
    need(4 * n, 'the linear weights');
    const weights = new Float32Array(n);
    for (let i = 0; i < n; i++) weights[i] = view.getFloat32(pos + 4 * i, true);
    pos += 4 * n;
    return { objective, numClass, numFeature, baseScore, booster: 'gblinear', trees: [], treeInfo: [], numParallelTree: 1, linearWeights: weights, format: 'binary' };
  }
  if (booster !== 'gbtree' && booster !== 'dart') throw new ModelFormatError(`booster "${booster}" is not one berth evaluates (gbtree, dart, gblinear)`);

  need(GBTREE_PARAM_BYTES, 'the gbtree parameters');
  const numTrees = view.getInt32(pos, true);
  const numParallelTree = view.getInt32(pos + 4, true) || 1;
  pos += GBTREE_PARAM_BYTES;
  const trees: Tree[] = [];
  for (let t = 0; t < numTrees; t++) {
    need(TREE_PARAM_BYTES, `tree ${t}`);
    const numNodes = view.getInt32(pos + 4, true);
    pos += TREE_PARAM_BYTES;
    need(numNodes * (NODE_BYTES + STAT_BYTES), `tree ${t}`);
    const left = new Int32Array(numNodes);
    const right = new Int32Array(numNodes);
    const feature = new Int32Array(numNodes);
    const value = new Float32Array(numNodes);
    const defaultLeft = new Uint8Array(numNodes);
    for (let i = 0; i < numNodes; i++) {
      const o = pos + i * NODE_BYTES;
      left[i] = view.getInt32(o + 4, true);
      right[i] = view.getInt32(o + 8, true);
      const sindex = view.getUint32(o + 12, true);
      feature[i] = sindex & 0x7fffffff;
      defaultLeft[i] = sindex >>> 31;
      value[i] = view.getFloat32(o + 16, true);
    }
    pos += numNodes * (NODE_BYTES + STAT_BYTES);
    trees.push({ left, right, feature, value, defaultLeft, categories: new Map() });
  }
  need(4 * numTrees, 'the tree groups');
  const treeInfo = Array.from({ length: numTrees }, (_, i) => view.getInt32(pos + 4 * i, true));
  pos += 4 * numTrees;
  let weightDrop: Float32Array | undefined;
  if (booster === 'dart') {
    need(8, 'the dart weights');
    const n = Number(view.getBigUint64(pos, true));
    pos += 8;
    need(4 * n, 'the dart weights');
    weightDrop = new Float32Array(n);
    for (let i = 0; i < n; i++) weightDrop[i] = view.getFloat32(pos + 4 * i, true);
    pos += 4 * n;
  }
  let bestNtreeLimit: number | undefined;
  if (containExtraAttrs !== 0 && pos + 8 <= bytes.length) {
    const count = Number(view.getBigUint64(pos, true));
    pos += 8;
    for (let i = 0; i < count && i < 1000; i++) {
      const k = str('an attribute name');
      const v = str('an attribute value');
      if (k === 'best_ntree_limit') bestNtreeLimit = Number(v);
    }
  }
  return { objective, numClass, numFeature, baseScore, booster, trees, treeInfo, numParallelTree, weightDrop, bestNtreeLimit, format: 'binary' };
}
