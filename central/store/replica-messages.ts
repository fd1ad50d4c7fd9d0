import { EventEmitter } from 'node:events';

/**
 * Messages between the central replicas sharing a store, that are not stored: state that changes too
 * often to write and that a replica can rebuild, e.g. service TTL heartbeats (a replica that misses one
 * only sees the member's deadline a little earlier). Delivered to the other replicas, never to the
 * sender; a replica that is down or reconnecting misses them, and is told so (`onGap`).
 */
export interface ReplicaMessages {
  /** Sends to every other replica (fire and forget; a message that cannot be sent is dropped and logged). */
  send(topic: string, payload: unknown): void;
  /** Receives the other replicas' messages of `topic`. Returns the unsubscribe. */
  on(topic: string, fn: (payload: unknown) => void): () => void;
  /** Called when this replica may have missed messages (its link to the others was lost and is back). */
  onGap(fn: () => void): () => void;
}

/**
 * Delivery to the subscribers of this process; stores shared by replicas feed it what they receive. A
 * store of one process never feeds it: nobody else to hear from.
 */
export class LocalReplicaMessages implements ReplicaMessages {
  private readonly emitter = new EventEmitter();

  constructor(private readonly transmit: (topic: string, payload: unknown) => void = () => undefined) {
    this.emitter.setMaxListeners(0);
  }

  send(topic: string, payload: unknown): void {
    this.transmit(topic, payload);
  }

  on(topic: string, fn: (payload: unknown) => void): () => void {
    const guarded = (p: unknown) => {
      try {
        fn(p);
      } catch (e) {
        process.emitWarning(`a replica message listener failed on ${topic}: ${(e as Error).message}`, 'ReplicaMessageWarning');
      }
    };
    this.emitter.on(`m:${topic}`, guarded);
    return () => this.emitter.off(`m:${topic}`, guarded);
  }

  onGap(fn: () => void): () => void {
    this.emitter.on('gap', fn);
    return () => this.emitter.off('gap', fn);
  }

  /** A message another replica sent arrived. */
  deliver(topic: string, payload: unknown): void {
    this.emitter.emit(`m:${topic}`, payload);
  }

  /** This replica may have missed messages. */
  gap(): void {
    this.emitter.emit('gap');
  }
}
