// JSON and CSV, the content types every built-in runtime speaks, with the inference toolkit's rules:
// `Accept` missing or `*/*` means the default; a list means the first supported type.
import { InvocationError } from './runtime.js';

export const JSON_TYPE = 'application/json';
export const CSV_TYPE = 'text/csv';

/** The media type without parameters, lower-cased: `text/csv; charset=utf-8` → `text/csv`. */
export function mediaType(contentType: string | undefined): string {
  return (contentType ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
}

/** The first type of `accept` that `supported` has; the default for a missing or wildcard Accept. */
export function negotiate(accept: string | undefined, supported: readonly string[], fallback: string): string {
  if (accept === undefined || accept.trim() === '') return fallback;
  for (const part of accept.split(',')) {
    const t = mediaType(part);
    if (t === '*/*') return fallback;
    if (supported.includes(t)) return t;
  }
  throw new InvocationError(406, `Accept "${accept}" names no type this model can answer with; use one of: ${supported.join(', ')}.`);
}

export function parseJson(body: Buffer): unknown {
  try {
    return JSON.parse(body.toString('utf8'));
  } catch (err) {
    throw new InvocationError(400, `The body is not valid JSON: ${(err as Error).message}`);
  }
}

/** CSV rows of numbers; empty lines are skipped. Rows keep their own length. */
export function parseCsv(body: Buffer): number[][] {
  const rows: number[][] = [];
  const lines = body.toString('utf8').split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = (lines[i] as string).trim();
    if (line === '') continue;
    const cells = line.split(',');
    const row = new Array<number>(cells.length);
    for (let j = 0; j < cells.length; j++) {
      const cell = (cells[j] as string).trim();
      const n = cell === '' ? NaN : Number(cell);
      if (Number.isNaN(n) && cell.toLowerCase() !== 'nan') {
        throw new InvocationError(400, `CSV line ${i + 1}, column ${j + 1} is not a number: "${cell}".`);
      }
      row[j] = n;
    }
    rows.push(row);
  }
  if (rows.length === 0) throw new InvocationError(400, 'The CSV body has no rows.');
  return rows;
}

/** Rows as CSV: a 2-D array one row per line, a 1-D array one value per line, a scalar alone. */
export function toCsv(value: unknown): string {
  if (!Array.isArray(value)) return `${String(value)}\n`;
  return value.map((row) => (Array.isArray(row) ? row.map((v) => (Array.isArray(v) ? JSON.stringify(v) : String(v))).join(',') : String(row))).join('\n') + '\n';
}
