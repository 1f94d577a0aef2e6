// Every fixture model, in every format, predicts what the xgboost library predicted for the same rows.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { compile } from './compile.js';
import { readModel } from './model.js';

const DIR = resolve(import.meta.dirname, '..', '..', '..', '..', 'test', 'fixtures', 'xgboost');
interface Expected { models: Record<string, { files: string[]; objective: string; num_class: number; rows: string; predictions: (number | number[])[] }> }
const expected = JSON.parse(readFileSync(join(DIR, 'expected.json'), 'utf8')) as Expected;

export function readCsvMatrix(path: string): { data: Float32Array; rows: number; cols: number } {
  const lines = readFileSync(path, 'utf8').trim().split('\n');
  const cols = (lines[0] as string).split(',').length;
  const data = new Float32Array(lines.length * cols);
  lines.forEach((l, r) => l.split(',').forEach((v, c) => { data[r * cols + c] = v === '' ? NaN : Number(v); }));
  return { data, rows: lines.length, cols };
}

for (const [name, m] of Object.entries(expected.models)) {
  test(`xgboost ${name}: ${m.objective} predictions match xgboost in every format`, () => {
    const x = readCsvMatrix(join(DIR, m.rows));
    for (const file of m.files) {
      const model = readModel(readFileSync(join(DIR, 'models', file)));
      assert.equal(model.objective, m.objective, file);
      for (const engine of ['wasm', 'js'] as const) {
      const c = compile(model, { engine });
      const out = c.predict(x);
      const want = m.predictions.flat();
      assert.equal(out.length, want.length, `${file}: ${out.length} outputs, expected ${want.length}`);
      for (let i = 0; i < want.length; i++) {
        const w = want[i] as number;
        const got = out[i] as number;
        assert.ok(Math.abs(got - w) <= 1e-6 * Math.max(1, Math.abs(w)), `${file} (${engine}) output ${i}: berth ${got}, xgboost ${w}`);
      }
      }
    }
  });
}
