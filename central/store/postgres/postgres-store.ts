import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { UnavailableError } from '../../../shared/errors/domain-errors.js';
import { silentLogger, type Logger } from '../../../shared/log/logger.js';
import { ChangeFeed } from '../change-feed.js';
import { MemoryCollection } from '../memory-collection.js';
import { MemoryState, undoAll, type Undo } from '../memory-state.js';
import { LocalReplicaMessages } from '../replica-messages.js';
import { StaleWriteError } from '../stale-write.js';
import type { CollectionSpec, Doc, Store, StoreHealth, WriteOp } from '../types.js';
import { differences, pruneChangeLog, readSnapshot, type Snapshot } from './change-log.js';
import { PEERS, PeerChannel } from './peer-channel.js';
import { migrateDatabase } from './schema.js';
import { writeBatch, type ChangeRow, type CommitOutcome } from './write-txn.js';

export interface PostgresStoreOptions {
  /** postgres://user@host:port/db (libpq-style URL; PG* environment variables fill what it leaves out). */
  url: string;
  collections: CollectionSpec[];
  logger?: Logger;
  changes?: ChangeFeed;
  /** Called with each commit's duration (seconds) and op count. */
  onCommit?: (seconds: number, records: number) => void;
  /** How long change-log rows are kept for replicas that fell behind (ms). Default 1 h. */
  changeRetentionMs?: number;
  /** How often one replica prunes the change log (ms). Default 1 min. */
  pruneEveryMs?: number;
}

interface Pending {
  ops: WriteOp[];
  /** The documents the writer saw (compare-and-set): kept when the commit is re-applied on top of other replicas' changes. */
  expected: (Doc | undefined)[];
  /** The version of each op's document the writer saw (undefined: none), sent as the compare-and-set's expectation. */
  exp: (string | undefined)[];
  /** The version each put gives its document (chosen here, so a commit built on this one can name it). */
  vers: (string | undefined)[];
  /** How to take it out of memory again (changes when it is re-applied). */
  undo: Undo[];
  /** The versions map before each op (to undo, newest first). */
  verUndo: (string | undefined)[];
  resolve: () => void;
  reject: (e: unknown) => void;
  started: number;
}

const CHANNEL = 'underlay_changes';
/** How long a background job waits for this replica to replay what was committed before it started. */
const CATCH_UP_MS = 10_000;
/** Commits written in one transaction at most. */
const MAX_BATCH = 256;

const keyOf = (op: WriteOp) => `${op.collection}\0${op.type === 'put' ? op.doc.id : op.id}`;
const keysOf = (ops: WriteOp[]) => ops.map(keyOf);

/** The ops of a commit that wrote a change row (a delete of nothing writes none), in order. */
function liveOps(ops: WriteOp[], expected: (Doc | undefined)[]): WriteOp[] {
  return ops.filter((op, i) => op.type === 'put' || expected[i] !== undefined);
}

/**
 * The Store on PostgreSQL, for several central replicas sharing one database.
 *
 * Reads stay synchronous, as the Store interface and its callers want: each replica holds every document
 * in memory (the file store does too) and keeps it current from the change log (`underlay_changes`),
 * woken by LISTEN/NOTIFY. Writes go to PostgreSQL one commit at a time per replica, in its own
 * transaction with synchronous commit; a commit is applied in memory at once (a read-modify-write made
 * after it builds on it, as with the file store), acknowledged after COMMIT, and announced on `changes`
 * in change-log order on every replica (the committing one included), so the change feed's index is the
 * same on all replicas.
 *
 * Across replicas every write is a compare-and-set against the document this replica saw: if another
 * replica changed it first, nothing is written and StaleWriteError (a conflict) is thrown. Unique values
 * are claimed in a table whose primary key refuses a second holder on any replica. A failed commit is
 * undone in memory with every later commit of this replica that touched the same documents.
 */
