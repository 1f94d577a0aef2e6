// The contract every Store adapter must honour. An adapter's test file calls `storeConformance` with
// a factory; the embedded SQLite store is the first, a PostgreSQL store will be the next.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ListQuery, Store, StoredRecord } from './store.js';

const base: ListQuery = { sortBy: 'createdAt', sortOrder: 'desc', offset: 0, limit: 100 };

function rec(name: string, createdAt: number, status?: string): StoredRecord<{ n: string }> {
  return { kind: 'endpoint', name, arn: `arn:aws:sagemaker:us-east-1:123456789012:endpoint/${name.toLowerCase()}`, createdAt, updatedAt: createdAt, status, doc: { n: name } };
}

export function storeConformance(adapter: string, open: () => Promise<Store>): void {
  const withStore = (title: string, fn: (s: Store) => Promise<void>): void => {
    void test(`${adapter}: ${title}`, async (t) => {
      const s = await open();
      t.after(() => s.close());
      await fn(s);
    });
  };

  withStore('insert refuses a name taken in another case', async (s) => {
    assert.equal(await s.insert(rec('Alpha', 1)), true);
    assert.equal(await s.insert(rec('ALPHA', 2)), false);
    const got = await s.get<{ n: string }>('endpoint', 'alpha');
    assert.equal(got?.name, 'Alpha');
    assert.deepEqual(got?.doc, { n: 'Alpha' });
    assert.equal(await s.get('model', 'alpha'), undefined, 'kinds are separate namespaces');
  });

  withStore('update applies a change atomically and can decline', async (s) => {
    await s.insert(rec('e', 1, 'Creating'));
    const out = await s.update<{ n: string }>('endpoint', 'E', (cur) => ({ status: 'InService', doc: { n: `${cur.doc.n}!` }, updatedAt: 5 }));
    assert.equal(out?.status, 'InService');
    assert.deepEqual((await s.get('endpoint', 'e'))?.doc, { n: 'e!' });
    assert.equal((await s.get('endpoint', 'e'))?.updatedAt, 5);
    const same = await s.update('endpoint', 'e', () => undefined);
    assert.equal(same?.status, 'InService');
    assert.equal(await s.update('endpoint', 'missing', () => ({ status: 'x' })), undefined);
  });

  withStore('list sorts, filters and pages without overlap', async (s) => {
    for (const [i, n] of ['d', 'b', 'a', 'c', 'e'].entries()) await s.insert(rec(n, 10 + i, i % 2 ? 'InService' : 'Failed'));
    const byTime = await s.list('endpoint', base);
    assert.deepEqual(byTime.records.map((r) => r.name), ['e', 'c', 'a', 'b', 'd']);
    const byName = await s.list('endpoint', { ...base, sortBy: 'name', sortOrder: 'asc', limit: 2 });
    assert.deepEqual(byName.records.map((r) => r.name), ['a', 'b']);
    assert.equal(byName.more, true);
    const page2 = await s.list('endpoint', { ...base, sortBy: 'name', sortOrder: 'asc', limit: 2, offset: 2 });
    assert.deepEqual(page2.records.map((r) => r.name), ['c', 'd']);
    const last = await s.list('endpoint', { ...base, sortBy: 'name', sortOrder: 'asc', limit: 2, offset: 4 });
    assert.deepEqual(last.records.map((r) => r.name), ['e']);
    assert.equal(last.more, false);
    const failed = await s.list('endpoint', { ...base, statusEquals: 'Failed', sortOrder: 'asc' });
    assert.deepEqual(failed.records.map((r) => r.name), ['d', 'a', 'e']);
    const window = await s.list('endpoint', { ...base, createdAfter: 11, createdBefore: 13, sortOrder: 'asc' });
    assert.deepEqual(window.records.map((r) => r.name), ['b', 'a']);
    const contains = await s.list('endpoint', { ...base, nameContains: 'C' });
    assert.deepEqual(contains.records.map((r) => r.name), ['c']);
  });

  withStore('tags keep insertion order, replace in place, and go with the resource', async (s) => {
    const r = rec('t', 1);
    await s.insert(r);
    await s.addTags(r.arn, [{ Key: 'a', Value: '1' }, { Key: 'b', Value: '2' }]);
    await s.addTags(r.arn.toUpperCase(), [{ Key: 'a', Value: '3' }, { Key: 'c', Value: '4' }]);
    assert.deepEqual((await s.listTags(r.arn, 0, 10)).tags, [{ Key: 'a', Value: '3' }, { Key: 'b', Value: '2' }, { Key: 'c', Value: '4' }]);
    const page = await s.listTags(r.arn, 1, 1);
    assert.deepEqual(page, { tags: [{ Key: 'b', Value: '2' }], more: true });
    await s.deleteTags(r.arn, ['b', 'zzz']);
    assert.deepEqual((await s.listTags(r.arn, 0, 10)).tags.map((x) => x.Key), ['a', 'c']);
    assert.equal(await s.delete('endpoint', 'T'), true);
    assert.equal(await s.delete('endpoint', 't'), false);
    assert.deepEqual((await s.listTags(r.arn, 0, 10)).tags, []);
  });
}
