// docs/errors.md and the registry must list the same errors with the same attributes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ERRORS } from './registry.js';

test('docs/errors.md lists exactly the errors of the registry', () => {
  const doc = readFileSync(join(import.meta.dirname, '..', '..', '..', 'docs', 'errors.md'), 'utf8');
  const header = doc.indexOf('| Code | HTTP |');
  const table = doc.slice(header).split('\n\n')[0]?.split('\n').slice(2) ?? [];
  const rows = new Map(table.map((line) => {
    const cells = line.split('|').slice(1, -1).map((c) => c.trim());
    return [cells[0] as string, cells.slice(1)];
  }));
  assert.deepEqual([...rows.keys()].sort(), Object.keys(ERRORS).sort());
  for (const [code, spec] of Object.entries(ERRORS)) {
    const [status, fault, retry, api, when] = rows.get(code) ?? [];
    assert.equal(Number(status), spec.status, `${code} status`);
    assert.equal(fault, spec.fault, `${code} fault`);
    assert.equal(retry, spec.retryable ? 'yes' : 'no', `${code} retryable`);
    assert.equal(api, spec.api, `${code} api`);
    assert.equal(when, spec.when, `${code} description`);
  }
});
