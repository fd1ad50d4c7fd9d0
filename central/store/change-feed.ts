import { EventEmitter } from 'node:events';
import type { Doc } from './types.js';

export interface Change {
  collection: string;
  type: 'put' | 'delete';
  id: string;
  doc?: Doc;
  /** The document before the change, when there was one. */
  before?: Doc;
}

/**
 * In-process notifications of acknowledged writes, so the agent hub can push desired-state updates and
 * blocking queries can wake up. Emitted only after the write is durable.
 */
export class ChangeFeed {
  private readonly emitter = new EventEmitter();
  /** Monotonic change index (Consul-style blocking queries use it). */
  index = 0;

  constructor() {
    this.emitter.setMaxListeners(0);
  }

  emit(change: Change): void {
    this.index++;
    this.emitter.emit('change', change);
  }

  on(listener: (c: Change) => void): () => void {
    this.emitter.on('change', listener);
    return () => this.emitter.off('change', listener);
  }
}
