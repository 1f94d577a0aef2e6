// The embedded store: one SQLite database in the data dir, in WAL mode, written by this one process.
// Every call is a single synchronous statement or transaction, so a `kill -9` at any moment leaves
// either the old or the new row, never half of one.
/* eslint-disable @typescript-eslint/require-await -- the Store contract is async so that networked
   stores can implement it; SQLite answers synchronously inside those async methods. */
import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { ListQuery, RecordChange, RecordKind, Store, StoredRecord, Tag } from './store.js';

interface Row {
  kind: RecordKind;
  name: string;
  arn: string;
  created_at: number;
  updated_at: number;
  status: string | null;
  doc: string;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS resources (
  kind TEXT NOT NULL,
  key TEXT NOT NULL,
  name TEXT NOT NULL,
  arn TEXT NOT NULL,
  created_at REAL NOT NULL,
  updated_at REAL NOT NULL,
  status TEXT,
  doc TEXT NOT NULL,
  PRIMARY KEY (kind, key)
);
CREATE TABLE IF NOT EXISTS tags (
  arn TEXT NOT NULL,
  key TEXT NOT NULL,
  value TEXT NOT NULL,
  seq INTEGER NOT NULL,
  PRIMARY KEY (arn, key)
);
`;

const SORT_COLUMN = { name: 'key', createdAt: 'created_at', status: 'status' } as const;

function toRecord<T>(row: Row): StoredRecord<T> {
  return {
    kind: row.kind,
    name: row.name,
    arn: row.arn,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    status: row.status ?? undefined,
    doc: JSON.parse(row.doc) as T,
  };
}

export class SqliteStore implements Store {
  private readonly db: Database.Database;
  private seq = 0;

  /** `path` is a file (created with its folder) or `:memory:`. */
  constructor(path: string) {
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
    this.db = new Database(path);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma('busy_timeout = 5000');
    this.db.exec(SCHEMA);
    const row = this.db.prepare('SELECT MAX(seq) AS m FROM tags').get() as { m: number | null };
    this.seq = row.m ?? 0;
  }

  async insert<T>(r: StoredRecord<T>): Promise<boolean> {
    const res = this.db
      .prepare('INSERT OR IGNORE INTO resources (kind, key, name, arn, created_at, updated_at, status, doc) VALUES (?, ?, ?, ?, ?, ?, ?, ?)')
      .run(r.kind, r.name.toLowerCase(), r.name, r.arn, r.createdAt, r.updatedAt, r.status ?? null, JSON.stringify(r.doc));
    return res.changes === 1;
  }

  async get<T>(kind: RecordKind, name: string): Promise<StoredRecord<T> | undefined> {
    const row = this.db.prepare('SELECT * FROM resources WHERE kind = ? AND key = ?').get(kind, name.toLowerCase()) as Row | undefined;
    return row ? toRecord<T>(row) : undefined;
  }

  async update<T>(kind: RecordKind, name: string, change: (current: StoredRecord<T>) => RecordChange<T> | undefined): Promise<StoredRecord<T> | undefined> {
    const tx = this.db.transaction((): StoredRecord<T> | undefined => {
      const row = this.db.prepare('SELECT * FROM resources WHERE kind = ? AND key = ?').get(kind, name.toLowerCase()) as Row | undefined;
      if (!row) return undefined;
      const current = toRecord<T>(row);
      const c = change(current);
      if (!c) return current;
      const next: StoredRecord<T> = {
        ...current,
        status: 'status' in c ? c.status : current.status,
        doc: c.doc ?? current.doc,
        updatedAt: c.updatedAt ?? current.updatedAt,
      };
      this.db
        .prepare('UPDATE resources SET status = ?, doc = ?, updated_at = ? WHERE kind = ? AND key = ?')
        .run(next.status ?? null, JSON.stringify(next.doc), next.updatedAt, kind, name.toLowerCase());
      return next;
    });
    return tx.immediate();
  }

  async delete(kind: RecordKind, name: string): Promise<boolean> {
    const tx = this.db.transaction((): boolean => {
      const row = this.db.prepare('SELECT arn FROM resources WHERE kind = ? AND key = ?').get(kind, name.toLowerCase()) as { arn: string } | undefined;
      if (!row) return false;
      this.db.prepare('DELETE FROM resources WHERE kind = ? AND key = ?').run(kind, name.toLowerCase());
      this.db.prepare('DELETE FROM tags WHERE arn = ?').run(row.arn.toLowerCase());
      return true;
    });
    return tx.immediate();
  }

  async list<T>(kind: RecordKind, q: ListQuery): Promise<{ records: StoredRecord<T>[]; more: boolean }> {
    const where = ['kind = ?'];
    const params: (string | number)[] = [kind];
    if (q.nameContains !== undefined) { where.push('instr(key, ?) > 0'); params.push(q.nameContains.toLowerCase()); }
    // AWS: "After" is inclusive, "Before" exclusive (ListModels docs).
    if (q.createdAfter !== undefined) { where.push('created_at >= ?'); params.push(q.createdAfter); }
    if (q.createdBefore !== undefined) { where.push('created_at < ?'); params.push(q.createdBefore); }
    if (q.modifiedAfter !== undefined) { where.push('updated_at >= ?'); params.push(q.modifiedAfter); }
    if (q.modifiedBefore !== undefined) { where.push('updated_at < ?'); params.push(q.modifiedBefore); }
    if (q.statusEquals !== undefined) { where.push('status = ?'); params.push(q.statusEquals); }
    const dir = q.sortOrder === 'asc' ? 'ASC' : 'DESC';
    // The name breaks ties so that pages never overlap or skip.
    const sql = `SELECT * FROM resources WHERE ${where.join(' AND ')} ORDER BY ${SORT_COLUMN[q.sortBy]} ${dir}, key ${dir} LIMIT ? OFFSET ?`;
    const rows = this.db.prepare(sql).all(...params, q.limit + 1, q.offset) as Row[];
    const more = rows.length > q.limit;
    return { records: rows.slice(0, q.limit).map((r) => toRecord<T>(r)), more };
  }

  async all<T>(kind: RecordKind): Promise<StoredRecord<T>[]> {
    const rows = this.db.prepare('SELECT * FROM resources WHERE kind = ? ORDER BY created_at').all(kind) as Row[];
    return rows.map((r) => toRecord<T>(r));
  }

  async addTags(arn: string, tags: readonly Tag[]): Promise<void> {
    const upsert = this.db.prepare(
      'INSERT INTO tags (arn, key, value, seq) VALUES (?, ?, ?, ?) ON CONFLICT (arn, key) DO UPDATE SET value = excluded.value',
    );
    this.db.transaction(() => {
      for (const t of tags) upsert.run(arn.toLowerCase(), t.Key, t.Value, ++this.seq);
    })();
  }

  async listTags(arn: string, offset: number, limit: number): Promise<{ tags: Tag[]; more: boolean }> {
    const rows = this.db
      .prepare('SELECT key, value FROM tags WHERE arn = ? ORDER BY seq LIMIT ? OFFSET ?')
      .all(arn.toLowerCase(), limit + 1, offset) as { key: string; value: string }[];
    return { tags: rows.slice(0, limit).map((r) => ({ Key: r.key, Value: r.value })), more: rows.length > limit };
  }

  async deleteTags(arn: string, keys: readonly string[]): Promise<void> {
    const del = this.db.prepare('DELETE FROM tags WHERE arn = ? AND key = ?');
    this.db.transaction(() => {
      for (const k of keys) del.run(arn.toLowerCase(), k);
    })();
  }

  async close(): Promise<void> {
    this.db.close();
  }
}
