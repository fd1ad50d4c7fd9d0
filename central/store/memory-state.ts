import { MemoryCollection } from './memory-collection.js';
import { LocalReplicaMessages, type ReplicaMessages } from './replica-messages.js';
import type { CollectionName, CollectionSpec, Doc, ListQuery, Page, WriteOp } from './types.js';

/** How to undo one applied op: the document it replaced (undefined: there was none). */
export interface Undo {
  c: MemoryCollection;
  id: string;
  prev: Doc | undefined;
}

/** Restores what `undo` records, newest first. */
export function undoAll(undo: Undo[]): void {
  for (let i = undo.length - 1; i >= 0; i--) {
    const { c, id, prev } = undo[i];
    if (prev) c.put(prev);
    else c.delete(id);
  }
}

/**
 * The collections held in memory and the Store's read side, shared by the file store (durable) and the
 * memory store (not): only how a write is made durable differs.
 */
export abstract class MemoryState {
  protected readonly collections = new Map<string, MemoryCollection>();

  constructor(specs: CollectionSpec[]) {
    for (const spec of specs) this.collections.set(spec.name, new MemoryCollection(spec));
  }

  protected coll(name: CollectionName): MemoryCollection {
    const c = this.collections.get(name);
    if (!c) throw new Error(`unknown collection ${name}`);
    return c;
  }

  /**
   * Applies the ops in memory, all or nothing: each put is checked against the unique indexes as left by
   * the ops before it; on a conflict what was applied is undone and the error thrown. Returns the undo list.
   */
  protected applyAll(ops: WriteOp[]): Undo[] {
    const undo: Undo[] = [];
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
        undo.push({ c, id, prev });
      }
    } catch (e) {
      undoAll(undo);
      throw e;
    }
    return undo;
  }

  /** Applies the ops atomically; the subclass decides how they become durable and announces them. */
  abstract commit(ops: WriteOp[]): Promise<void>;

  async put<T extends Doc>(collection: CollectionName, doc: T): Promise<T> {
    await this.commit([{ type: 'put', collection, doc }]);
    return doc;
  }

  async delete(collection: CollectionName, id: string): Promise<void> {
    await this.commit([{ type: 'delete', collection, id }]);
  }

  /** One process owns this store: no other replica to tell (a store shared by replicas overrides it). */
  readonly peers: ReplicaMessages = new LocalReplicaMessages();

  /** One process owns this store: a job always runs here. */
  async exclusive<T>(_job: string, fn: () => Promise<T> | T): Promise<T | undefined> {
    return fn();
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
}
