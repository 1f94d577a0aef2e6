// Persistence: the Store contract and its embedded SQLite implementation.
export { SqliteStore } from './sqlite.js';
export type { Store, StoredRecord, RecordKind, ListQuery, RecordChange, Tag } from './store.js';
