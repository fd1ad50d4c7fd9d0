/**
 * An append-only JSON-lines journal with group commit: every `append()` that arrives while a write is in
 * flight joins the next batch, and one batch costs one write + one fdatasync. `append()` resolves only once
 * its record is on disk. `compact()` rewrites the file from a snapshot (temp file, fsync, rename, fsync of
 * the directory) in the same queue, so records appended meanwhile land in the new file after it.
 * On open, a torn last line (a crash mid-write) is dropped and truncated away; an unreadable complete line
 * is skipped and counted.
 */
import { open, rename, mkdir, type FileHandle } from 'node:fs/promises';
import { dirname, basename, join } from 'node:path';
import type { z } from 'zod';
import { silentLogger, type Logger } from '../../shared/log/logger.js';

export interface JournalOpenResult<T> {
  journal: Journal<T>;
  records: T[];
  /** True when the last line was incomplete and was dropped. */
  torn: boolean;
  /** Complete lines that failed to parse or validate. */
  skipped: number;
}

interface Waiter {
  resolve: () => void;
  reject: (e: Error) => void;
}

export interface JournalStats {
  records: number;
  batches: number;
  appends: number;
  compactions: number;
}

async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

export class Journal<T> {
  private pending: Array<{ line: string } & Waiter> = [];
  private compactions: Array<{ snapshot: () => T[] } & Waiter> = [];
  private running = false;
  private closed = false;
  private idle: Array<() => void> = [];
  private st: JournalStats;

  private constructor(
    private readonly file: string,
    private fh: FileHandle,
    records: number,
    private readonly logger: Logger,
  ) {
    this.st = { records, batches: 0, appends: 0, compactions: 0 };
  }

  static async open<T>(file: string, schema: z.ZodType<T>, logger: Logger = silentLogger): Promise<JournalOpenResult<T>> {
    await mkdir(dirname(file), { recursive: true });
    const fh = await open(file, 'a+');
    let created = false;
    const records: T[] = [];
    let torn = false;
    let skipped = 0;
    try {
      const size = (await fh.stat()).size;
      created = size === 0;
      const buf = Buffer.alloc(size);
      if (size > 0) await fh.read(buf, 0, size, 0);
      const lastNl = buf.lastIndexOf(0x0a);
      const goodLength = lastNl + 1;
      if (goodLength < size) {
        torn = true;
        logger.warn({ file, dropped: size - goodLength }, 'journal: dropping a torn last record');
        await fh.truncate(goodLength);
        await fh.sync();
      }
      const text = buf.subarray(0, goodLength).toString('utf8');
      for (const line of text.split('\n')) {
        if (!line) continue;
        try {
          const parsed = schema.safeParse(JSON.parse(line));
          if (parsed.success) records.push(parsed.data);
          else {
            skipped++;
            logger.warn({ file, issues: parsed.error.issues.slice(0, 3) }, 'journal: skipping an invalid record');
          }
        } catch {
          skipped++;
          logger.warn({ file }, 'journal: skipping an unparsable record');
        }
      }
    } catch (e) {
      await fh.close();
      throw e;
    }
    if (created) await fsyncDir(dirname(file));
    return { journal: new Journal<T>(file, fh, records.length, logger), records, torn, skipped };
  }

  /** Resolves once the record is durable (fdatasync'd). */
  append(record: T): Promise<void> {
    if (this.closed) return Promise.reject(new Error('journal is closed'));
    return new Promise((resolve, reject) => {
      this.pending.push({ line: JSON.stringify(record) + '\n', resolve, reject });
      this.kick();
    });
  }

  /** Replace the file's content with `snapshot()` (evaluated when the compaction runs, after earlier appends). */
  compact(snapshot: () => T[]): Promise<void> {
    if (this.closed) return Promise.reject(new Error('journal is closed'));
    return new Promise((resolve, reject) => {
      this.compactions.push({ snapshot, resolve, reject });
      this.kick();
    });
  }

  stats(): JournalStats {
    return { ...this.st };
  }

  /** Records currently in the file (for compaction decisions). */
  get size(): number {
    return this.st.records;
  }

  async close(): Promise<void> {
    await this.flushed();
    this.closed = true;
    await this.fh.close();
  }

  /** Resolves when nothing is queued or being written. */
  flushed(): Promise<void> {
    if (!this.running) return Promise.resolve();
    return new Promise((r) => this.idle.push(r));
  }

  private kick(): void {
    if (this.running) return;
    this.running = true;
    // Start on the next tick so that appends made in the same tick share the first batch.
    setImmediate(() => void this.pump());
  }

  private async pump(): Promise<void> {
    try {
      while (this.pending.length > 0 || this.compactions.length > 0) {
        if (this.pending.length > 0) {
          const batch = this.pending.splice(0);
          try {
            await this.fh.write(Buffer.from(batch.map((b) => b.line).join(''), 'utf8'));
            await this.fh.datasync();
            this.st.batches++;
            this.st.appends += batch.length;
            this.st.records += batch.length;
            for (const b of batch) b.resolve();
          } catch (e) {
            this.logger.error({ err: e, file: this.file }, 'journal: write failed');
            for (const b of batch) b.reject(e as Error);
          }
          continue;
        }
        const c = this.compactions.shift()!;
        try {
          await this.rewrite(c.snapshot());
          this.st.compactions++;
          c.resolve();
        } catch (e) {
          this.logger.error({ err: e, file: this.file }, 'journal: compaction failed');
          c.reject(e as Error);
        }
      }
    } finally {
      this.running = false;
      for (const r of this.idle.splice(0)) r();
    }
  }

  private async rewrite(records: T[]): Promise<void> {
    const dir = dirname(this.file);
    const tmp = join(dir, `.${basename(this.file)}.${process.pid}.tmp`);
    const th = await open(tmp, 'w');
    try {
      await th.write(Buffer.from(records.map((r) => JSON.stringify(r) + '\n').join(''), 'utf8'));
      await th.sync();
    } finally {
      await th.close();
    }
    await rename(tmp, this.file);
    await fsyncDir(dir);
    const old = this.fh;
    this.fh = await open(this.file, 'a');
    await old.close();
    this.st.records = records.length;
  }
}