export class PostgresStore extends MemoryState implements Store {
  readonly changes: ChangeFeed;
  override readonly peers: LocalReplicaMessages;
  private readonly channel: PeerChannel;
  private readonly seqWaiters: { seq: number; resolve: () => void }[] = [];
  private readonly logger: Logger;
  private writer!: pg.Client;
  private listener: pg.Client | null = null;
  private readonly jobs: pg.Pool;
  private readonly queue: Pending[] = [];
  private pumping: Promise<void> | null = null;
  /** A catch-up is due whatever was heard (after a reconnect). */
  private forced = false;
  /** The highest change-log position another connection announced (NOTIFY payload). */
  private heard = 0;
  private lastSeq = 0;
  /** The version token of every document in memory (committed, or given by a pending commit), by `collection\0id`. */
  private readonly vers = new Map<string, string>();
  /** Version tokens this replica gives: a random prefix per process and a counter. */
  private readonly verPrefix = `${randomBytes(6).toString('base64url')}.`;
  private verCount = 0;
  private fault: string | null = null;
  private closed = false;
  private reconnectTimer: NodeJS.Timeout | null = null;
  private pruneTimer: NodeJS.Timeout | null = null;

  private constructor(private readonly opts: PostgresStoreOptions) {
    super(opts.collections);
    this.changes = opts.changes ?? new ChangeFeed();
    this.logger = opts.logger ?? silentLogger;
    // Background jobs hold one connection each while they run (the advisory lock), and may query beside it; messages to the other replicas share the pool too.
    this.jobs = new pg.Pool({ connectionString: opts.url, max: 8 });
    this.jobs.on('error', (e) => this.logger.warn({ err: e.message }, 'store: a job connection failed'));
    this.channel = new PeerChannel(this.jobs, this.logger);
    this.peers = new LocalReplicaMessages((topic, payload) => this.channel.send(topic, payload));
  }

  static async open(opts: PostgresStoreOptions): Promise<PostgresStore> {
    const store = new PostgresStore(opts);
    try {
      await store.start();
    } catch (e) {
      await store.close().catch(() => undefined);
      throw e;
    }
    return store;
  }

  private async start(): Promise<void> {
    this.writer = await this.connect();
    const { from, to } = await migrateDatabase(this.writer);
    if (from !== to) this.logger.info({ from, to }, 'store: PostgreSQL schema migrated');
    await this.listen();
    await this.load();
    this.logger.info({ seq: this.lastSeq, counts: this.counts() }, 'store loaded from PostgreSQL');
    const retention = this.opts.changeRetentionMs ?? 3_600_000;
    const prune = () =>
      this.exclusive('change-log-retention', () => this.pruneChanges(retention))
        .then((n) => n && this.logger.debug({ rows: n }, 'store: change log pruned'))
        .catch((e: Error) => this.logger.warn({ err: e.message }, 'store: could not prune the change log'));
    this.pruneTimer = setInterval(prune, this.opts.pruneEveryMs ?? 60_000);
    this.pruneTimer.unref();
  }

  /** Deletes old change-log rows (see pruneChangeLog). Run it under `exclusive`: one replica at a time. Returns the rows deleted. */
  pruneChanges(retentionMs: number): Promise<number> {
    return pruneChangeLog(this.jobs, retentionMs);
  }

  private async connect(): Promise<pg.Client> {
    const c = new pg.Client({ connectionString: this.opts.url });
    c.on('error', (e) => this.onConnectionLost(c, e));
    await c.connect();
    await c.query('SET synchronous_commit = on');
    return c;
  }

  /** LISTEN before loading: a change committed meanwhile is both in the load or after it and notified. */
  private async listen(): Promise<void> {
    const c = await this.connect();
    c.on('notification', (n) => {
      if (n.channel === PEERS) return this.channel.receive(n.payload, this.peers);
      const seq = Number(n.payload);
      this.heard = Number.isFinite(seq) ? Math.max(this.heard, seq) : this.heard;
      if (!Number.isFinite(seq)) this.forced = true;
      if (this.behind()) this.wake();
    });
    await c.query(`LISTEN ${CHANNEL}; LISTEN ${PEERS}`);
    this.listener = c;
  }

  /** Every document, its version and the change-log position they are at, read in one snapshot. */
  private async load(): Promise<void> {
    const snapshot = await readSnapshot(this.writer);
    for (const r of snapshot.docs) {
      this.collFor(r.collection).put(r.doc);
      this.vers.set(`${r.collection}\0${r.doc.id}`, r.ver);
    }
    this.lastSeq = snapshot.seq;
    this.changes.resumeAt(snapshot.seq);
  }

