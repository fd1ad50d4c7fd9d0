import { appendFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FileStore } from './file-store.js';
import { DirLockedError } from '../../shared/fs/dir-lock.js';
import { JournalCorruptError } from '../../shared/fs/journal.js';
import { StorageFullError, StorageUnavailableError } from '../../shared/fs/storage-errors.js';
import { UniqueConflictError, type CollectionSpec, type Doc } from './types.js';

const SPECS: CollectionSpec[] = [
  { name: 'things', unique: [{ field: 'name', values: (d) => [String(d.name)] }] },
  { name: 'other', unique: [] },
  { name: 'patched', unique: [], patches: true },
];

let dir: string;
beforeEach(() => {
  dir = join(mkdtempSync(join(tmpdir(), 'file-store-test-')), 'data');
});
afterEach(() => rmSync(join(dir, '..'), { recursive: true, force: true }));

const open = (extra: Partial<Parameters<typeof FileStore.open>[0]> = {}) => FileStore.open({ dir, collections: SPECS, ...extra });
const thing = (id: string, name = id, extra: Record<string, unknown> = {}): Doc => ({ id, name, ...extra });
const journals = () => readdirSync(dir).filter((f) => /^journal\.\d+\.jsonl$/.test(f)).sort();
const snapshot = () => JSON.parse(readFileSync(join(dir, 'store.json'), 'utf8'));
const names = (s: FileStore) => s.list('things').items.map((d) => d.name);

