// The texts of the errors SageMaker users already search for. Each is AWS's exact wording where it
// has been seen (wire-protocol.md §3.3), so scripts that match on a prefix keep working.
import { BerthError } from './registry.js';

export type ResourceKind = 'model' | 'endpoint configuration' | 'endpoint';

export function notFound(kind: ResourceKind, arn: string): BerthError {
  return new BerthError('ValidationException', `Could not find ${kind} "${arn}".`);
}

export function alreadyExists(kind: ResourceKind, arn: string): BerthError {
  return new BerthError('ValidationException', `Cannot create already existing ${kind} "${arn}".`);
}

export function endpointInProgress(arn: string): BerthError {
  return new BerthError('ValidationException', `Cannot update in-progress endpoint "${arn}".`);
}

export function invalid(message: string): BerthError {
  return new BerthError('ValidationException', message);
}

/** One constraint failure in Coral's format: `Value 'x' at 'a.1.member.b' failed to satisfy constraint: …`. */
export interface ConstraintViolation {
  readonly path: string;
  readonly value: unknown;
  readonly constraint: string;
}

export function constraintViolations(violations: readonly ConstraintViolation[]): BerthError {
  const n = violations.length;
  const head = n === 1 ? '1 validation error detected: ' : `${n} validation errors detected: `;
  const items = violations.map((v) => `Value ${renderValue(v.value)} at '${v.path}' failed to satisfy constraint: ${v.constraint}`);
  return new BerthError('ValidationException', head + items.join('; '));
}

// Coral prints strings in single quotes, `null` bare, and lists/maps in Java's toString style.
function renderValue(value: unknown): string {
  if (value === null || value === undefined) return 'null';
  if (typeof value === 'string') return `'${value}'`;
  if (typeof value === 'number' || typeof value === 'boolean') return `'${String(value)}'`;
  if (Array.isArray(value)) return `'[${value.map((v) => (typeof v === 'object' ? JSON.stringify(v) : String(v))).join(', ')}]'`;
  return `'${JSON.stringify(value)}'`;
}
