import type { EventMsg, ReportMsg } from '../../shared/protocol/messages.js';
import { silentLogger, type Logger } from '../../shared/log/logger.js';
import { RecordLog } from '../state/record-log.js';

export type OutboxMessage = ReportMsg | EventMsg;
type Rec = { t: 'add'; m: OutboxMessage } | { t: 'ack'; ids: string[] };

function parseRec(v: unknown): Rec {
  const r = v as Rec | null;
  if (r?.t === 'add' && typeof r.m?.id === 'string' && (r.m.type === 'report' || r.m.type === 'event')) return r;
  if (r?.t === 'ack' && Array.isArray(r.ids)) return r;
  throw new Error('not an outbox record');
}

export interface OutboxLimits {
  /** Unacknowledged messages at most (default 10 000; env UNDERLAY_OUTBOX_MAX_RECORDS). */
  maxRecords: number;
  /** Bytes of unacknowledged messages at most (default 64 MiB; env UNDERLAY_OUTBOX_MAX_BYTES). */
  maxBytes: number;
}

export const DEFAULT_OUTBOX_LIMITS: OutboxLimits = { maxRecords: 10_000, maxBytes: 64 * 1024 * 1024 };

/** The outbox holds as much as it may: the caller should answer 503 and let the sender retry later. */
export class OutboxFullError extends Error {
  constructor(
    readonly depth: OutboxDepth,
    readonly retryAfterSeconds = 30,
  ) {
    super(`the agent's outbox is full (${depth.records} messages, ${depth.bytes} bytes unsent); the central is not taking them: retry later`);
  }
}

export interface OutboxDepth extends OutboxLimits {
  records: number;
  bytes: number;
  full: boolean;
}

/**
 * The agent's durable outbox: every report and event is on disk before it counts as sent, survives
 * kill -9, and leaves only when the central acknowledges it (the central dedups by id, so a resend
 * after a crash is harmless). Order is preserved.
 *
 * Bounded, with backpressure: an event that would take it past `maxRecords` or `maxBytes` is refused
 * with OutboxFullError (nothing stored). Task reports are not refused (they are results of signed tasks
 * the central sent, bounded by it, and losing one would lose a task's outcome) but count towards the
 * depth, so events are refused first. A log line marks when it fills and when it drains below 90 %.
 */
export class Outbox {
  private readonly log: RecordLog<Rec>;
  private readonly pending = new Map<string, { m: OutboxMessage; bytes: number }>();
  private bytes = 0;
  private acked = 0;
  private full = false;
  private readonly limits: OutboxLimits;
  private readonly logger: Logger;
  /** Called after a message is durably added (the link sends it if connected). */
  onAdd?: (m: OutboxMessage) => void;

  constructor(path: string, opts: { limits?: Partial<OutboxLimits>; logger?: Logger } = {}) {
    this.logger = opts.logger ?? silentLogger;
    this.limits = { ...DEFAULT_OUTBOX_LIMITS, ...opts.limits };
    this.log = new RecordLog<Rec>(path, this.logger, parseRec);
  }

  async open(): Promise<void> {
    for (const r of await this.log.open()) {
      if (r.t === 'add') this.put(r.m, Buffer.byteLength(JSON.stringify(r)) + 1);
      else for (const id of r.ids) this.drop(id);
    }
    this.log.compactInBackground(() => this.live());
  }

  /** Durably adds `m`; rejects with OutboxFullError (events only) or a StorageError, keeping nothing. */
  async add(m: OutboxMessage): Promise<void> {
    const rec: Rec = { t: 'add', m };
    const line = JSON.stringify(rec) + '\n';
    const size = Buffer.byteLength(line);
    if (m.type === 'event' && (this.pending.size + 1 > this.limits.maxRecords || this.bytes + size > this.limits.maxBytes)) {
      this.markFull(true);
      throw new OutboxFullError(this.depth());
    }
    this.put(m, size);
    try {
      await this.log.append(rec, line);
    } catch (e) {
      this.drop(m.id);
      throw e;
    }
    this.onAdd?.(m);
  }

  async ack(ids: string[]): Promise<void> {
    const known = ids.filter((id) => this.pending.has(id));
    if (known.length === 0) return;
    await this.log.append({ t: 'ack', ids: known });
    for (const id of known) this.drop(id);
    this.acked += known.length;
    if (this.acked > 5000 && this.acked > this.pending.size * 4) {
      this.acked = 0;
      this.log.compactInBackground(() => this.live());
    }
  }

  /** Unacknowledged messages in the order they were added. */
  messages(): OutboxMessage[] {
    return [...this.pending.values()].map((p) => p.m);
  }

  /** When the oldest unacknowledged message was made (ISO), if any (the agent's metrics). */
  oldestAt(): string | undefined {
    return this.pending.values().next().value?.m.at;
  }

  get size(): number {
    return this.pending.size;
  }

  /** The gauge: unsent messages and bytes against the limits. */
  depth(): OutboxDepth {
    return { records: this.pending.size, bytes: this.bytes, ...this.limits, full: this.full };
  }

  close(): Promise<void> {
    return this.log.close();
  }

  private live(): Rec[] {
    return this.messages().map((m) => ({ t: 'add' as const, m }));
  }

  private put(m: OutboxMessage, bytes: number): void {
    const prev = this.pending.get(m.id);
    if (prev) this.bytes -= prev.bytes;
    this.pending.set(m.id, { m, bytes });
    this.bytes += bytes;
  }

  private drop(id: string): void {
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    this.bytes -= p.bytes;
    if (this.full && this.pending.size < this.limits.maxRecords * 0.9 && this.bytes < this.limits.maxBytes * 0.9) this.markFull(false);
  }

  private markFull(full: boolean): void {
    if (this.full === full) return;
    this.full = full;
    const { records, bytes } = this.depth();
    if (full) this.logger.warn({ records, bytes, ...this.limits }, 'outbox full: refusing new events until the central takes what is queued');
    else this.logger.info({ records, bytes, ...this.limits }, 'outbox drained: accepting events again');
  }
}