  private collFor(name: string): MemoryCollection {
    return this.collections.get(name) ?? this.collections.set(name, new MemoryCollection({ name, unique: [] })).get(name)!;
  }

  /** Gives the pending commit's documents its versions in the versions map, keeping what they replace in `verUndo`. */
  private applyVersions(p: Pending): void {
    p.verUndo = p.ops.map((op, i) => {
      const k = keyOf(op);
      const prev = this.vers.get(k);
      const v = p.vers[i];
      if (v === undefined) this.vers.delete(k);
      else this.vers.set(k, v);
      return prev;
    });
  }

  /** Takes a pending commit out of memory: its documents and their versions. */
  private undoPending(p: Pending): void {
    undoAll(p.undo);
    for (let i = p.ops.length - 1; i >= 0; i--) {
      const k = keyOf(p.ops[i]);
      const prev = p.verUndo[i];
      if (prev === undefined) this.vers.delete(k);
      else this.vers.set(k, prev);
    }
  }

  commit(ops: WriteOp[]): Promise<void> {
    if (ops.length === 0) return Promise.resolve();
    if (this.closed) return Promise.reject(new UnavailableError('the store is closed'));
    let undo: Undo[];
    try {
      undo = this.applyAll(ops); // unique values and unknown collections are checked here, synchronously
    } catch (e) {
      return Promise.reject(e);
    }
    const vers = ops.map((op) => (op.type === 'put' ? `${this.verPrefix}${(++this.verCount).toString(36)}` : undefined));
    return new Promise<void>((resolve, reject) => {
      const p: Pending = { ops, expected: undo.map((u) => u.prev), exp: [], vers, undo, verUndo: [], resolve, reject, started: performance.now() };
      this.applyVersions(p);
      p.exp = p.verUndo.slice(); // what the writer saw, op by op (a commit may touch a document twice)
      this.queue.push(p);
      this.wake();
    });
  }

  private wake(): void {
    if (this.pumping || this.closed && this.queue.length === 0) return;
    this.pumping = this.pump()
      .catch((e: Error) => this.logger.error({ err: e.message }, 'store: replication pump failed'))
      .finally(() => {
        this.pumping = null;
        if (this.queue.length > 0 || this.behind()) {
          if (!this.fault) this.wake();
        }
      });
  }

  /**
   * One loop per replica: replays other replicas' changes when notified, and writes the queued commits
   * in batches (one transaction, one synchronous COMMIT; see writeBatch).
   */
  private async pump(): Promise<void> {
    while (true) {
      const batch = this.queue.slice(0, MAX_BATCH);
      if (batch.length === 0) {
        if (!this.behind()) return;
        await this.catchUp([]);
        continue;
      }
      let outcomes: CommitOutcome[];
      try {
        outcomes = await writeBatch(this.writer, (n) => this.collections.get(n)?.spec, batch);
      } catch (e) {
        this.refuseAll(batch, e);
        continue;
      }
      await this.catchUp(batch.map((p, i) => ({ p, o: outcomes[i] })));
    }
  }

