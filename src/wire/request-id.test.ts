import { test } from 'node:test';
import assert from 'node:assert/strict';
import { nextRequestId } from './request-id.js';

test('request ids are version-4 UUIDs, all different', () => {
  const ids = Array.from({ length: 10_000 }, nextRequestId);
  for (const id of ids.slice(0, 100)) assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.equal(new Set(ids).size, ids.length);
});
