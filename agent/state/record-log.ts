import { Journal } from '../../shared/fs/journal.js';
import { writeFileDurable } from '../../shared/fs/durable.js';

/**
 * A durable, compacting log of JSON records (the agent's outbox, task log, machine queue). Appends are
 * group-committed (one fsync for many concurrent appends). `compact(records)` rewrites the file with
 * just the live records (temp + fsync + rename), which callers do when most records are dead.
 */
export class RecordLog<T> {
  private journal: Journal<T>;
  private lock: Promise<void> = Promise.resolve();

  constructor(readonly path: string) {
    this.journal = new Journal<T>(path);
  }

  async open(): Promise<T[]> {
    const { records } = await Journal.readAll<T>(this.path);
    // Rewrite without a torn tail before appending to it.
    await writeFileDurable(this.path, records.map((r) => JSON.stringify(r) + '\n').join(''));
    await this.journal.open();
    return records;
  }

  async append(record: T): Promise<void> {
    await this.lock;
    return this.journal.append(record);
  }

  async compact(live: T[]): Promise<void> {
    let release!: () => void;
    const prev = this.lock;
    this.lock = new Promise<void>((r) => (release = r));
    try {
      await prev;
      await this.journal.close();
      await writeFileDurable(this.path, live.map((r) => JSON.stringify(r) + '\n').join(''));
      this.journal = new Journal<T>(this.path);
      await this.journal.open();
    } finally {
      release();
    }
  }

  async close(): Promise<void> {
    await this.lock;
    await this.journal.close();
  }
}