  /**
   * Brings memory to the change log's end: every pending commit is taken out of memory, the rows after
   * `lastSeq` applied in order (this replica's own with the documents it wrote, so they stay the same
   * objects), the written commits dropped from the queue, the refused ones too (with every pending
   * commit that touched their documents: it was built on them), the rest put back on top. Then the rows
   * are announced and the writers answered: acknowledged after the announcement, refused after the
   * catch-up (so a retry builds on what it lost to).
   */
  private async catchUp(written: { p: Pending; o: CommitOutcome }[]): Promise<void> {
    const own = new Map<number, ChangeRow>();
    for (const { p, o } of written) if (o.ok) o.seqs.forEach((seq, i) => own.set(seq, ownRow(seq, liveOps(p.ops, p.expected)[i], p)));
    let rows = this.followsOwn(written, own) ?? (await this.readChanges(own));
    const snapshot = rows.length > 0 && rows[0].seq > this.lastSeq + 1 ? await this.readSnapshot() : undefined;
    const done = new Set(written.map((w) => w.p));
    const onTop = !snapshot && this.appliesOnTop(rows, own, written, done);
    if (onTop) {
      for (const r of rows) if (!own.has(r.seq)) this.applyRow(r);
    } else {
      for (let i = this.queue.length - 1; i >= 0; i--) this.undoPending(this.queue[i]);
      if (snapshot) {
        own.clear(); // announced as read from the database
        rows = differences(this.collections, snapshot);
        this.vers.clear();
        for (const r of snapshot.docs) this.vers.set(`${r.collection}\0${r.doc.id}`, r.ver);
      }
      for (const r of rows) {
        const c = this.collFor(r.collection);
        if (snapshot) {
          if (r.type === 'put') c.put(r.doc!);
          else c.delete(r.id);
        } else this.applyRow(r);
      }
    }
    if (rows.length > 0) this.lastSeq = rows[rows.length - 1].seq;
    if (snapshot) this.lastSeq = snapshot.seq;
    const tainted = new Set<string>();
    for (const { p, o } of written) if (!o.ok) for (const k of keysOf(p.ops)) tainted.add(k);
    this.queue.splice(0, this.queue.length, ...this.queue.filter((p) => !done.has(p)));
    if (!onTop) this.reapplyPending(tainted);
    for (const r of rows) this.announceRow(r, !own.has(r.seq));
    this.resolveWaiters();
    for (const { p, o } of written) {
      if (o.ok) {
        this.opts.onCommit?.((performance.now() - p.started) / 1000, p.ops.length);
        p.resolve();
      } else p.reject(o.error);
    }
  }

  /**
   * Applies one change row on top of memory (its document, and its version). What the row replaced is
   * what memory holds now (rows apply in order on top of `lastSeq`'s state), so the change log's copy of
   * it is not read back (readChanges): half the JSON to parse per row. This replica's own rows carry the
   * very document it wrote (readChanges), so it stays the same object.
   */
  private applyRow(r: ChangeRow): void {
    const c = this.collFor(r.collection);
    const k = `${r.collection}\0${r.id}`;
    r.before = c.get(r.id) ?? null;
    if (r.type === 'delete') {
      this.vers.delete(k);
      c.delete(r.id);
    } else {
      this.vers.set(k, r.ver ?? '0'); // a row written before schema 4: its document took version '0'
      c.put(r.doc!);
    }
  }

  /**
   * True when this catch-up's rows can be applied on top of memory as it is, pending commits left in
   * place (no undo and re-apply of the whole queue, which costs as much as the queue is long): every
   * commit of the batch was written (its rows are in memory already, in order), and the other replicas'
   * rows touch no document a commit still pending touches (so the order of theirs and ours does not
   * matter) and claim no unique value memory gives another document or a pending commit claims (taking
   * that commit out later would put back a claim on it). Otherwise the pending commits are
   * taken out, the rows applied, the pending ones put back and checked again.
   */
  private appliesOnTop(rows: ChangeRow[], own: Map<number, ChangeRow>, written: { o: CommitOutcome }[], done: Set<Pending>): boolean {
    if (written.some((w) => !w.o.ok)) return false;
    const foreign = rows.filter((r) => !own.has(r.seq));
    if (foreign.length === 0) return true;
    const pendingKeys = new Set<string>();
    /** Unique values pending commits claim (any op: taking one out puts back what the op before it claimed). */
    const pendingClaims = new Set<string>();
    for (const p of this.queue) {
      if (done.has(p)) continue;
      for (const op of p.ops) {
        pendingKeys.add(keyOf(op));
        if (op.type === 'put') for (const u of this.collFor(op.collection).spec.unique) for (const v of u.values(op.doc)) pendingClaims.add(`${op.collection}\0${u.field}\0${v}`);
      }
    }
    for (const r of foreign) {
      if (pendingKeys.has(`${r.collection}\0${r.id}`)) return false;
      const c = this.collFor(r.collection);
      if (r.type === 'put' && c.spec.unique.length > 0) {
        if (c.spec.unique.some((u) => u.values(r.doc!).some((v) => pendingClaims.has(`${r.collection}\0${u.field}\0${v}`)))) return false;
        try {
          c.checkUnique(r.doc!);
        } catch {
          return false;
        }
      }
    }
    return true;
  }

