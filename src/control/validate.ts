// Validates a request body against its operation's input shape the way AWS's front end does: every
// violation is collected and reported in one ValidationException, in Coral's format, with the
// lowerCamelCase member path AWS prints (`productionVariants.1.member.variantName`). A member of the
// wrong JSON type is a SerializationException instead, as on AWS. Members the shape does not know are
// dropped, so what berth stores and echoes back is exactly the API's shape.
import { BerthError, constraintViolations } from '../errors/index.js';
import type { ConstraintViolation } from '../errors/index.js';
import type { Shape } from './shape.js';
import { SHAPES } from './shapes.generated.js';

const compiled = new Map<string, RegExp>();
function regex(shape: Shape): RegExp | undefined {
  if (shape.pattern === undefined) return undefined;
  let re = compiled.get(shape.pattern);
  if (!re) {
    re = new RegExp(shape.pattern, 'u');
    compiled.set(shape.pattern, re);
  }
  return re;
}

function lowerCamel(name: string): string {
  return name.charAt(0).toLowerCase() + name.slice(1);
}

function shapeOf(name: string): Shape {
  const shape = SHAPES[name];
  if (!shape) throw new Error(`unknown shape ${name}`);
  return shape;
}

class Walker {
  readonly violations: ConstraintViolation[] = [];

  walk(shapeName: string, value: unknown, path: string): unknown {
    const shape = shapeOf(shapeName);
    switch (shape.type) {
      case 'structure': return this.structure(shape, value, path);
      case 'list': return this.list(shape, value, path);
      case 'map': return this.map(shape, value, path);
      case 'string': return this.string(shape, value, path);
      case 'integer': case 'long': return this.number(shape, value, path, true);
      case 'float': case 'double': return this.number(shape, value, path, false);
      case 'boolean':
        if (typeof value !== 'boolean') throw typeError(path, 'a boolean', value);
        return value;
      case 'timestamp': return timestamp(value, path);
      case 'blob':
        if (typeof value !== 'string') throw typeError(path, 'a base64 string', value);
        return value;
    }
  }

  private structure(shape: Shape, value: unknown, path: string): Record<string, unknown> {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw typeError(path, 'an object', value);
    const input = value as Record<string, unknown>;
    const out: Record<string, unknown> = {};
    const members = shape.members ?? {};
    for (const [member, memberShape] of Object.entries(members)) {
      const memberPath = path ? `${path}.${lowerCamel(member)}` : lowerCamel(member);
      const v = input[member];
      if (v === undefined || v === null) {
        if (shape.required?.includes(member)) this.violations.push({ path: memberPath, value: null, constraint: 'Member must not be null' });
        continue;
      }
      out[member] = this.walk(memberShape, v, memberPath);
    }
    return out;
  }

  private list(shape: Shape, value: unknown, path: string): unknown[] {
    if (!Array.isArray(value)) throw typeError(path, 'a list', value);
    this.size(shape, value.length, value, path);
    return value.map((item, i) => this.walk(shape.member as string, item, `${path}.${i + 1}.member`));
  }

  private map(shape: Shape, value: unknown, path: string): Record<string, unknown> {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw typeError(path, 'a map', value);
    const entries = Object.entries(value as Record<string, unknown>);
    this.size(shape, entries.length, value, path);
    const out: Record<string, unknown> = {};
    for (const [k, v] of entries) {
      this.walk(shape.key as string, k, `${path}.key`);
      out[k] = this.walk(shape.value as string, v, `${path}.${k}`);
    }
    return out;
  }

  private string(shape: Shape, value: unknown, path: string): string {
    if (typeof value !== 'string') throw typeError(path, 'a string', value);
    // Coral measures length in UTF-16 code units like Java's String.length().
    this.size(shape, value.length, value, path);
    if (shape.enum && !shape.enum.includes(value)) {
      this.violations.push({ path, value, constraint: `Member must satisfy enum value set: [${shape.enum.join(', ')}]` });
    }
    const re = regex(shape);
    if (re && !re.test(value)) {
      this.violations.push({ path, value, constraint: `Member must satisfy regular expression pattern: ${shape.awsPattern ?? shape.pattern}` });
    }
    return value;
  }

  private number(shape: Shape, value: unknown, path: string, integral: boolean): number {
    if (typeof value !== 'number' || !Number.isFinite(value)) throw typeError(path, integral ? 'an integer' : 'a number', value);
    if (integral && !Number.isInteger(value)) throw typeError(path, 'an integer', value);
    if (shape.min !== undefined && value < shape.min) {
      this.violations.push({ path, value, constraint: `Member must have value greater than or equal to ${shape.min}` });
    }
    if (shape.max !== undefined && value > shape.max) {
      this.violations.push({ path, value, constraint: `Member must have value less than or equal to ${shape.max}` });
    }
    return value;
  }

  private size(shape: Shape, length: number, value: unknown, path: string): void {
    if (shape.min !== undefined && length < shape.min) {
      this.violations.push({ path, value, constraint: `Member must have length greater than or equal to ${shape.min}` });
    }
    if (shape.max !== undefined && length > shape.max) {
      this.violations.push({ path, value, constraint: `Member must have length less than or equal to ${shape.max}` });
    }
  }
}

function timestamp(value: unknown, path: string): number {
  // boto3 sends integer epoch seconds, the JS SDK fractional ones (wire-protocol.md §1.2); ISO strings
  // are accepted too because hand-written JSON often carries them.
  if (typeof value === 'number' && Number.isFinite(value)) return value;
  if (typeof value === 'string') {
    const n = Number(value);
    if (value.trim() !== '' && Number.isFinite(n)) return n;
    const ms = Date.parse(value);
    if (Number.isFinite(ms)) return ms / 1000;
  }
  throw typeError(path, 'a timestamp (epoch seconds)', value);
}

function describe(value: unknown): string {
  if (Array.isArray(value)) return 'a list';
  if (value === null) return 'null';
  return `a ${typeof value === 'object' ? 'map' : typeof value}`;
}

function typeError(path: string, expected: string, value: unknown): BerthError {
  const where = path === '' ? 'the request body' : `'${path}'`;
  return new BerthError('SerializationException', `Expected ${expected} at ${where} but found ${describe(value)}.`);
}

/**
 * Checks `input` against the named shape. Returns the input with unknown members removed and
 * timestamps normalised to epoch seconds; throws ValidationException or SerializationException.
 */
export function validateShape<T>(shapeName: string, input: unknown): T {
  const walker = new Walker();
  const value = walker.walk(shapeName, input ?? {}, '');
  if (walker.violations.length > 0) throw constraintViolations(walker.violations);
  return value as T;
}
