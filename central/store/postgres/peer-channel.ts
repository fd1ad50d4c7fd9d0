import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import type { Logger } from '../../../shared/log/logger.js';
import type { LocalReplicaMessages } from '../replica-messages.js';

/** The NOTIFY channel replicas send each other unstored messages on (ReplicaMessages). */
export const PEERS = 'underlay_peers';
/** PostgreSQL refuses a NOTIFY payload of 8000 bytes or more. */
const MAX_MESSAGE_BYTES = 7900;

/**
 * ReplicaMessages over PostgreSQL: NOTIFY on `underlay_peers`, the messages of one tick in one statement,
 * without synchronous commit (a lost message is rebuilt: see ReplicaMessages). Each message names the
 * replica that sent it, which ignores its own.
 */
export class PeerChannel {
  private readonly replicaId = randomUUID();
  private outbox: string[] = [];
  private closed = false;

  constructor(
    private readonly db: pg.Pool,
    private readonly logger: Logger,
  ) {}

  send(topic: string, payload: unknown): void {
    if (this.closed) return;
    const msg = JSON.stringify({ r: this.replicaId, t: topic, p: payload });
    if (Buffer.byteLength(msg) > MAX_MESSAGE_BYTES) {
      this.logger.warn({ topic, bytes: Buffer.byteLength(msg) }, 'store: a message to the other replicas is too large; dropped');
      return;
    }
    this.outbox.push(msg);
    if (this.outbox.length === 1) setImmediate(() => this.flush());
  }

  private flush(): void {
    const msgs = this.outbox;
    this.outbox = [];
    if (msgs.length === 0 || this.closed) return;
    this.db
      .query(`SELECT set_config('synchronous_commit', 'off', true), pg_notify('${PEERS}', m) FROM unnest($1::text[]) AS m`, [msgs])
      .catch((e: Error) => this.logger.warn({ err: e.message, messages: msgs.length }, 'store: could not send messages to the other replicas'));
  }

  /** A notification on PEERS arrived: hands another replica's message to `to`. */
  receive(payload: string | undefined, to: LocalReplicaMessages): void {
    let msg: { r?: unknown; t?: unknown; p?: unknown };
    try {
      msg = JSON.parse(payload ?? '');
    } catch {
      return;
    }
    if (msg.r === this.replicaId || typeof msg.t !== 'string') return;
    to.deliver(msg.t, msg.p);
  }

  close(): void {
    this.closed = true;
  }
}
