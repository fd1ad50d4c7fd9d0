/**
 * The one append-only JSON-lines journal of the central and the agent (store, DHCP leases, outbox, task
 * log, machine queue).
 *
 * - Group commit: every `append()` that arrives while a batch is being written joins the next batch; one
 *   batch costs one write + one fdatasync. `append()` resolves only once its record is on disk.
 *   `linger` (optional) lets a batch that would start small wait while appends keep coming, turn after turn
 *   of the event loop (up to `records` of them or `ms`, whichever comes first): fewer fdatasyncs per record
 *   under a steady stream (the DHCP lease journal), each append still acknowledged only after its own
 *   batch's fdatasync.
 * - A short or failed write (or fdatasync) fails its batch and every append queued behind it (they may
 *   have been derived from it): nothing of them is acknowledged, the file is truncated back to the last
 *   good offset before they are rejected, and later appends work again once the disk has room.
 *   `onWriteFailure` runs synchronously at that moment, before any other append can be made, so an owner
 *   can roll back in-memory state it applied for them.
 * - `compact(snapshot)` rewrites the file from `snapshot()` (temp file, fsync, rename, fsync of the
 *   directory) in the same queue, once earlier appends are on disk; appends made meanwhile land after it.
 *   A failed compaction leaves the old file intact and only rejects its own promise.
 * - `preallocate` (optional, bytes) keeps that much of the file written with zeros past the last record
 *   (extended when less than half is left, at open, after a batch when nothing waits, or by the batch
 *   that crosses the end): a batch then overwrites blocks that are already allocated and initialised, so
 *   its fdatasync flushes data only, with no file size or extent change for the filesystem to commit
 *   (ext4: no journal commit per batch). Zeros are written, not fallocate(2)d: fallocate leaves unwritten
 *   extents, and converting one at the first write is the metadata commit this avoids.
 * - Replay accepts only a torn tail: a last line without its newline, or a zero-filled tail (preallocated;
 *   possibly holding the start of a batch that was never acknowledged). A journal line never holds a NUL
 *   byte (JSON escapes it), so the tail starts at the first line with one, provided no newline follows
 *   that NUL (a complete line after it would be a record written after the tail: that is corruption).
 *   An unparseable complete line is corruption: `open()` refuses with a
 *   JournalCorruptError naming the file, line and byte offset, or (`corrupt: 'salvage'`) keeps every
 *   valid record, moves a copy of the file aside and rewrites it without the bad lines.
 */
