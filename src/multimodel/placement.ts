// Where a model goes first: rendezvous (highest random weight) hashing of the model's key against
// each instance id. Every router computes the same order from the same instances, and an instance
// that comes or goes moves only the models that rank it first.
import { createHash } from 'node:crypto';

export function rendezvous<T extends { readonly id: string }>(items: readonly T[], key: string): T[] {
  const scored = items.map((item) => ({ item, score: createHash('sha1').update(item.id).update('\0').update(key).digest().readBigUInt64BE(0) }));
  scored.sort((a, b) => (a.score === b.score ? a.item.id.localeCompare(b.item.id) : a.score > b.score ? -1 : 1));
  return scored.map((s) => s.item);
}
