// Persistence behind one interface. The embedded SQLite store is the default; a shared PostgreSQL
// store can implement the same contract (store.conformance.ts is the suite every adapter must pass).

/** What kind of resource a record is; also the ARN's resource type. */
export type RecordKind = 'model' | 'endpoint-config' | 'endpoint';

export interface StoredRecord<T = unknown> {
  readonly kind: RecordKind;
  /** As the user spelled it; uniqueness is case-insensitive, as on SageMaker. */
  readonly name: string;
  readonly arn: string;
  /** Epoch seconds with millisecond fraction. */
  readonly createdAt: number;
  readonly updatedAt: number;
  /** A status to filter and sort on (endpoints); absent for kinds without one. */
  readonly status?: string | undefined;
  readonly doc: T;
}

export interface ListQuery {
  readonly nameContains?: string | undefined;
  readonly createdAfter?: number | undefined;
  readonly createdBefore?: number | undefined;
  readonly modifiedAfter?: number | undefined;
  readonly modifiedBefore?: number | undefined;
  readonly statusEquals?: string | undefined;
  readonly sortBy: 'name' | 'createdAt' | 'status';
  readonly sortOrder: 'asc' | 'desc';
  readonly offset: number;
  readonly limit: number;
}

export interface RecordChange<T> {
  readonly status?: string | undefined;
  readonly doc?: T;
  readonly updatedAt?: number;
}

export interface Tag {
  readonly Key: string;
  readonly Value: string;
}

export interface Store {
  /** Inserts; returns false (and changes nothing) when the name is taken, case-insensitively. */
  insert<T>(record: StoredRecord<T>): Promise<boolean>;
  get<T>(kind: RecordKind, name: string): Promise<StoredRecord<T> | undefined>;
  /**
   * Reads, applies `change` and writes atomically; `change` returning undefined leaves the record
   * as it is. Resolves to the record as written, or undefined when there is none.
   */
  update<T>(kind: RecordKind, name: string, change: (current: StoredRecord<T>) => RecordChange<T> | undefined): Promise<StoredRecord<T> | undefined>;
  /** Deletes the record and its tags; false when there was none. */
  delete(kind: RecordKind, name: string): Promise<boolean>;
  /** One page; the second value says whether more records follow. */
  list<T>(kind: RecordKind, query: ListQuery): Promise<{ records: StoredRecord<T>[]; more: boolean }>;
  all<T>(kind: RecordKind): Promise<StoredRecord<T>[]>;
  /** Tags are keyed by ARN, compared case-insensitively; adding a present key replaces its value in place. */
  addTags(arn: string, tags: readonly Tag[]): Promise<void>;
  listTags(arn: string, offset: number, limit: number): Promise<{ tags: Tag[]; more: boolean }>;
  deleteTags(arn: string, keys: readonly string[]): Promise<void>;
  close(): Promise<void>;
}