import { constants } from 'node:fs';
import { copyFile, mkdir, open, rename, unlink, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { silentLogger, type Logger } from '../log/logger.js';
import { fsyncDir } from './durable.js';
import { StorageError, StorageFullError, storageError } from './storage-errors.js';

export class JournalCorruptError extends Error {
  constructor(
    readonly file: string,
    /** 1-based line number of the first corrupt line. */
    readonly line: number,
    /** Byte offset where that line starts. */
    readonly offset: number,
    reason: string,
  ) {
    super(
      `${file} line ${line} (byte offset ${offset}) is corrupt: ${reason}. Refusing to open it: the records after it would be lost. ` +
        `Restore the file from a backup, or cut it at that offset if you accept losing what follows.`,
    );
  }
}

export interface JournalOptions<T> {
  /** Validates a parsed line; throw to mark it corrupt. Default: accept any JSON value. */
  parse?: (value: unknown) => T;
  logger?: Logger;
  /** What to do with an unparseable complete line: refuse to open (default) or salvage (see above). */
  corrupt?: 'refuse' | 'salvage';
  /** Called with each group commit's duration (seconds) and record count (metrics). */
  onCommit?: (seconds: number, records: number) => void;
  /** Called synchronously when a batch failed, before its appends (and those queued behind) are rejected. */
  onWriteFailure?: (err: StorageError) => void;
  /** Before writing a batch of fewer than `records` appends, wait up to `ms` for more (see above). */
  linger?: { records: number; ms: number };
  /** Bytes of zeros kept written past the last record, so a batch's fdatasync changes no metadata (see above). */
  preallocate?: number;
}

export interface JournalReplay<T> {
  records: T[];
  /** Bytes of complete, valid lines (where the next append goes). */
  validBytes: number;
  /** Bytes of a torn last line (no newline), dropped; a zero-filled tail after it is not counted. */
  tornBytes: number;
  /** Bytes of the zero-filled (preallocated) tail after the last record, the torn bytes included. */
  tailBytes: number;
  /** Complete lines that did not parse (only with `corrupt: 'salvage'`; otherwise replay throws). */
  corrupt: { line: number; offset: number; reason: string }[];
}

export interface JournalOpened<T> extends JournalReplay<T> {
  journal: Journal<T>;
}

export interface JournalStats {
  /** Records in the file (for compaction decisions). */
  records: number;
  batches: number;
  appends: number;
  compactions: number;
  failedBatches: number;
  failedCompactions: number;
  /** Zero-filled extensions written ahead of the records (`preallocate`). */
  extensions: number;
}

interface Pending {
  line: string;
  resolve: () => void;
  reject: (e: Error) => void;
}

interface Compaction {
  snapshot: () => unknown[];
  resolve: () => void;
  reject: (e: Error) => void;
}

const RW_CREATE = constants.O_RDWR | constants.O_CREAT;

export class Journal<T> {
  private pending: Pending[] = [];
  private compactions: Compaction[] = [];
  private running = false;
  private closed = false;
  /** A failed batch may have left bytes past `offset`: cut them before the next write. */
  private dirty = false;
  private idle: (() => void)[] = [];
  private st: JournalStats;
  /** Bytes written to the file (records + zero tail): a batch ending within it changes no metadata. */
  private allocated: number;
  private zeros: Buffer | undefined;

  private constructor(
    readonly path: string,
    private fh: FileHandle,
    /** End of the last durable record: where the next batch is written. */
    private offset: number,
    records: number,
    private readonly opts: JournalOptions<T>,
    allocated: number,
  ) {
    this.st = { records, batches: 0, appends: 0, compactions: 0, failedBatches: 0, failedCompactions: 0, extensions: 0 };
    this.allocated = Math.max(allocated, offset);
  }

  /**
   * Reads every record of `file` (none if it does not exist). A torn last line is reported, not returned;
   * a corrupt complete line throws JournalCorruptError unless `corrupt` is 'salvage'.
   */
  static async read<T>(file: string, opts: Pick<JournalOptions<T>, 'parse' | 'corrupt'> = {}): Promise<JournalReplay<T>> {
    let fh: FileHandle;
    try {
      fh = await open(file, 'r');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { records: [], validBytes: 0, tornBytes: 0, tailBytes: 0, corrupt: [] };
      throw e;
    }
    let buf: Buffer;
    try {
      buf = await fh.readFile();
    } finally {
      await fh.close();
    }
    return Journal.parseBuffer(file, buf, opts);
  }

  private static parseBuffer<T>(file: string, buf: Buffer, opts: Pick<JournalOptions<T>, 'parse' | 'corrupt'>): JournalReplay<T> {
    const records: T[] = [];
    const corrupt: JournalReplay<T>['corrupt'] = [];
    // A zero-filled tail starts at the line holding the first NUL byte, unless a newline follows that NUL.
    const nul = buf.indexOf(0);
    const tailFrom = nul !== -1 && buf.indexOf(0x0a, nul) === -1 ? buf.lastIndexOf(0x0a, nul) + 1 : buf.length;
    let pos = 0;
    let line = 0;
    for (;;) {
      const nl = buf.indexOf(0x0a, pos);
      if (nl === -1 || nl >= tailFrom) break;
      line++;
      try {
        const value: unknown = JSON.parse(buf.toString('utf8', pos, nl));
        records.push(opts.parse ? opts.parse(value) : (value as T));
      } catch (e) {
        const reason = e instanceof SyntaxError ? `not JSON (${e.message})` : `invalid record (${(e as Error).message.slice(0, 200)})`;
        if (opts.corrupt !== 'salvage') throw new JournalCorruptError(file, line, pos, reason);
        corrupt.push({ line, offset: pos, reason });
      }
      pos = nl + 1;
    }
    // Torn: the bytes of the tail that are not zeros (a batch that was never acknowledged).
    let end = buf.length;
    while (end > pos && buf[end - 1] === 0) end--;
    return { records, validBytes: pos, tornBytes: end - pos, tailBytes: buf.length - pos, corrupt };
  }

  /** Replays `file` (see `read`), cuts a torn tail and opens it for appending. */
  static async open<T>(file: string, opts: JournalOptions<T> = {}): Promise<JournalOpened<T>> {
    const logger = opts.logger ?? silentLogger;
    await mkdir(dirname(file), { recursive: true });
    const fh = await open(file, RW_CREATE, 0o600);
    let replay: JournalReplay<T>;
    let journal: Journal<T>;
    try {
      const buf = await fh.readFile();
      replay = Journal.parseBuffer(file, buf, opts);
      if (buf.length === 0) await fsyncDir(dirname(file)); // a new file: make its directory entry durable
      let allocated = buf.length;
      if (replay.tornBytes > 0) {
        // Never acknowledged (its batch never finished its fdatasync). Cutting it only shrinks the file,
        // which works on a full disk too (a zero tail after it goes as well; it is written again).
        logger.warn({ file, tornBytes: replay.tornBytes }, 'journal: dropping a torn last record (a write that was never acknowledged)');
        await fh.truncate(replay.validBytes);
        await fh.datasync();
        allocated = replay.validBytes;
      }
      journal = new Journal<T>(file, fh, replay.validBytes, replay.records.length, opts, allocated);
      await journal.extendAhead();
    } catch (e) {
      await fh.close();
      throw e;
    }
    if (replay.corrupt.length > 0) {
      const aside = `${file}.corrupt-${new Date().toISOString().replace(/[:.]/g, '-')}`;
      logger.error({ file, corrupt: replay.corrupt.slice(0, 5), kept: replay.records.length, copy: aside }, 'journal: corrupt lines skipped; a copy of the file is kept for inspection');
      try {
        await copyFile(file, aside);
        const records = replay.records;
        await journal.compact(() => records);
      } catch (e) {
        // Keep running over the file as it is (its bad lines are skipped again at the next open).
        logger.error({ err: e, file }, 'journal: could not set the corrupt journal aside');
      }
    }
    return { journal, ...replay };
  }

  /** Resolves once the record is durable (fdatasync'd). `line` is the record's JSON + "\n" if the caller has it. */
  append(record: T, line?: string): Promise<void> {
    if (this.closed) return Promise.reject(new Error(`journal ${this.path} is closed`));
    return new Promise((resolve, reject) => {
      this.pending.push({ line: line ?? JSON.stringify(record) + '\n', resolve, reject });
      this.kick();
    });
  }

  /** Replaces the file's content with `snapshot()`, evaluated once every earlier append is on disk. */
  compact(snapshot: () => T[]): Promise<void> {
    if (this.closed) return Promise.reject(new Error(`journal ${this.path} is closed`));
    return new Promise((resolve, reject) => {
      this.compactions.push({ snapshot, resolve, reject });
      this.kick();
    });
  }

  stats(): JournalStats {
    return { ...this.st };
  }

  /** Records in the file. */
  get size(): number {
    return this.st.records;
  }

  /** Bytes in the file. */
  get bytes(): number {
    return this.offset;
  }

  /** Resolves when nothing is queued or being written. */
  drain(): Promise<void> {
    if (!this.running) return Promise.resolve();
    return new Promise((r) => this.idle.push(r));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await this.drain();
    this.closed = true;
    await this.fh.close();
  }

  private kick(): void {
    if (this.running) return;
    this.running = true;
    // Start on the next turn so that appends made in the same tick share the first batch.
    setImmediate(() => void this.pump());
  }

  private async pump(): Promise<void> {
    try {
      while (this.pending.length > 0 || this.compactions.length > 0) {
        if (this.pending.length > 0) {
          const lingering = this.linger();
          if (lingering) await lingering;
          await this.writeBatch();
          // Nothing waits: extend the zero tail now rather than in a later batch's write.
          if (this.pending.length === 0) await this.extendAhead();
        }
        else await this.runCompaction();
      }
    } catch (e) {
      // writeBatch and runCompaction handle their errors; this is a last guard: never an unhandled rejection.
      (this.opts.logger ?? silentLogger).error({ err: e, file: this.path }, 'journal: unexpected error');
    } finally {
      this.running = false;
      for (const r of this.idle.splice(0)) r();
    }
  }

  /**
   * With `linger`: while each turn of the event loop brings more appends, waits another turn, until
   * `records` are queued or `ms` have passed. A turn that brings none ends it at once: a lone append (or a
   * closed loop of clients waiting for their acks) pays one turn, not the whole `ms`.
   */
  private linger(): Promise<void> | undefined {
    const l = this.opts.linger;
    if (!l || this.pending.length >= l.records) return undefined;
    const until = performance.now() + l.ms;
    return new Promise<void>((resolve) => {
      let seen = this.pending.length;
      const turn = () => {
        const n = this.pending.length;
        if (n === seen || n >= l.records || performance.now() >= until) resolve();
        else {
          seen = n;
          setImmediate(turn);
        }
      };
      setImmediate(turn);
    });
  }

  private async writeBatch(): Promise<void> {
    const batch = this.pending;
    this.pending = [];
    const started = process.hrtime.bigint();
    let buf: Buffer;
    try {
      if (this.dirty) await this.cutBack();
      buf = Buffer.from(batch.map((b) => b.line).join(''), 'utf8');
      const end = this.offset + buf.length;
      // Past the zero tail: the same write extends it (one metadata change for the next `preallocate` bytes).
      const zeros = end > this.allocated ? this.zeroTail(end) : undefined;
      let written = false;
      try {
        await this.writeAt(zeros ? [buf, zeros] : [buf], this.offset);
        written = true;
        await this.fh.datasync();
        if (zeros) {
          this.allocated = end + zeros.length;
          this.st.extensions++;
        }
      } catch (e) {
        // Only a write refused for room; never after a failed fdatasync (the page cache may then call clean
        // what never reached the disk: the batch fails).
        if (!zeros || written || !(storageError(e, this.path) instanceof StorageFullError)) throw e;
        // The records may fit where the zeros did not (a nearly full disk): the records alone, as without preallocation.
        await this.cutBack();
        await this.writeAt([buf], this.offset);
        await this.fh.datasync();
      }
    } catch (e) {
      await this.failBatch(batch, e);
      return;
    }
    this.offset += buf.length;
    if (this.offset > this.allocated) this.allocated = this.offset;
    this.st.batches++;
    this.st.appends += batch.length;
    this.st.records += batch.length;
    this.opts.onCommit?.(Number(process.hrtime.bigint() - started) / 1e9, batch.length);
    for (const b of batch) b.resolve();
  }

  /** Writes `bufs` at `at`, all of it or a StorageFullError (marks the file dirty: bytes past `offset` may be left). */
  private async writeAt(bufs: Buffer[], at: number): Promise<void> {
    const want = bufs.reduce((a, b) => a + b.length, 0);
    this.dirty = true;
    const { bytesWritten } = bufs.length === 1 ? await this.fh.write(bufs[0]!, 0, want, at) : await this.fh.writev(bufs, at);
    if (bytesWritten !== want) throw new StorageFullError(`disk full: short write (${bytesWritten} of ${want} bytes) to ${basename(this.path)}`, 'SHORT_WRITE');
    this.dirty = false;
  }

  /** Zeros from `end` to `end + preallocate`, rounded up to 4 KiB in the file (undefined without `preallocate`). */
  private zeroTail(end: number): Buffer | undefined {
    const p = this.opts.preallocate;
    if (!p || p <= 0) return undefined;
    const n = Math.ceil((end + p) / 4096) * 4096 - end;
    if (!this.zeros || this.zeros.length < n) this.zeros = Buffer.alloc(Math.ceil((p + 4096) / 4096) * 4096);
    return this.zeros.subarray(0, n);
  }

  /**
   * With `preallocate`: when less than half of it is left past the last record, writes zeros up to a whole
   * `preallocate` ahead (write + fdatasync). Runs in the queue (at open, or when no append waits); a failure
   * (a full disk) is only logged: batches then extend the file as they go, as without preallocation.
   */
  private async extendAhead(): Promise<void> {
    const p = this.opts.preallocate;
    if (!p || p <= 0 || this.allocated - this.offset >= p / 2 || this.dirty) return;
    const zeros = this.zeroTail(this.allocated)!.subarray(0, Math.max(0, Math.ceil((this.offset + p) / 4096) * 4096 - this.allocated));
    if (zeros.length === 0) return;
    try {
      await this.writeAt([zeros], this.allocated);
      await this.fh.datasync();
      this.allocated += zeros.length;
      this.st.extensions++;
    } catch (e) {
      (this.opts.logger ?? silentLogger).warn({ err: (e as Error).message, file: this.path }, 'journal: could not extend the zero tail ahead of the records');
      try {
        await this.cutBack();
      } catch {
        /* retried before the next write (dirty) */
      }
    }
  }

  /** Truncates the file back to the last durable record. */
  private async cutBack(): Promise<void> {
    this.dirty = true;
    await this.fh.truncate(this.offset);
    await this.fh.datasync();
    this.allocated = this.offset;
    this.dirty = false;
  }

  private async failBatch(batch: Pending[], e: unknown): Promise<void> {
    const err = storageError(e, this.path);
    const failed = batch.concat(this.pending.splice(0));
    this.dirty = true;
    this.st.failedBatches++;
    const logger = this.opts.logger ?? silentLogger;
    logger.error({ err: err.message, file: this.path, records: failed.length }, 'journal: write failed; nothing of the batch is acknowledged');
    try {
      this.opts.onWriteFailure?.(err);
    } catch (hookErr) {
      logger.error({ err: hookErr }, 'journal: onWriteFailure threw');
    }
    try {
      await this.cutBack(); // before rejecting: a refused record must not survive a crash right after
    } catch (cutErr) {
      logger.error({ err: (cutErr as Error).message, file: this.path }, 'journal: could not truncate after a failed write; retried before the next write');
    }
    for (const b of failed) b.reject(err);
  }

  private async runCompaction(): Promise<void> {
    // Let the owners of a failed batch roll back (their rejection handlers) before the snapshot is taken.
    await new Promise<void>((r) => setImmediate(r));
    if (this.pending.length > 0) return; // appends came in meanwhile: they go first
    const c = this.compactions.shift()!;
    const tmp = join(dirname(this.path), `.${basename(this.path)}.${process.pid}.compact.tmp`);
    try {
      const records = c.snapshot();
      const buf = Buffer.from(records.map((r) => JSON.stringify(r) + '\n').join(''), 'utf8');
      const th = await open(tmp, 'w', 0o600);
      try {
        const { bytesWritten } = await th.write(buf, 0, buf.length, 0);
        if (bytesWritten !== buf.length) throw new StorageFullError(`disk full: short write to ${basename(this.path)}`, 'SHORT_WRITE');
        await th.sync();
      } finally {
        await th.close();
      }
      const next = await open(tmp, 'r+');
      try {
        await rename(tmp, this.path);
      } catch (e) {
        await next.close();
        throw e;
      }
      // From here on the file at `path` is the new one: append to it whatever happens next.
      const old = this.fh;
      this.fh = next;
      this.offset = buf.length;
      this.allocated = buf.length;
      this.dirty = false;
      this.st.records = records.length;
      this.st.compactions++;
      await old.close().catch(() => undefined);
      await fsyncDir(dirname(this.path));
      c.resolve();
      await this.extendAhead();
    } catch (e) {
      await unlink(tmp).catch(() => undefined);
      this.st.failedCompactions++;
      const err = storageError(e, this.path);
      (this.opts.logger ?? silentLogger).error({ err: err.message, file: this.path }, 'journal: compaction failed; the journal is unchanged');
      c.reject(err);
    }
  }
}