  /**
   * The change rows of this catch-up when they are exactly this replica's own, just written, right after
   * `lastSeq` (nothing refused, nobody else wrote in between): then nothing needs reading, and a commit
   * costs one round trip. Otherwise undefined.
   */
  private followsOwn(written: { o: CommitOutcome }[], own: Map<number, ChangeRow>): ChangeRow[] | undefined {
    if (this.forced || written.length === 0 || written.some((w) => !w.o.ok)) return undefined;
    const rows = [...own.values()].sort((x, y) => x.seq - y.seq);
    if (rows.some((r, i) => r.seq !== this.lastSeq + 1 + i)) return undefined;
    return rows;
  }

  /** For a replica that fell so far behind that the change rows it lacks were pruned. */
  private async readSnapshot(): Promise<Snapshot> {
    this.logger.warn({ at: this.lastSeq }, 'store: this replica fell behind the change log retention; reloading every document');
    return readSnapshot(this.writer);
  }

  /**
   * The change rows after `lastSeq`, in order; `before` is filled in from memory as they are applied
   * (applyRow). This replica's own rows just written (`own`) are not read back: the database sends no
   * document for them and the row written here stands in.
   */
  private async readChanges(own: Map<number, ChangeRow> = new Map()): Promise<ChangeRow[]> {
    this.forced = false;
    const rows: ChangeRow[] = [];
    const ownSeqs = [...own.keys()];
    for (;;) {
      const res = await this.writer.query<Omit<ChangeRow, 'before'> & { seq: string }>(
        'SELECT seq, collection, id, type, CASE WHEN seq = ANY($2::bigint[]) THEN NULL ELSE doc END AS doc, ver FROM underlay_changes WHERE seq > $1 ORDER BY seq LIMIT 5000',
        [rows.length > 0 ? rows[rows.length - 1].seq : this.lastSeq, ownSeqs],
      );
      for (const r of res.rows) {
        const seq = Number(r.seq);
        rows.push(own.get(seq) ?? { ...r, seq, before: null });
      }
      if (res.rows.length < 5000) return rows;
    }
  }

  private behind(): boolean {
    return this.forced || this.heard > this.lastSeq;
  }

  private announceRow(r: ChangeRow, remote = false): void {
    const from = remote ? { remote: true as const } : {};
    this.changes.emit(
      r.type === 'put'
        ? { collection: r.collection, type: 'put', id: r.id, doc: r.doc!, ...(r.before ? { before: r.before } : {}), ...from }
        : { collection: r.collection, type: 'delete', id: r.id, before: r.before!, ...from },
      r.seq,
    );
  }

  /**
   * Puts the pending commits back in memory in order (their documents were taken out). A commit that
   * touches a document in `tainted` (built on a write that failed) or no longer fits the unique indexes
   * is refused, and what it touches is tainted in turn.
   */
  private reapplyPending(tainted: Set<string>): void {
    const keep: Pending[] = [];
    for (const p of this.queue) {
      const keys = keysOf(p.ops);
      if (keys.some((k) => tainted.has(k))) {
        for (const k of keys) tainted.add(k);
        p.reject(new StaleWriteError(p.ops[0].collection, keys[0].split('\0')[1]));
        continue;
      }
      try {
        p.undo = this.applyAll(p.ops);
        this.applyVersions(p);
        keep.push(p);
      } catch (e) {
        for (const k of keys) tainted.add(k);
        p.reject(e);
      }
    }
    this.queue.splice(0, this.queue.length, ...keep);
  }

  /** The batch's transaction failed (the database is unreachable, or worse): nothing was written; its commits and every pending one are refused. */
  private refuseAll(batch: Pending[], e: unknown): void {
    for (let i = this.queue.length - 1; i >= 0; i--) this.undoPending(this.queue[i]);
    const err = isConnectionError(e) ? new UnavailableError(`the database is unavailable (${(e as Error).message}); the write was not made`) : e;
    if (!isConnectionError(e)) this.logger.error({ err: (e as Error).message, commits: batch.length }, 'store: a write transaction failed');
    for (const p of this.queue.splice(0)) p.reject(err);
  }

