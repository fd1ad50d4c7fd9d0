import { Journal } from '../../shared/fs/journal.js';
import { silentLogger, type Logger } from '../../shared/log/logger.js';

/**
 * A durable, compacting log of JSON records (the agent's outbox, task log, machine queue, rejections) on
 * the shared journal: appends are group-committed, `compact(records)` rewrites the file with just the
 * live records in the journal's queue (appends made meanwhile land after them).
 *
 * A corrupt line is salvaged, not fatal (docs/decisions.md): the agent keeps serving its rack; the valid
 * records (also those after the bad line) are kept and a copy of the file is set aside.
 */
export class RecordLog<T> {
  private journal: Journal<T> | null = null;

  constructor(
    readonly path: string,
    private readonly logger: Logger = silentLogger,
    /** Checks a line's shape (throw: the line is corrupt and salvaged away). */
    private readonly parse?: (value: unknown) => T,
  ) {}

  async open(): Promise<T[]> {
    const { journal, records } = await Journal.open<T>(this.path, { corrupt: 'salvage', logger: this.logger, ...(this.parse ? { parse: this.parse } : {}) });
    this.journal = journal;
    return records;
  }

  private get j(): Journal<T> {
    if (!this.journal) throw new Error(`${this.path} is not open`);
    return this.journal;
  }

  /** Resolves once the record is durable; rejects with a StorageError (nothing kept) when it is not. */
  append(record: T, line?: string): Promise<void> {
    return this.j.append(record, line);
  }

  /**
   * Rewrites the file with `live()` — the owner's live records, evaluated once every earlier append is on
   * disk — without waiting or failing: a failure (e.g. a full disk) leaves the old file intact and is
   * logged; the next call retries.
   */
  compactInBackground(live: () => T[]): void {
    this.j.compact(live).catch((e: Error) => this.logger.warn({ file: this.path, err: e.message }, 'compaction failed; retried later'));
  }

  async close(): Promise<void> {
    await this.journal?.close();
  }
}
