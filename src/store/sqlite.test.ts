import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteStore } from './sqlite.js';
import { storeConformance } from './store.conformance.js';

storeConformance('sqlite (memory)', () => Promise.resolve(new SqliteStore(':memory:')));

test('sqlite: committed writes survive reopening the file, in WAL mode', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'berth-store-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'nested', 'berth.db');
  const a = new SqliteStore(path);
  await a.insert({ kind: 'model', name: 'm', arn: 'arn:aws:sagemaker:us-east-1:123456789012:model/m', createdAt: 1, updatedAt: 1, doc: { x: 1 } });
  await a.addTags('arn:aws:sagemaker:us-east-1:123456789012:model/m', [{ Key: 'k', Value: 'v' }]);
  // No close: the process may die at any moment; the next open must see the committed rows.
  const b = new SqliteStore(path);
  t.after(() => Promise.all([a.close(), b.close()]));
  assert.deepEqual((await b.get('model', 'M'))?.doc, { x: 1 });
  assert.deepEqual((await b.listTags('arn:aws:sagemaker:us-east-1:123456789012:model/m', 0, 5)).tags, [{ Key: 'k', Value: 'v' }]);
  await b.addTags('arn:aws:sagemaker:us-east-1:123456789012:model/m', [{ Key: 'k2', Value: 'v' }]);
  assert.deepEqual((await b.listTags('arn:aws:sagemaker:us-east-1:123456789012:model/m', 0, 5)).tags.map((x) => x.Key), ['k', 'k2']);
});
