import { mkdirSync, chmodSync, statfsSync } from 'node:fs';
import { readdir, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { Low } from 'lowdb';
import { acquireDirLock, type DirLock } from '../../shared/fs/dir-lock.js';
import { Journal } from '../../shared/fs/journal.js';
import { StorageError, storageError } from '../../shared/fs/storage-errors.js';
import { silentLogger, type Logger } from '../../shared/log/logger.js';
import { ChangeFeed } from './change-feed.js';
import { announce } from './announce.js';
import { applyPatch, isPatchOp, patchOf, type PatchOp } from './journal-patch.js';
import { DurableJsonFile } from './lowdb-durable-adapter.js';
import { MemoryCollection } from './memory-collection.js';
import { MemoryState, undoAll, type Undo } from './memory-state.js';
import { migrate, migrateRecord, SCHEMA_VERSION, type Snapshot } from './migrations.js';
import type { CollectionName, CollectionSpec, Doc, Store, StoreHealth, WriteOp } from './types.js';

export interface FileStoreOptions {
  dir: string;
  collections: CollectionSpec[];
  logger?: Logger;
  /** Fold the journal into a new snapshot once it is this large (bytes). */
  compactAfterBytes?: number;
  /** While a write or a compaction is failing, retry the compaction this often (ms; default 10 s). */
  retryCompactionMs?: number;
  /** Called with each group commit's duration (seconds) and record count. */
  onCommit?: (seconds: number, records: number) => void;
  /** Where acknowledged writes are announced (default: a new feed). */
  changes?: ChangeFeed;
}

/** A journal line: one commit's ops; an update of a `patches` collection as its changed fields (journal-patch.ts). */
type JournalRecord = { ops: (WriteOp | PatchOp)[] };

/** A commit applied in memory and not durable yet; `refused` once a failed journal write rolled it back. */
interface Inflight {
  undo: Undo[];
  refused?: StorageError;
}

/**
 * The embedded store: a lowdb JSON snapshot (`store.json`) plus an append-only journal
 * (`journal.<generation>.jsonl`) of whole-document writes, and of changed fields for an update in a
 * collection declared `patches` (central/store/journal-patch.ts).
 *
 * A write is checked (unique indexes) and applied in memory (so a read-modify-write made after it builds
 * on it), appended to the journal and acknowledged only after the group commit's fdatasync. If the
 * journal refuses a batch (full disk, I/O error), every write in flight is rolled back at once (the
 * journal fails the batch and everything queued behind it, which may have been built on it) and the
 * writers get a StorageFullError or StorageUnavailableError: nothing of them stays on disk or in memory.
 * Each commit in flight keeps its undo list; they are undone newest first.
 *
 * Compaction waits until the journal is idle (about one fsync), takes the durable state, switches to a
 * new journal generation, writes the snapshot durably, then drops the older journals. Writers are not
 * paused: a commit made meanwhile is applied in memory at once and only its append waits for the new
 * journal; the snapshot leaves such held commits out (stateWithout), so it never holds a write that is
 * not durable. A held commit is refused with the writes in flight when the old journal fails them (it
 * may have been built on them). Replaying a journal is idempotent (whole-document puts and deletes), so
 * a crash or a failure (ENOSPC) anywhere in compaction loses nothing: the old snapshot and journals stay,
 * the store keeps serving, and compaction is retried.
 */
export class FileStore extends MemoryState implements Store {
  private readonly db: Low<Snapshot>;
  private journal!: Journal<JournalRecord>;
  private generation = 0;
  private lock: DirLock | null = null;
  private compacting: Promise<void> | null = null;
  /** Set while compaction waits for the journal to be idle and switches it: appends wait for it. */
  private switching: Promise<void> | null = null;
  private compactOwed = false;
  private retryTimer: NodeJS.Timeout | null = null;
  /** The commits applied in memory and not durable yet (their undo lists), oldest first. */
  private readonly inflight = new Set<Inflight>();
  /** Those of them waiting for a journal switch to end before they are appended (the newest ones). */
  private readonly held = new Set<Inflight>();
  private writeFault: string | null = null;
  private compactionFault: string | null = null;
  private closed = false;
  private readonly logger: Logger;
  private readonly compactAfterBytes: number;
  readonly changes: ChangeFeed;

  private constructor(private readonly opts: FileStoreOptions) {
    super(opts.collections);
    this.changes = opts.changes ?? new ChangeFeed();
    this.logger = opts.logger ?? silentLogger;
    this.compactAfterBytes = opts.compactAfterBytes ?? 64 * 1024 * 1024;
    this.db = new Low<Snapshot>(new DurableJsonFile<Snapshot>(join(opts.dir, 'store.json')), emptySnapshot());
  }

  static async open(opts: FileStoreOptions): Promise<FileStore> {
    mkdirSync(opts.dir, { recursive: true, mode: 0o700 });
    chmodSync(opts.dir, 0o700);
    const store = new FileStore(opts);
    store.lock = await acquireDirLock(opts.dir, 'central');
    try {
      await store.load();
    } catch (e) {
      await store.lock.release();
      throw e;
    }
    return store;
  }

  private journalPath(gen: number): string {
    return join(this.opts.dir, `journal.${gen}.jsonl`);
  }

  private async openJournal(gen: number): Promise<Journal<JournalRecord>> {
    const { journal } = await Journal.open<JournalRecord>(this.journalPath(gen), {
      logger: this.logger,
      onCommit: (seconds, records) => {
        this.writeFault = null;
        this.opts.onCommit?.(seconds, records);
      },
      onWriteFailure: (err) => this.onWriteFailure(err),
    });
    return journal;
  }

  private async journalGenerations(): Promise<number[]> {
    return (await readdir(this.opts.dir))
      .map((f) => /^journal\.(\d+)\.jsonl$/.exec(f))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => Number(m[1]))
      .sort((a, b) => a - b);
  }

  private async load(): Promise<void> {
    await this.db.read();
    const existed = (await readdir(this.opts.dir)).includes('store.json');
    const fromVersion = (this.db.data ?? emptySnapshot()).schemaVersion;
    const { snapshot, migrated } = migrate(this.db.data ?? emptySnapshot());
    for (const [name, docs] of Object.entries(snapshot.collections)) {
      const coll = this.collections.get(name);
      if (!coll) {
        this.logger.warn({ collection: name }, 'data file has a collection this central does not know; keeping it untouched');
        this.collections.set(name, new MemoryCollection({ name, unique: [] }));
      }
      for (const d of docs) this.collections.get(name)!.put(d);
    }
    this.generation = snapshot.journalGeneration;
    // Replay this generation's journal and any later one (a crash or a failure during compaction). A
    // corrupt complete line refuses the start (JournalCorruptError names file, line and offset).
    let replayed = 0;
    let torn = false;
    for (const gen of await this.journalGenerations()) {
      if (gen < this.generation) {
        await unlink(this.journalPath(gen)).catch(() => undefined); // already folded into the snapshot
        continue;
      }
      const { records, tornBytes } = await Journal.read<JournalRecord>(this.journalPath(gen), { parse: parseJournalRecord });
      if (tornBytes > 0) this.logger.warn({ gen, tornBytes }, 'journal had a torn tail (a write that was never acknowledged); ignored');
      torn ||= tornBytes > 0;
      // Records journaled by an older version migrate as the snapshot did.
      // A patch applies to the migrated document and the result migrates again (record migrations leave a migrated document as it is).
      for (const r of records) for (const op of r.ops) this.applyOp(migrated && op.type !== 'delete' ? this.migratedOp(fromVersion, op) : op);
      replayed += records.length;
      this.generation = Math.max(this.generation, gen);
    }
    this.journal = await this.openJournal(this.generation);
    if (migrated || !existed || replayed > 0 || torn) {
      if (!existed) await this.compact(); // a new data dir must get its snapshot: fail the start if it cannot
      else await this.compact().catch(() => undefined); // logged, marked degraded and retried: serve meanwhile
    }
    this.logger.info({ replayed, schemaVersion: SCHEMA_VERSION, counts: this.counts() }, 'store loaded');
  }

  private collFor(name: CollectionName): MemoryCollection {
    return this.collections.get(name) ?? this.collections.set(name, new MemoryCollection({ name, unique: [] })).get(name)!;
  }

  private applyOp(op: WriteOp | PatchOp): void {
    const c = this.collFor(op.collection);
    if (op.type === 'put') c.put(op.doc);
    else if (op.type === 'delete') c.delete(op.id);
    else {
      // Missing only when this record is replayed over a snapshot that already holds a later delete (see PatchOp).
      const base = c.get(op.id);
      if (base) c.put(applyPatch(base, op));
    }
  }

  private migratedOp(fromVersion: number, op: WriteOp | PatchOp): WriteOp {
    if (op.type === 'put') return { ...op, doc: migrateRecord(fromVersion, op.collection, op.doc) };
    if (op.type === 'delete') return op;
    const base = this.collFor(op.collection).get(op.id);
    return base ? { type: 'put', collection: op.collection, doc: migrateRecord(fromVersion, op.collection, applyPatch(base, op)) } : { type: 'delete', collection: op.collection, id: op.id };
  }

  /** The journal's form of a commit: an update of a `patches` collection as its changed fields. */
  private journalOps(ops: WriteOp[], undo: Undo[]): (WriteOp | PatchOp)[] {
    let out: (WriteOp | PatchOp)[] | null = null;
    for (let i = 0; i < ops.length; i++) {
      const op = ops[i]!;
      const { c, prev } = undo[i]!;
      if (op.type !== 'put' || !prev || prev === op.doc || !c.spec.patches) continue;
      (out ??= [...ops])[i] = patchOf(op.collection, prev, op.doc);
    }
    return out ?? ops;
  }

  async commit(ops: WriteOp[]): Promise<void> {
    if (ops.length === 0) return;
    // Unique indexes are checked against the state left by the ops before (and by writes still in flight).
    // Applied at once, also while a compaction switches journals: then only the append waits.
    const undo = this.applyAll(ops);
    const entry: Inflight = { undo };
    this.inflight.add(entry);
    try {
      while (this.switching && !entry.refused) {
        this.held.add(entry);
        await this.switching;
        this.held.delete(entry);
      }
      // Rolled back while it waited: it may have been built on a write the journal refused.
      if (entry.refused) throw entry.refused;
      await this.journal.append({ ops: this.journalOps(ops, undo) });
    } finally {
      // Durable, or refused (then onWriteFailure has undone it with every other write in flight).
      this.inflight.delete(entry);
      this.held.delete(entry);
    }
    announce(this.changes, ops, undo.map((u) => u.prev));
    if ((this.journal.bytes > this.compactAfterBytes || this.compactOwed) && !this.compacting && !this.retryTimer) {
      this.compact().catch(() => undefined); // logged and retried
    }
  }

  private onWriteFailure(err: StorageError): void {
    for (const entry of [...this.inflight].reverse()) {
      undoAll(entry.undo);
      entry.refused = err; // a commit waiting for a journal switch learns it when it wakes
    }
    this.inflight.clear();
    this.held.clear(); // undone: no longer part of the state a snapshot must leave out
    this.writeFault = err.message;
    this.logger.error({ err: err.message }, 'store: a write could not be made durable; it and every write in flight were refused and rolled back');
    this.scheduleRetry();
  }

  /** ok, or degraded with the reason (a full disk refuses writes; a failing compaction does not). */
  health(): StoreHealth {
    if (this.writeFault) return { status: 'degraded', reason: `${this.writeFault}; writes are refused until space is freed` };
    if (this.compactionFault) return { status: 'degraded', reason: `${this.compactionFault}; compaction is retried` };
    try {
      const fs = statfsSync(this.opts.dir);
      if (fs.bavail === 0) return { status: 'degraded', reason: 'disk full: no space left in the data directory' }; // no path: /healthz is public
    } catch {
      /* statfs is a hint only */
    }
    return { status: 'ok' };
  }

  /**
   * Writes a snapshot of the committed state and drops the journals it covers. On failure (e.g. ENOSPC)
   * the previous snapshot and every journal stay; the error is logged, the store reports degraded and
   * the compaction is retried later.
   */
  compact(): Promise<void> {
    this.compacting ??= this.runCompaction().finally(() => (this.compacting = null));
    return this.compacting;
  }

  private async runCompaction(): Promise<void> {
    try {
      const { gen, collections } = await this.pauseAndSwitch();
      this.db.data = { schemaVersion: SCHEMA_VERSION, journalGeneration: gen, collections };
      await this.db.write();
      this.db.data = emptySnapshot(); // not kept: the collections are the state
      for (const g of await this.journalGenerations()) if (g < gen) await unlink(this.journalPath(g)).catch(() => undefined);
      this.compactOwed = false;
      this.compactionFault = null;
      this.writeFault = null; // the disk took a whole snapshot: it has room again
    } catch (e) {
      const err = storageError(e, join(this.opts.dir, 'store.json'));
      this.compactOwed = true;
      this.compactionFault = `compaction failed: ${err.message}`;
      this.logger.error({ err: err.message }, 'store: compaction failed; the previous snapshot and journals are kept; retrying later');
      this.scheduleRetry();
      throw err;
    }
  }

  /**
   * Holds new appends until the journal is idle, so every write applied in memory and not held is
   * durable; takes that state then (without the held commits); moves to a new journal generation unless the current one is empty (also after a failed
   * compaction: retries on a full disk do not pile up files); lets the held appends go on.
   */
  private async pauseAndSwitch(): Promise<{ gen: number; collections: Snapshot['collections'] }> {
    let release!: () => void;
    this.switching = new Promise<void>((r) => (release = r));
    try {
      const next = this.journal.bytes > 0 ? await this.openJournal(this.generation + 1) : null;
      await this.journal.drain();
      const collections = this.stateWithout([...this.held]);
      if (next) {
        const old = this.journal;
        this.journal = next;
        this.generation += 1;
        await old.close();
      }
      return { gen: this.generation, collections };
    } finally {
      this.switching = null;
      release();
    }
  }

  /**
   * The state without the given commits (the newest applied, oldest first), as documents per collection:
   * what is durable while commits wait for a journal switch. Their undo lists are replayed, newest
   * first, on copies of the collections they touched.
   */
  private stateWithout(commits: Inflight[]): Snapshot['collections'] {
    const copies = new Map<MemoryCollection, Map<string, Doc>>();
    for (let i = commits.length - 1; i >= 0; i--) {
      const undo = commits[i]!.undo;
      for (let j = undo.length - 1; j >= 0; j--) {
        const { c, id, prev } = undo[j]!;
        let docs = copies.get(c);
        if (!docs) copies.set(c, (docs = new Map(c.docs)));
        if (prev) docs.set(id, prev);
        else docs.delete(id);
      }
    }
    return Object.fromEntries([...this.collections].map(([k, c]) => [k, [...(copies.get(c) ?? c.docs).values()]]));
  }

  private scheduleRetry(): void {
    if (this.retryTimer || this.closed) return;
    this.compactOwed = true;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      if (this.closed) return;
      this.compact().then(
        () => this.logger.info('store: compaction succeeded again; writes are accepted'),
        () => undefined, // logged; scheduled again
      );
    }, this.opts.retryCompactionMs ?? 10_000);
    this.retryTimer.unref();
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    if (this.compacting) await this.compacting.catch(() => undefined);
    await this.journal.close();
    await this.lock?.release();
    this.lock = null;
  }
}

/** A journal line must be `{ops: [...]}` of puts (with a document with an id), deletes (with an id) and patches. */
function parseJournalRecord(v: unknown): JournalRecord {
  const ops = (v as JournalRecord | null)?.ops;
  const ok =
    Array.isArray(ops) &&
    ops.every((op) => (op?.type === 'patch' ? isPatchOp(op) : typeof op?.collection === 'string' && (op.type === 'put' ? typeof op.doc?.id === 'string' : op.type === 'delete' && typeof op.id === 'string')));
  if (!ok) throw new Error('not a store journal record ({ops: [put|delete|patch …]})');
  return v as JournalRecord;
}

function emptySnapshot(): Snapshot {
  return { schemaVersion: 0, journalGeneration: 0, collections: {} };
}