describe('FileStore', () => {
  // Puts and deletes kept across a reopen: the store conformance suite (file-store.conformance.test.ts).

  it('commits atomically: a conflicting op rolls back the ops before it, in memory and on disk', async () => {
    const s = await open();
    await s.put('things', thing('a', 'alpha'));
    await expect(
      s.commit([
        { type: 'put', collection: 'other', doc: { id: 'o1' } },
        { type: 'delete', collection: 'things', id: 'a' },
        { type: 'put', collection: 'things', doc: thing('b', 'beta') },
        { type: 'put', collection: 'things', doc: thing('c', 'beta') },
      ]),
    ).rejects.toBeInstanceOf(UniqueConflictError);
    expect(s.get('other', 'o1')).toBeUndefined();
    expect(s.get('things', 'b')).toBeUndefined();
    expect(s.findUnique('things', 'name', 'alpha')?.id).toBe('a');
    expect(s.findUnique('things', 'name', 'beta')).toBeUndefined();
    await s.close();
    const again = await open();
    expect(names(again)).toEqual(['alpha']);
    expect(again.count('other')).toBe(0);
    await again.close();
  });

  it('journals an update of a `patches` collection as its changed fields, and replays it to the same document', async () => {
    const s = await open();
    const v1 = { id: 'p1', big: 'x'.repeat(2000), state: 'queued', history: [{ state: 'queued' }], gone: true, n: 1, m: 2 };
    await s.put('patched', v1);
    const { gone: _gone, ...rest } = v1;
    const v2 = { ...rest, state: 'succeeded', history: [...v1.history, { state: 'succeeded' }] };
    await s.put('patched', v2);
    const v3 = { ...v2, history: [...v2.history, { state: 'note' }] };
    await s.put('patched', v3);
    await s.put('other', { id: 'o1', big: 'y'.repeat(2000) });
    await s.put('other', { id: 'o1', big: 'y'.repeat(2000), n: 2 }); // not declared: a whole put
    const lines = readFileSync(join(dir, journals().at(-1)!), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(lines[1].ops).toEqual([{ type: 'patch', collection: 'patched', id: 'p1', set: { state: 'succeeded' }, unset: ['gone'], append: { history: { from: 1, items: [{ state: 'succeeded' }] } } }]);
    expect(lines[2].ops[0].type).toBe('patch');
    expect(lines[4].ops[0].type).toBe('put');
    await s.close();
    const again = await open();
    expect(again.get('patched', 'p1')).toEqual(v3);
    expect(again.get('other', 'o1')).toEqual({ id: 'o1', big: 'y'.repeat(2000), n: 2 });
    await again.close();
  });

  it('refuses a second opener of the same directory', async () => {
    const s = await open();
    await expect(open()).rejects.toBeInstanceOf(DirLockedError);
    await s.close();
    const again = await open();
    await again.close();
  });

  it('recovers from a torn journal tail and keeps the writes made after it', async () => {
    const s = await open();
    await s.put('things', thing('a'));
    await s.close();
    const [j] = journals();
    appendFileSync(join(dir, j), '{"ops":[{"type":"put","collection":"things","doc":{"id":"torn"'); // crash mid-append

    const second = await open();
    expect(names(second)).toEqual(['a']);
    await second.put('things', thing('b'));
    await second.close();

    const third = await open();
    expect(names(third)).toEqual(['a', 'b']);
    await third.close();
  });

  it('keeps acknowledged writes when the journal had only a torn record (nothing to replay)', async () => {
    const s = await open();
    await s.close();
    const [j] = journals();
    appendFileSync(join(dir, j), '{"ops":[{"type":"put"');
    const second = await open();
    await second.put('things', thing('after'));
    await second.close();
    const third = await open();
    expect(names(third)).toEqual(['after']);
    await third.close();
  });

  it('compacts into a snapshot and drops old journals', async () => {
    const s = await open({ compactAfterBytes: 1 });
    await Promise.all(Array.from({ length: 50 }, (_, i) => s.put('things', thing(`t${i}`))));
    await s.put('things', thing('last'));
    await s.close();
    expect(journals().length).toBe(1);
    const again = await open();
    expect(again.count('things')).toBe(51);
    await again.close();
    expect(snapshot().collections.things).toHaveLength(51);
  });

  describe('a crash during compaction', () => {
    it('before the snapshot was written: replays the old journal and then the new one', async () => {
      const s = await open();
      await s.put('things', thing('a', 'a', { v: 1 }));
      await s.put('things', thing('gone'));
      await s.close();
      const gen = snapshot().journalGeneration as number;
      // The crashed compaction had switched to journal gen+1 and written to it; store.json is still at gen.
      writeFileSync(
        join(dir, `journal.${gen + 1}.jsonl`),
        [
          { ops: [{ type: 'put', collection: 'things', doc: thing('a', 'a', { v: 2 }) }] },
          { ops: [{ type: 'delete', collection: 'things', id: 'gone' }] },
          { ops: [{ type: 'put', collection: 'things', doc: thing('b') }] },
        ]
          .map((r) => JSON.stringify(r) + '\n')
          .join(''),
      );
      const again = await open();
      expect(names(again)).toEqual(['a', 'b']);
      expect(again.get('things', 'a')).toMatchObject({ v: 2 });
      await again.close();
      // Recovery folded both journals into a new snapshot.
      expect(snapshot().journalGeneration).toBeGreaterThan(gen + 1);
      expect(snapshot().collections.things.map((d: Doc) => d.name).sort()).toEqual(['a', 'b']);
      expect(journals()).toEqual([`journal.${snapshot().journalGeneration}.jsonl`]);
    });

    it('after the snapshot was written but before the old journal was removed: does not replay it', async () => {
      const s = await open();
      await s.put('things', thing('a'));
      await s.put('things', thing('b'));
      await s.delete('things', 'b');
      await s.close();
      // Reopen folds the journal (replayed > 0) into the snapshot and removes it; bring the old journal back.
      const before = journals();
      const oldText = readFileSync(join(dir, before[0]), 'utf8');
      const again = await open();
      await again.close();
      const gen = snapshot().journalGeneration as number;
      expect(gen).toBeGreaterThan(Number(/\d+/.exec(before[0])![0]));
      writeFileSync(join(dir, before[0]), oldText);
      // A leftover temp file of an interrupted durable write, too.
      writeFileSync(join(dir, '.store.json.99999.deadbeef.tmp'), '{"half');

      const third = await open();
      expect(names(third)).toEqual(['a']); // "b" stays deleted: the stale journal was not replayed
      await third.close();
      expect(existsSync(join(dir, before[0]))).toBe(false);
    });
  });

  it('refuses to start over a corrupt snapshot or a newer schema', async () => {
    const s = await open();
    await s.close();
    const good = readFileSync(join(dir, 'store.json'), 'utf8');
    writeFileSync(join(dir, 'store.json'), good.slice(0, 10));
    await expect(open()).rejects.toThrow(/not valid JSON/);
    writeFileSync(join(dir, 'store.json'), JSON.stringify({ ...JSON.parse(good), schemaVersion: 999 }));
    await expect(open()).rejects.toThrow(/newer than this central/);
    // The failed opens released the lock.
    expect(readdirSync(dir).filter((f) => f.startsWith('lock'))).toEqual([]);
  });

  it('keeps collections it does not know and lists with filters, sort and paging', async () => {
    const s = await open();
    await s.commit([{ type: 'put', collection: 'things', doc: thing('x', 'x', { tags: ['a', 'B'], params: { role: 'web' } }) }]);
    await s.put('things', thing('y', 'y', { tags: ['b'], params: { role: 'db' } }));
    await s.close();
    const snap = snapshot();
    snap.collections.future = [{ id: 'f1' }];
    writeFileSync(join(dir, 'store.json'), JSON.stringify(snap));
    const again = await open();
    expect(again.counts()).toMatchObject({ things: 2, future: 1 });
    expect(again.list('things', { where: { tags: 'b' } }).items.map((d) => d.id)).toEqual(['x', 'y']);
    expect(again.list('things', { where: { 'params.role': 'WEB' } }).items.map((d) => d.id)).toEqual(['x']);
    expect(again.list('things', { limit: 1, offset: 1 })).toMatchObject({ total: 2, limit: 1, offset: 1, items: [{ id: 'y' }] });
    await again.close();
    const third = await open();
    expect(third.counts().future).toBe(1);
    await third.close();
  });

  describe('when the disk refuses a write', () => {
    type Fh = Record<string, (...a: unknown[]) => Promise<unknown>>;
    /** The current journal's file handle (private), to inject failures as a full disk would cause them. */
    const journalFh = (s: FileStore) => (s as unknown as { journal: { fh: Fh } }).journal.fh;
    const failWrites = (s: FileStore, code = 'ENOSPC') => {
      const fh = journalFh(s);
      const orig = fh.write;
      fh.write = async (...a: unknown[]) => {
        // Half of the batch reaches the file, then the error: the journal must cut it back.
        await orig.call(fh, a[0], a[1], Math.floor((a[2] as number) / 2), a[3]);
        throw Object.assign(new Error(`${code}: injected`), { code });
      };
      return () => (fh.write = orig);
    };
    /** Holds the current journal's fdatasync until `release()`; then it fails (EIO) if `fail` was set. */
    const holdDatasync = (s: FileStore) => {
      const fh = journalFh(s);
      const orig = fh.datasync;
      let release!: () => void;
      const gate = new Promise<void>((r) => (release = r));
      const ctl = { fail: false, release, restore: () => (fh.datasync = orig) };
      fh.datasync = async () => {
        await gate;
        if (ctl.fail) throw Object.assign(new Error('EIO: injected'), { code: 'EIO' });
        return orig.call(fh);
      };
      return ctl;
    };

    it('refuses the whole batch, rolls it back in memory, keeps nothing on disk, and takes writes again later', async () => {
      const s = await open();
      await s.put('things', thing('a', 'alpha', { v: 1 }));
      const announced: string[] = [];
      s.changes.on((c) => announced.push(`${c.type} ${c.id}`));
      const restore = failWrites(s);
      // Concurrent writers share the failing batch (or queue behind it): all are refused.
      const results = await Promise.allSettled([
        s.put('things', thing('a', 'alpha', { v: 2 })),
        s.put('things', thing('b', 'beta')),
        s.delete('things', 'a'),
        s.commit([{ type: 'put', collection: 'other', doc: { id: 'o1' } }]),
      ]);
      for (const r of results) {
        expect(r.status).toBe('rejected');
        expect((r as PromiseRejectedResult).reason).toBeInstanceOf(StorageFullError);
      }
      expect(s.get('things', 'a')).toEqual({ id: 'a', name: 'alpha', v: 1 });
      expect(s.get('things', 'b')).toBeUndefined();
      expect(s.findUnique('things', 'name', 'beta')).toBeUndefined();
      expect(s.count('other')).toBe(0);
      expect(s.health()).toMatchObject({ status: 'degraded', reason: expect.stringMatching(/^disk full: ENOSPC/) });
      expect(announced).toEqual([]); // a refused write is never announced
      // The unique index was rolled back too: "beta" can be taken by another document.
      restore();
      await s.put('things', thing('c', 'beta'));
      expect(announced).toEqual(['put c']);
      expect(s.health()).toEqual({ status: 'ok' });
      await s.close();
      const again = await open();
      expect(again.list('things').items).toEqual([thing('a', 'alpha', { v: 1 }), thing('c', 'beta')]);
      expect(again.count('other')).toBe(0);
      await again.close();
    });

    it('maps other I/O errors to StorageUnavailableError', async () => {
      const s = await open();
      const restore = failWrites(s, 'EIO');
      await expect(s.put('things', thing('x'))).rejects.toBeInstanceOf(StorageUnavailableError);
      restore();
      await s.close();
    });

    it('a write in flight is seen by read-modify-write, vanishes if refused, and never reaches a snapshot', async () => {
      const s = await open();
      await s.put('things', thing('a', 'alpha', { v: 1 }));
      const sync = holdDatasync(s);
      const inFlight = [s.put('things', thing('a', 'renamed', { v: 2 })), s.put('things', thing('b', 'beta'))];
      await new Promise((r) => setTimeout(r, 20)); // the batch is written, waiting for its fdatasync
      // A read-modify-write now builds on the writes in flight (a one-time token used twice fails once).
      expect(s.get('things', 'a')).toMatchObject({ v: 2 });
      await expect(s.put('things', thing('z', 'beta'))).rejects.toBeInstanceOf(UniqueConflictError);
      // A compaction asked for meanwhile waits until they are durable or refused.
      const compaction = s.compact();
      // Made during the compaction: applied at once (seen by reads), its append waits for the switch.
      const waiting = s.put('things', thing('c', 'gamma'));
      expect(s.get('things', 'c')).toMatchObject({ name: 'gamma' });
      // The fdatasync fails: the writes in flight are refused and rolled back.
      sync.fail = true;
      sync.release();
      const results = await Promise.allSettled([...inFlight, waiting]);
      // All three are refused: the one waiting for the switch may have been built on the two (as the
      // journal fails every append queued behind a failed batch).
      for (const r of results) {
        expect(r.status).toBe('rejected');
        expect((r as PromiseRejectedResult).reason).toBeInstanceOf(StorageUnavailableError);
      }
      sync.restore();
      await compaction;
      const snap = snapshot().collections.things.map((d: Doc) => d.id);
      expect(snap).not.toContain('b'); // the snapshot never holds a refused write
      expect(snap).toContain('a');
      expect(snapshot().collections.things.find((d: Doc) => d.id === 'a')).toEqual(thing('a', 'alpha', { v: 1 }));
      expect(snap).not.toContain('c');
      expect(s.get('things', 'c')).toBeUndefined();
      expect(s.get('things', 'a')).toEqual(thing('a', 'alpha', { v: 1 }));
      expect(s.get('things', 'b')).toBeUndefined();
      await s.put('things', thing('b', 'beta'));
      await s.close();
      const again = await open();
      expect(again.list('things').items).toEqual([thing('a', 'alpha', { v: 1 }), thing('b', 'beta')]);
      await again.close();
    });

    it('a commit made while compaction switches journals is applied at once, acknowledged once durable, and left out of the snapshot', async () => {
      const s = await open();
      await s.put('things', thing('a', 'alpha', { v: 1 }));
      const sync = holdDatasync(s);
      const inFlight = s.put('things', thing('b', 'beta'));
      await new Promise((r) => setTimeout(r, 20)); // written, waiting for its fdatasync
      const compaction = s.compact(); // waits for the journal to be idle
      let acked = false;
      const held = s.put('things', thing('c', 'gamma')).then(() => (acked = true));
      // Applied at once: a read, a unique index and a read-modify-write see it while its append waits.
      expect(s.get('things', 'c')).toMatchObject({ name: 'gamma' });
      await expect(s.put('things', thing('z', 'gamma'))).rejects.toBeInstanceOf(UniqueConflictError);
      await new Promise((r) => setTimeout(r, 20));
      expect(acked).toBe(false); // not durable yet: not acknowledged
      sync.release();
      await Promise.all([inFlight, compaction, held]);
      sync.restore();
      const snap = snapshot().collections.things.map((d: Doc) => d.id);
      expect(snap).toEqual(expect.arrayContaining(['a', 'b']));
      expect(snap).not.toContain('c'); // in the new journal, not the snapshot taken before it was durable
      await s.close();
      const again = await open();
      expect(again.list('things').items.map((d) => d.id)).toEqual(['a', 'b', 'c']);
      await again.close();
    });

    it('a failing compaction keeps the snapshot and journals, never crashes, and is retried until it works', async () => {
      const s = await open({ compactAfterBytes: 1, retryCompactionMs: 50 });
      await s.put('things', thing('a'));
      await s.compact();
      const adapter = (s as unknown as { db: { adapter: { write: (d: unknown) => Promise<void> } } }).db.adapter;
      const origWrite = adapter.write.bind(adapter);
      let failing = true;
      adapter.write = async (d) => {
        if (failing) throw Object.assign(new Error('ENOSPC: injected'), { code: 'ENOSPC' });
        return origWrite(d);
      };
      const unhandled: unknown[] = [];
      const onUnhandled = (e: unknown) => unhandled.push(e);
      process.on('unhandledRejection', onUnhandled);
      try {
        // Each acknowledged write triggers a background compaction (compactAfterBytes: 1), which fails.
        for (let i = 0; i < 5; i++) await s.put('things', thing(`t${i}`));
        await expect(s.compact()).rejects.toBeInstanceOf(StorageFullError);
        expect(s.health()).toMatchObject({ status: 'degraded', reason: expect.stringMatching(/compaction failed: disk full/) });
        expect(snapshot().collections.things.map((d: Doc) => d.id)).toEqual(['a']); // the old snapshot stays
        // Restarting now replays the journals: nothing acknowledged is lost.
        failing = false;
        for (let i = 0; i < 100 && s.health().status !== 'ok'; i++) await new Promise((r) => setTimeout(r, 20));
        expect(s.health()).toEqual({ status: 'ok' }); // the retry timer compacted by itself
        expect(snapshot().collections.things).toHaveLength(6);
        await new Promise((r) => setTimeout(r, 20));
        expect(unhandled).toEqual([]);
      } finally {
        process.off('unhandledRejection', onUnhandled);
      }
      await s.close();
      expect(journals()).toHaveLength(1);
      const again = await open();
      expect(again.count('things')).toBe(6);
      await again.close();
    });

    it('starts when the start-up compaction fails (full disk), serving what was acknowledged', async () => {
      const s = await open();
      await s.put('things', thing('a'));
      await s.put('things', thing('b'));
      await s.close(); // the next open replays them and wants to compact
      const { DurableJsonFile } = await import('./lowdb-durable-adapter.js');
      const orig = DurableJsonFile.prototype.write;
      DurableJsonFile.prototype.write = async () => {
        throw Object.assign(new Error('ENOSPC: injected'), { code: 'ENOSPC' });
      };
      try {
        const again = await open({ retryCompactionMs: 60_000 });
        expect(names(again)).toEqual(['a', 'b']);
        expect(again.health()).toMatchObject({ status: 'degraded' });
        await again.close();
      } finally {
        DurableJsonFile.prototype.write = orig;
      }
      const third = await open();
      expect(names(third)).toEqual(['a', 'b']);
      await third.close();
    });
  });

  it('refuses to start over a corrupt complete journal line, naming file, line and offset', async () => {
    const s = await open();
    await s.put('things', thing('a'));
    await s.put('things', thing('b'));
    await s.close();
    const [j] = journals();
    const text = readFileSync(join(dir, j), 'utf8');
    const lines = text.split('\n');
    // A corrupt line in the middle, then a record after it (which would be silently dropped by a reader that stops).
    writeFileSync(join(dir, j), [lines[0], '{"ops":[{"type":"put"garbage', ...lines.slice(1)].join('\n'));
    const err = await open().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(JournalCorruptError);
    expect((err as Error).message).toContain(`${join(dir, j)} line 2 (byte offset ${Buffer.byteLength(lines[0]) + 1})`);
    expect(readdirSync(dir).filter((f) => f.startsWith('lock'))).toEqual([]); // released
    // Valid JSON that is not a store record is corruption too.
    writeFileSync(join(dir, j), [lines[0], '{"ops":[{"type":"put","collection":"things"}]}', ...lines.slice(1)].join('\n'));
    await expect(open()).rejects.toThrow(/line 2 .*not a store journal record/);
  });
});
