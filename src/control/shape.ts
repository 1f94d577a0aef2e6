// The subset of a botocore shape that berth needs to validate requests (see scripts/gen-shapes.mjs).
export type ShapeType =
  | 'string' | 'integer' | 'long' | 'float' | 'double' | 'boolean' | 'timestamp' | 'blob'
  | 'list' | 'map' | 'structure';

export interface Shape {
  readonly type: ShapeType;
  readonly min?: number;
  readonly max?: number;
  /** JavaScript translation of the pattern, anchored to the whole value. */
  readonly pattern?: string;
  /** The pattern as AWS prints it in its messages. */
  readonly awsPattern?: string;
  readonly enum?: readonly string[];
  readonly members?: Readonly<Record<string, string>>;
  readonly required?: readonly string[];
  readonly member?: string;
  readonly key?: string;
  readonly value?: string;
}
