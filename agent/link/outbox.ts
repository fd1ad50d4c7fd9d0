import type { EventMsg, ReportMsg } from '../../shared/protocol/messages.js';
import { RecordLog } from '../state/record-log.js';

export type OutboxMessage = ReportMsg | EventMsg;
type Rec = { t: 'add'; m: OutboxMessage } | { t: 'ack'; ids: string[] };

/**
 * The agent's durable outbox: every report and event is on disk before it counts as sent, survives
 * kill -9, and leaves only when the central acknowledges it (the central dedups by id, so a resend
 * after a crash is harmless). Order is preserved.
 */
export class Outbox {
  private readonly log: RecordLog<Rec>;
  private readonly pending = new Map<string, OutboxMessage>();
  private acked = 0;
  /** Called after a message is durably added (the link sends it if connected). */
  onAdd?: (m: OutboxMessage) => void;

  constructor(path: string) {
    this.log = new RecordLog<Rec>(path);
  }

  async open(): Promise<void> {
    for (const r of await this.log.open()) {
      if (r.t === 'add') this.pending.set(r.m.id, r.m);
      else for (const id of r.ids) this.pending.delete(id);
    }
    await this.log.compact([...this.pending.values()].map((m) => ({ t: 'add' as const, m })));
  }

  async add(m: OutboxMessage): Promise<void> {
    this.pending.set(m.id, m);
    await this.log.append({ t: 'add', m });
    this.onAdd?.(m);
  }

  async ack(ids: string[]): Promise<void> {
    const known = ids.filter((id) => this.pending.has(id));
    if (known.length === 0) return;
    for (const id of known) this.pending.delete(id);
    await this.log.append({ t: 'ack', ids: known });
    this.acked += known.length;
    if (this.acked > 5000 && this.acked > this.pending.size * 4) {
      this.acked = 0;
      await this.log.compact([...this.pending.values()].map((m) => ({ t: 'add' as const, m })));
    }
  }

  /** Unacknowledged messages in the order they were added. */
  messages(): OutboxMessage[] {
    return [...this.pending.values()];
  }

  get size(): number {
    return this.pending.size;
  }

  close(): Promise<void> {
    return this.log.close();
  }
}
