import { announce } from './announce.js';
import { ChangeFeed } from './change-feed.js';
import { MemoryState } from './memory-state.js';
import type { CollectionSpec, Store, StoreHealth, WriteOp } from './types.js';

/**
 * The Store interface held in memory only: the file store's semantics (unique indexes, all-or-nothing
 * commits, unknown collections refused, changes announced after each commit) without durability. For
 * unit tests and benchmarks that need a store, not a data directory; never for a running central.
 */
export class MemoryStore extends MemoryState implements Store {
  readonly changes: ChangeFeed;

  constructor(collections: CollectionSpec[], opts: { changes?: ChangeFeed } = {}) {
    super(collections);
    this.changes = opts.changes ?? new ChangeFeed();
  }

  async commit(ops: WriteOp[]): Promise<void> {
    if (ops.length === 0) return;
    const undo = this.applyAll(ops);
    announce(this.changes, ops, undo.map((u) => u.prev));
  }

  health(): StoreHealth {
    return { status: 'ok' };
  }

  async close(): Promise<void> {}
}
