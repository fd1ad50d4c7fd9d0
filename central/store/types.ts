/**
 * The store interface the central's services use. Narrow on purpose: declarative queries (equality on
 * fields, array membership, params) and whole-document writes, so a PostgreSQL implementation can
 * follow the embedded file store without touching the routes.
 */
import { ConflictError } from '../../shared/errors/domain-errors.js';
import type { ChangeFeed } from './change-feed.js';
import type { ReplicaMessages } from './replica-messages.js';

export interface Doc {
  id: string;
  [key: string]: unknown;
}

export type CollectionName = string;

/** Equality filters; for array fields the value must be contained. `params.<name>` matches a param value. */
export interface ListQuery {
  where?: Record<string, string | number | boolean | null>;
  limit?: number;
  offset?: number;
  /** Field to sort by (default `name` if present, else `id`). */
  sort?: string;
  /**
   * Case-insensitive substring search: a document matches when one of `fields` (dotted paths; an array
   * field matches when one element does) contains `text`. Applied with `where`, before paging.
   */
  search?: { text: string; fields: string[] };
}

export interface Page<T> {
  items: T[];
  total: number;
  limit: number;
  offset: number;
}

export type WriteOp = { type: 'put'; collection: CollectionName; doc: Doc } | { type: 'delete'; collection: CollectionName; id: string };

export interface UniqueIndex {
  /** Field name reported in conflicts. */
  field: string;
  /** The values a document claims (e.g. every MAC of a machine). Lower-case where case does not matter. */
  values: (doc: Doc) => string[];
}

export interface CollectionSpec {
  name: CollectionName;
  unique: UniqueIndex[];
  /**
   * The file store journals an update of a document as its changed fields (central/store/journal-patch.ts)
   * instead of the whole document. Only for collections whose writers never change a stored document
   * or its nested values in place (they copy what they change, as the audit's changed fields assume).
   */
  patches?: boolean;
}

export interface Store {
  get<T extends Doc>(collection: CollectionName, id: string): T | undefined;
  /** Looks a document up by a unique index value (e.g. a machine by one of its MACs). */
  findUnique<T extends Doc>(collection: CollectionName, field: string, value: string): T | undefined;
  list<T extends Doc>(collection: CollectionName, query?: ListQuery): Page<T>;
  count(collection: CollectionName): number;
  /**
   * Applies the ops atomically (all or nothing) and resolves once they are durable; then announces each
   * op on `changes` (with the document before it). A write and its announcement are one operation.
   */
  commit(ops: WriteOp[]): Promise<void>;
  put<T extends Doc>(collection: CollectionName, doc: T): Promise<T>;
  delete(collection: CollectionName, id: string): Promise<void>;
  counts(): Record<CollectionName, number>;
  /** Where acknowledged writes are announced (after they are durable). */
  readonly changes: ChangeFeed;
  /** Unstored messages to the other central replicas sharing this store (none for a store of one process). */
  readonly peers: ReplicaMessages;
  /**
   * Runs a background job (retention, sweeps) unless another central replica sharing this store runs the
   * job of that name now; then resolves undefined without running it. One process: always runs it.
   * The job sees every write committed (on any replica) before it started.
   */
  exclusive<T>(job: string, fn: () => Promise<T> | T): Promise<T | undefined>;
  /** Whether writes can be made durable now (shown by /healthz). */
  health(): StoreHealth;
  close(): Promise<void>;
}

export type StoreHealth = { status: 'ok' } | { status: 'degraded'; reason: string };

/** A write claims a unique value (a name, a MAC) another document holds: a domain conflict (409). */
export class UniqueConflictError extends ConflictError {
  constructor(
    readonly collection: string,
    readonly field: string,
    readonly value: string,
  ) {
    super(`${collection}: ${field} "${value}" is already in use`, [{ path: field, message: `"${value}" is already in use` }]);
  }
}
