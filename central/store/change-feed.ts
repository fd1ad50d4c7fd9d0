import { EventEmitter } from 'node:events';
import type { Doc } from './types.js';

export interface Change {
  collection: string;
  type: 'put' | 'delete';
  id: string;
  doc?: Doc;
  /** The document before the change, when there was one. */
  before?: Doc;
  /** Set when another central replica made the change (a store shared by replicas replays it here). */
  remote?: true;
}

/**
 * In-process notifications of acknowledged writes, so the agent hub can push desired-state updates and
 * blocking queries can wake up. The store emits (Store.commit), only after the write is durable; other
 * code only listens.
 */
export class ChangeFeed {
  private readonly emitter = new EventEmitter();
  /** Monotonic change index (Consul-style blocking queries use it). */
  index = 0;

  constructor() {
    this.emitter.setMaxListeners(0);
  }

  private readonly perCollection = new Map<string, number>();

  /**
   * Called by the store after a durable commit (nothing else emits). A store shared by several replicas
   * passes the change's position in its log (`at`), so the index is the same on every replica.
   */
  emit(change: Change, at?: number): void {
    this.index = at === undefined ? this.index + 1 : Math.max(this.index + 1, at);
    this.perCollection.set(change.collection, (this.perCollection.get(change.collection) ?? 0) + 1);
    this.emitter.emit('change', change);
  }

  /** Called by a store when it loads: the index starts at the position of the data loaded. */
  resumeAt(index: number): void {
    this.index = Math.max(this.index, index);
  }

  /** How many changes these collections have seen: moves exactly when one of them changes (e.g. a cache of a document built from them). */
  indexOf(collections: readonly string[]): number {
    let n = 0;
    for (const c of collections) n += this.perCollection.get(c) ?? 0;
    return n;
  }

  /**
   * Listens to every change. A listener that throws is reported (a process warning) and skipped: it must
   * not turn a write that is already durable into a failed commit, nor keep the change from other listeners.
   */
  on(listener: (c: Change) => void): () => void {
    const guarded = (c: Change) => {
      try {
        listener(c);
      } catch (e) {
        process.emitWarning(`a change listener failed on ${c.collection}/${c.id}: ${(e as Error).message}`, 'ChangeListenerWarning');
      }
    };
    this.emitter.on('change', guarded);
    return () => this.emitter.off('change', guarded);
  }
}
