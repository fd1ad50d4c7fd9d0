import { mkdirSync, chmodSync } from 'node:fs';
import { readdir, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { Low } from 'lowdb';
import { Journal } from '../../shared/fs/journal.js';
import { silentLogger, type Logger } from '../../shared/log/logger.js';
import { acquireDataDirLock } from './data-dir-lock.js';
import { DurableJsonFile } from './lowdb-durable-adapter.js';
import { MemoryCollection } from './memory-collection.js';
import { migrate, SCHEMA_VERSION, type Snapshot } from './migrations.js';
import type { CollectionName, CollectionSpec, Doc, ListQuery, Page, Store, WriteOp } from './types.js';

export interface FileStoreOptions {
  dir: string;
  collections: CollectionSpec[];
  logger?: Logger;
  /** Fold the journal into a new snapshot once it is this large (bytes). */
  compactAfterBytes?: number;
  /** Called with each group commit's duration (seconds) and record count. */
  onCommit?: (seconds: number, records: number) => void;
}

type JournalRecord = { ops: WriteOp[] };

/**
 * The embedded store: a lowdb JSON snapshot (`store.json`) plus an append-only journal
 * (`journal.<generation>.jsonl`) of whole-document writes. A write is applied in memory, appended to the
 * journal and acknowledged only after the group commit's fsync. Compaction switches to a new journal
 * generation, writes a snapshot durably (lowdb with a fsync'ing adapter), then drops the old journal.
 * Replaying a journal is idempotent (whole-document puts and deletes), so a crash anywhere in
 * compaction loses nothing.
 */
export class FileStore implements Store {
  private readonly collections = new Map<string, MemoryCollection>();
  private readonly db: Low<Snapshot>;
  private journal!: Journal<JournalRecord>;
  private generation = 0;
  private releaseLock: (() => void) | null = null;
  private compacting: Promise<void> | null = null;
  private readonly logger: Logger;
  private readonly compactAfterBytes: number;

  private constructor(private readonly opts: FileStoreOptions) {
    this.logger = opts.logger ?? silentLogger;
    this.compactAfterBytes = opts.compactAfterBytes ?? 64 * 1024 * 1024;
    for (const spec of opts.collections) this.collections.set(spec.name, new MemoryCollection(spec));
    this.db = new Low<Snapshot>(new DurableJsonFile<Snapshot>(join(opts.dir, 'store.json')), emptySnapshot());
  }

  static async open(opts: FileStoreOptions): Promise<FileStore> {
    mkdirSync(opts.dir, { recursive: true, mode: 0o700 });
    chmodSync(opts.dir, 0o700);
    const store = new FileStore(opts);
    store.releaseLock = acquireDataDirLock(join(opts.dir, 'lock'));
    try {
      await store.load();
    } catch (e) {
      store.releaseLock();
      throw e;
    }
    return store;
  }

  private journalPath(gen: number): string {
    return join(this.opts.dir, `journal.${gen}.jsonl`);
  }

  private async load(): Promise<void> {
    await this.db.read();
    const existed = (await readdir(this.opts.dir)).includes('store.json');
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
    // Replay this generation's journal and any later one (a crash during compaction).
    const gens = (await readdir(this.opts.dir))
      .map((f) => /^journal\.(\d+)\.jsonl$/.exec(f))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => Number(m[1]))
      .sort((a, b) => a - b);
    let replayed = 0;
    let torn = false;
    const replayedGens: number[] = [];
    for (const gen of gens) {
      if (gen < this.generation) {
        await unlink(this.journalPath(gen)); // already folded into the snapshot
        continue;
      }
      const { records, tornBytes } = await Journal.readAll<JournalRecord>(this.journalPath(gen));
      if (tornBytes > 0) this.logger.warn({ gen, tornBytes }, 'journal had a torn tail (a write that was never acknowledged); ignored');
      torn ||= tornBytes > 0;
      replayedGens.push(gen);
      for (const r of records) for (const op of r.ops) this.applyOp(op);
      replayed += records.length;
      this.generation = Math.max(this.generation, gen);
    }
    this.journal = this.newJournal(this.generation);
    await this.journal.open();
    if (migrated || !existed || replayed > 0 || torn) await this.compact();
    // compact() drops only the journal it switched from; earlier ones (a crash mid-compaction) are folded too.
    for (const gen of replayedGens) if (gen < this.generation) await unlink(this.journalPath(gen)).catch(() => undefined);
    this.logger.info({ replayed, schemaVersion: SCHEMA_VERSION, counts: this.counts() }, 'store loaded');
  }

  private newJournal(gen: number): Journal<JournalRecord> {
    const j = new Journal<JournalRecord>(this.journalPath(gen));
    j.onCommit = this.opts.onCommit;
    return j;
  }

  private coll(name: CollectionName): MemoryCollection {
    const c = this.collections.get(name);
    if (!c) throw new Error(`unknown collection ${name}`);
    return c;
  }

  private applyOp(op: WriteOp): void {
    const c = this.collections.get(op.collection) ?? this.collections.set(op.collection, new MemoryCollection({ name: op.collection, unique: [] })).get(op.collection)!;
    if (op.type === 'put') c.put(op.doc);
    else c.delete(op.id);
  }

  get<T extends Doc>(collection: CollectionName, id: string): T | undefined {
    return this.coll(collection).get(id) as T | undefined;
  }

  findUnique<T extends Doc>(collection: CollectionName, field: string, value: string): T | undefined {
    return this.coll(collection).findUnique(field, value) as T | undefined;
  }

  list<T extends Doc>(collection: CollectionName, query?: ListQuery): Page<T> {
    return this.coll(collection).list(query) as Page<T>;
  }

  count(collection: CollectionName): number {
    return this.coll(collection).docs.size;
  }

  counts(): Record<string, number> {
    return Object.fromEntries([...this.collections].map(([k, c]) => [k, c.docs.size]));
  }

  async commit(ops: WriteOp[]): Promise<void> {
    if (ops.length === 0) return;
    // Apply op by op, checking unique indexes against the state left by the ops before it; on a
    // conflict (or a failed journal write) undo what was applied: all or nothing.
    const undo: (() => void)[] = [];
    const rollback = () => {
      for (const u of undo.reverse()) u();
    };
    try {
      for (const op of ops) {
        const c = this.coll(op.collection);
        const id = op.type === 'put' ? op.doc.id : op.id;
        const prev = c.get(id);
        if (op.type === 'put') c.checkUnique(op.doc);
        this.applyOp(op);
        undo.push(() => (prev ? c.put(prev) : c.delete(id)));
      }
    } catch (e) {
      rollback();
      throw e;
    }
    try {
      await this.journal.append({ ops });
    } catch (e) {
      this.logger.error({ err: e }, 'journal write failed; write rolled back');
      rollback();
      throw e;
    }
    if (this.journal.bytes > this.compactAfterBytes && !this.compacting) {
      this.compacting = this.compact().finally(() => (this.compacting = null));
    }
  }

  async put<T extends Doc>(collection: CollectionName, doc: T): Promise<T> {
    await this.commit([{ type: 'put', collection, doc }]);
    return doc;
  }

  async delete(collection: CollectionName, id: string): Promise<void> {
    await this.commit([{ type: 'delete', collection, id }]);
  }

  /** Writes a snapshot of the current state and drops journals it covers. */
  async compact(): Promise<void> {
    const old = this.journal;
    const gen = this.generation + 1;
    const next = this.newJournal(gen);
    await next.open();
    this.journal = next;
    this.generation = gen;
    await old.drain();
    this.db.data = {
      schemaVersion: SCHEMA_VERSION,
      journalGeneration: gen,
      collections: Object.fromEntries([...this.collections].map(([k, c]) => [k, [...c.docs.values()]])),
    };
    await this.db.write();
    await old.close();
    await unlink(old.path).catch(() => undefined);
  }

  async close(): Promise<void> {
    if (this.compacting) await this.compacting;
    await this.journal.close();
    this.releaseLock?.();
    this.releaseLock = null;
  }
}

function emptySnapshot(): Snapshot {
  return { schemaVersion: 0, journalGeneration: 0, collections: {} };
}
