import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ConflictError } from '../../shared/errors/domain-errors.js';
import type { Change } from './change-feed.js';
import { FileStore } from './file-store.js';
import { MemoryStore } from './memory-store.js';
import { UniqueConflictError, type CollectionSpec, type Doc, type Store } from './types.js';

const SPECS: CollectionSpec[] = [
  { name: 'things', unique: [{ field: 'name', values: (d) => [String(d.name)] }] },
  { name: 'other', unique: [] },
];
const thing = (id: string, name = id, extra: Record<string, unknown> = {}): Doc => ({ id, name, ...extra });

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** The Store contract both implementations keep (MemoryStore: the same minus durability). */
const stores: [string, () => Promise<Store>][] = [
  ['FileStore', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'store-semantics-'));
    dirs.push(dir);
    return FileStore.open({ dir: join(dir, 'data'), collections: SPECS });
  }],
  ['MemoryStore', async () => new MemoryStore(SPECS)],
];

describe.each(stores)('%s', (_name, open) => {
  const watch = (s: Store) => {
    const seen: Change[] = [];
    s.changes.on((c) => seen.push(c));
    return seen;
  };

  it('announces each op of a commit after it, with the document it replaced', async () => {
    const s = await open();
    await s.put('things', thing('a', 'alpha', { v: 1 }));
    const seen = watch(s);
    const index = s.changes.index;
    await s.commit([
      { type: 'put', collection: 'things', doc: thing('a', 'alpha', { v: 2 }) },
      { type: 'put', collection: 'other', doc: { id: 'o1' } },
      { type: 'delete', collection: 'things', id: 'a' },
    ]);
    expect(seen).toEqual([
      { collection: 'things', type: 'put', id: 'a', doc: thing('a', 'alpha', { v: 2 }), before: thing('a', 'alpha', { v: 1 }) },
      { collection: 'other', type: 'put', id: 'o1', doc: { id: 'o1' } },
      { collection: 'things', type: 'delete', id: 'a', before: thing('a', 'alpha', { v: 2 }) },
    ]);
    expect(s.changes.index).toBe(index + 3);
    expect(s.changes.indexOf(['other'])).toBe(1);
    await s.close();
  });

  it('is all or nothing: a unique conflict (a domain ConflictError) rolls back the ops before it and announces nothing', async () => {
    const s = await open();
    await s.put('things', thing('a', 'alpha'));
    const seen = watch(s);
    const err = await s
      .commit([
        { type: 'put', collection: 'other', doc: { id: 'o1' } },
        { type: 'delete', collection: 'things', id: 'a' },
        { type: 'put', collection: 'things', doc: thing('b', 'beta') },
        { type: 'put', collection: 'things', doc: thing('c', 'beta') },
      ])
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UniqueConflictError);
    expect(err).toBeInstanceOf(ConflictError);
    expect(s.get('other', 'o1')).toBeUndefined();
    expect(s.findUnique('things', 'name', 'alpha')?.id).toBe('a');
    expect(s.findUnique('things', 'name', 'beta')).toBeUndefined();
    expect(seen).toEqual([]);
    await s.close();
  });

  it('a listener that throws neither fails the durable commit nor keeps the change from the others', async () => {
    const s = await open();
    s.changes.on(() => {
      throw new Error('listener bug');
    });
    const seen = watch(s);
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.message);
    process.on('warning', onWarning);
    await expect(s.put('things', thing('a'))).resolves.toEqual(thing('a'));
    await new Promise((r) => setImmediate(r));
    process.off('warning', onWarning);
    expect(s.get('things', 'a')).toEqual(thing('a'));
    expect(seen.map((c) => c.id)).toEqual(['a']);
    expect(warnings).toEqual(['a change listener failed on things/a: listener bug']);
    await s.close();
  });

  it('refuses an unknown collection, reads and writes alike', async () => {
    const s = await open();
    expect(() => s.list('nope')).toThrow(/unknown collection nope/);
    await expect(s.put('nope', { id: 'x' })).rejects.toThrow(/unknown collection nope/);
    await s.close();
  });

  it('lists with equality filters, array membership, sort and paging; counts per collection', async () => {
    const s = await open();
    await s.put('things', thing('1', 'b', { tags: ['x'] }));
    await s.put('things', thing('2', 'a', { tags: ['x', 'y'] }));
    await s.put('things', thing('3', 'c', { tags: ['y'] }));
    expect(s.list('things', { where: { tags: 'x' } }).items.map((d) => d.name)).toEqual(['a', 'b']);
    expect(s.list('things', { limit: 1, offset: 1 })).toMatchObject({ items: [{ name: 'b' }], total: 3, limit: 1, offset: 1 });
    expect(s.counts()).toEqual({ things: 3, other: 0 });
    await s.close();
  });
});
