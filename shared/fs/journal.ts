import { open, type FileHandle, readFile, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { fsyncDir } from './durable.js';

/**
 * An append-only journal of JSON records, one per line, with group commit: every `append()` issued
 * while an fsync is in flight joins the next batch, so N concurrent writers cost one write + one fsync,
 * not N. `append()` resolves only once its record is on disk.
 *
 * A torn last line (a crash mid-write) is ignored on read: its writer was never acknowledged.
 */
export class Journal<T> {
  private fh: FileHandle | null = null;
  private pending: { line: string; resolve: () => void; reject: (e: Error) => void }[] = [];
  private flushing: Promise<void> | null = null;
  private closed = false;
  /** Bytes written since open (for compaction decisions). */
  bytes = 0;
  /** Called with the duration of each group commit in seconds (metrics). */
  onCommit?: (seconds: number, records: number) => void;

  constructor(readonly path: string) {}

  async open(): Promise<void> {
    // Cut a torn tail (a crash mid-append: never acknowledged) before appending; otherwise the next
    // record is glued to it, that line no longer parses, and it and every record after it are lost.
    const { validBytes, tornBytes } = await Journal.readAll(this.path);
    this.fh = await open(this.path, 'a', 0o600);
    if (tornBytes > 0) {
      await this.fh.truncate(validBytes);
      await this.fh.sync();
    }
    await fsyncDir(dirname(this.path));
    try {
      this.bytes = (await stat(this.path)).size;
    } catch {
      this.bytes = 0;
    }
  }

  /** Reads every complete record; stops at the first torn or unparseable line (which can only be the last). */
  static async readAll<T>(path: string): Promise<{ records: T[]; tornBytes: number; validBytes: number }> {
    let raw: Buffer;
    try {
      raw = await readFile(path);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { records: [], tornBytes: 0, validBytes: 0 };
      throw e;
    }
    const text = raw.toString('utf8');
    const records: T[] = [];
    let pos = 0;
    while (pos < text.length) {
      const nl = text.indexOf('\n', pos);
      if (nl === -1) break; // torn tail: no newline
      const line = text.slice(pos, nl);
      try {
        records.push(JSON.parse(line) as T);
      } catch {
        break;
      }
      pos = nl + 1;
    }
    // Bytes counted on the raw file: a tail torn inside a multi-byte character decodes to U+FFFD.
    const validBytes = Buffer.byteLength(text.slice(0, pos));
    return { records, tornBytes: raw.length - validBytes, validBytes };
  }

  append(record: T): Promise<void> {
    if (this.closed || !this.fh) return Promise.reject(new Error('journal is closed'));
    const line = JSON.stringify(record) + '\n';
    const p = new Promise<void>((resolve, reject) => this.pending.push({ line, resolve, reject }));
    if (!this.flushing) this.flushing = this.flushLoop();
    return p;
  }

  private async flushLoop(): Promise<void> {
    try {
      while (this.pending.length > 0) {
        const batch = this.pending;
        this.pending = [];
        const started = process.hrtime.bigint();
        try {
          const buf = Buffer.from(batch.map((b) => b.line).join(''));
          await this.fh!.write(buf);
          await this.fh!.datasync();
          this.bytes += buf.length;
          this.onCommit?.(Number(process.hrtime.bigint() - started) / 1e9, batch.length);
          for (const b of batch) b.resolve();
        } catch (e) {
          for (const b of batch) b.reject(e as Error);
        }
      }
    } finally {
      this.flushing = null;
    }
  }

  /** Waits for every pending append to be on disk. */
  async drain(): Promise<void> {
    while (this.flushing) await this.flushing;
  }

  /** Empties the journal (after its records were folded into a durable snapshot). */
  async truncate(): Promise<void> {
    await this.drain();
    await this.fh!.truncate(0);
    await this.fh!.sync();
    this.bytes = 0;
  }

  async close(): Promise<void> {
    await this.drain();
    this.closed = true;
    await this.fh?.close();
    this.fh = null;
  }
}
