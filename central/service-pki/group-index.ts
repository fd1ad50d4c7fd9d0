import type { CollectionName, Doc, Store } from '../store/types.js';

/**
 * The documents of one collection grouped by a key (e.g. a machine's certificates of one CA), kept
 * current from the store's change feed, local and other replicas' changes alike. The store only has
 * unique indexes; this answers "the documents of this group" without scanning the collection, so a
 * per-machine check costs that machine's documents, not the fleet's.
 */
export class GroupIndex<T extends Doc> {
  private readonly groups = new Map<string, Map<string, T>>();
  private readonly stop: () => void;

  constructor(
    store: Store,
    collection: CollectionName,
    private readonly keyOf: (doc: T) => string,
  ) {
    // Built from the store as it is now, then followed: the feed announces every later durable write.
    for (const d of store.list<T>(collection, { limit: Number.MAX_SAFE_INTEGER }).items) this.add(d);
    this.stop = store.changes.on((c) => {
      if (c.collection !== collection) return;
      if (c.before) this.remove(c.before as T);
      if (c.type === 'put' && c.doc) this.add(c.doc as T);
    });
  }

  /** The documents of a group (a copy; empty when there are none). */
  of(key: string): T[] {
    const g = this.groups.get(key);
    return g ? [...g.values()] : [];
  }

  close(): void {
    this.stop();
  }

  private add(d: T): void {
    const k = this.keyOf(d);
    let g = this.groups.get(k);
    if (!g) this.groups.set(k, (g = new Map()));
    g.set(d.id, d);
  }

  private remove(d: T): void {
    const k = this.keyOf(d);
    const g = this.groups.get(k);
    if (!g) return;
    g.delete(d.id);
    if (g.size === 0) this.groups.delete(k);
  }
}
