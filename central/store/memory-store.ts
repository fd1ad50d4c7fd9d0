import { announce } from './announce.js';
import { ChangeFeed } from './change-feed.js';
import { MemoryCollection } from './memory-collection.js';
import type { CollectionName, CollectionSpec, Doc, ListQuery, Page, Store, StoreHealth, WriteOp } from './types.js';

/**
 * The Store interface held in memory only: the file store's semantics (unique indexes, all-or-nothing
 * commits, unknown collections refused, changes announced after each commit) without durability. For
 * unit tests and benchmarks that need a store, not a data directory; never for a running central.
 */
export class MemoryStore implements Store {
  private readonly collections = new Map<string, MemoryCollection>();
  readonly changes: ChangeFeed;

  constructor(collections: CollectionSpec[], opts: { changes?: ChangeFeed } = {}) {
    for (const spec of collections) this.collections.set(spec.name, new MemoryCollection(spec));
    this.changes = opts.changes ?? new ChangeFeed();
  }

  private coll(name: CollectionName): MemoryCollection {
    const c = this.collections.get(name);
    if (!c) throw new Error(`unknown collection ${name}`);
    return c;
  }

  get<T extends Doc>(collection: CollectionName, id: string): T | undefined {
    return this.coll(collection).get(id) as T | undefined;
  }

  findUnique<T extends Doc>(collection: CollectionName, field: string, value: string): T | undefined {
    return this.coll(collection).findUnique(field, value) as T | undefined;
  }

  list<T extends Doc>(collection: CollectionName, query?: ListQuery): Page<T> {
    return this.coll(collection).list(query) as Page<T>;
  }

  count(collection: CollectionName): number {
    return this.coll(collection).docs.size;
  }

  counts(): Record<string, number> {
    return Object.fromEntries([...this.collections].map(([k, c]) => [k, c.docs.size]));
  }

  async commit(ops: WriteOp[]): Promise<void> {
    if (ops.length === 0) return;
    const applied: { c: MemoryCollection; id: string; prev: Doc | undefined }[] = [];
    try {
      for (const op of ops) {
        const c = this.coll(op.collection);
        const id = op.type === 'put' ? op.doc.id : op.id;
        const prev = c.get(id);
        if (op.type === 'put') {
          c.checkUnique(op.doc);
          c.put(op.doc);
        } else {
          c.delete(id);
        }
        applied.push({ c, id, prev });
      }
    } catch (e) {
      for (const { c, id, prev } of applied.reverse()) {
        if (prev) c.put(prev);
        else c.delete(id);
      }
      throw e;
    }
    announce(this.changes, ops, applied.map((a) => a.prev));
  }

  async put<T extends Doc>(collection: CollectionName, doc: T): Promise<T> {
    await this.commit([{ type: 'put', collection, doc }]);
    return doc;
  }

  async delete(collection: CollectionName, id: string): Promise<void> {
    await this.commit([{ type: 'delete', collection, id }]);
  }

  health(): StoreHealth {
    return { status: 'ok' };
  }

  async close(): Promise<void> {}
}