  private onConnectionLost(c: pg.Client, e: Error): void {
    if (this.closed) return;
    this.fault = `lost the database connection: ${e.message}`;
    this.logger.error({ err: e.message }, 'store: lost the PostgreSQL connection; reconnecting');
    c.removeAllListeners('notification');
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (this.reconnectTimer || this.closed) return;
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      void this.reconnect();
    }, 1000);
    this.reconnectTimer.unref();
  }

  private async reconnect(): Promise<void> {
    try {
      await this.pumping;
      for (const c of [this.writer, this.listener]) await c?.end().catch(() => undefined);
      this.writer = await this.connect();
      await this.listen();
      this.fault = null;
      this.forced = true;
      this.wake();
      this.peers.gap();
      this.logger.info('store: reconnected to PostgreSQL');
    } catch (e) {
      this.fault = `cannot reach the database: ${(e as Error).message}`;
      this.scheduleReconnect();
    }
  }

  /**
   * Runs `fn` on this replica only if no other replica runs the job of that name now (a session-level
   * advisory lock, released when `fn` ends or the replica dies). Returns undefined when another holds it.
   */
  override async exclusive<T>(job: string, fn: () => Promise<T> | T): Promise<T | undefined> {
    const c = await this.jobs.connect();
    try {
      const { ok, seq } = (await c.query<{ ok: boolean; seq: string }>("SELECT pg_try_advisory_lock(hashtext('underlay-job:' || $1)) AS ok, (SELECT seq FROM underlay_counter) AS seq", [job])).rows[0];
      if (!ok) return undefined;
      try {
        await this.reached(Number(seq)); // the job sees what the replica that ran it last wrote
        return await fn();
      } finally {
        await c.query("SELECT pg_advisory_unlock(hashtext('underlay-job:' || $1))", [job]);
      }
    } finally {
      c.release();
    }
  }

  /** Resolves once this replica has replayed the change log up to `seq` (what another replica committed). */
  private reached(seq: number): Promise<void> {
    if (this.lastSeq >= seq) return Promise.resolve();
    this.heard = Math.max(this.heard, seq);
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new UnavailableError(`this replica could not catch up with the database in ${CATCH_UP_MS / 1000} s`)), CATCH_UP_MS);
      timer.unref();
      this.seqWaiters.push({ seq, resolve: () => (clearTimeout(timer), resolve()) });
      this.wake();
    });
  }

  private resolveWaiters(): void {
    for (let i = this.seqWaiters.length - 1; i >= 0; i--) {
      if (this.seqWaiters[i].seq > this.lastSeq) continue;
      this.seqWaiters[i].resolve();
      this.seqWaiters.splice(i, 1);
    }
  }

  health(): StoreHealth {
    return this.fault ? { status: 'degraded', reason: this.fault } : { status: 'ok' };
  }

  async close(): Promise<void> {
    while (this.queue.length > 0 && !this.fault && this.pumping) await this.pumping;
    this.closed = true;
    this.channel.close();
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    if (this.pruneTimer) clearInterval(this.pruneTimer);
    await this.pumping;
    for (const c of [this.writer, this.listener]) await c?.end().catch(() => undefined);
    await this.jobs.end().catch(() => undefined);
  }
}

/** The change row one of this replica's ops wrote (the database held `expected` before it: compare-and-set). */
function ownRow(seq: number, op: WriteOp, p: Pending): ChangeRow {
  const i = p.ops.indexOf(op);
  const before = p.expected[i] ?? null;
  return op.type === 'put'
    ? { seq, collection: op.collection, id: op.doc.id, type: 'put', doc: op.doc, before, ver: p.vers[i]! }
    : { seq, collection: op.collection, id: op.id, type: 'delete', doc: null, before, ver: null };
}

function isConnectionError(e: unknown): boolean {
  const code = (e as { code?: string }).code;
  if (code && /^(08|57P|53)/.test(code)) return true;
  const msg = (e as Error)?.message ?? '';
  return /Connection terminated|ECONNREFUSED|ECONNRESET|not queryable|Client was closed/i.test(msg);
}
