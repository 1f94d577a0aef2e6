// The in-memory form of an XGBoost model that every reader produces and the evaluator consumes.

export interface Tree {
  /** Child node ids; -1 marks a leaf. */
  readonly left: Int32Array;
  readonly right: Int32Array;
  readonly feature: Int32Array;
  /** Split condition of an inner node, value of a leaf (float32, as XGBoost stores them). */
  readonly value: Float32Array;
  readonly defaultLeft: Uint8Array;
  /** Categories of a categorical split, by node id; those categories go right. */
  readonly categories: ReadonlyMap<number, readonly number[]>;
}

export interface XgbModel {
  readonly objective: string;
  /** 0 for single-output objectives, as XGBoost records it. */
  readonly numClass: number;
  readonly numFeature: number;
  /** base_score as the user gave it (probability space for logistic objectives). */
  readonly baseScore: number;
  readonly booster: 'gbtree' | 'dart' | 'gblinear';
  readonly trees: readonly Tree[];
  /** The output group (class) of each tree. */
  readonly treeInfo: readonly number[];
  readonly numParallelTree: number;
  /** dart: each tree's output is scaled by its weight at inference. */
  readonly weightDrop?: Float32Array | undefined;
  /** gblinear: (numFeature + 1) × groups, the bias row last. */
  readonly linearWeights?: Float32Array | undefined;
  /** SageMaker's container predicts with this many trees per group when the model records it. */
  readonly bestNtreeLimit?: number | undefined;
  readonly format: 'json' | 'ubjson' | 'binary' | 'pickle';
}

export class ModelFormatError extends Error {}

