import { describe, expect, it } from 'vitest';
import { ConflictError } from '../../shared/errors/domain-errors.js';
import type { Change } from './change-feed.js';
import { UniqueConflictError, type CollectionSpec, type Doc, type Store } from './types.js';

/** The collections the conformance suite uses. */
export const CONFORMANCE_SPECS: CollectionSpec[] = [
  { name: 'things', unique: [{ field: 'name', values: (d) => [String(d.name)] }] },
  { name: 'other', unique: [] },
  { name: 'hosts', unique: [{ field: 'mac', values: (d) => ((d.macs as string[] | undefined) ?? []).map((m) => m.toLowerCase()) }] },
];

export interface ConformanceBackend {
  /** A new, empty store over CONFORMANCE_SPECS. */
  open(): Promise<Store>;
  /** Durable backends: closes `s` and opens the same data again. */
  reopen?(s: Store): Promise<Store>;
}

const thing = (id: string, name = id, extra: Record<string, unknown> = {}): Doc => ({ id, name, ...extra });

/**
 * The Store contract every backend keeps (file, PostgreSQL; MemoryStore: the same minus durability).
 * Each backend's test file calls this once; a semantic a caller relies on belongs here, not in one
 * backend's tests.
 */
export function storeConformance(name: string, backend: ConformanceBackend): void {
  const { open } = backend;
  const watch = (s: Store) => {
    const seen: Change[] = [];
    s.changes.on((c) => seen.push(c));
    return seen;
  };

  describe(`${name}: store conformance`, () => {
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

    it('unique values: one document may not claim a value twice; a changed document frees its old values', async () => {
      const s = await open();
      await expect(s.put('hosts', { id: 'h1', macs: ['AA:01', 'aa:01'] })).rejects.toBeInstanceOf(UniqueConflictError);
      await s.put('hosts', { id: 'h1', macs: ['AA:01', 'aa:02'] });
      expect(s.findUnique('hosts', 'mac', 'aa:02')?.id).toBe('h1');
      await expect(s.put('hosts', { id: 'h2', macs: ['aa:02'] })).rejects.toBeInstanceOf(UniqueConflictError);
      await s.put('hosts', { id: 'h1', macs: ['aa:01'] });
      await s.put('hosts', { id: 'h2', macs: ['aa:02'] });
      expect(s.findUnique('hosts', 'mac', 'aa:02')?.id).toBe('h2');
      await s.delete('hosts', 'h1');
      await s.put('hosts', { id: 'h3', macs: ['aa:01'] });
      expect(s.findUnique('hosts', 'mac', 'aa:01')?.id).toBe('h3');
      await s.close();
    });

    it('a write is visible to reads as soon as it is made (a read-modify-write builds on it), before it is acknowledged', async () => {
      const s = await open();
      await s.put('things', thing('a', 'alpha', { n: 1 }));
      const bump = () => {
        const cur = s.get<Doc & { n: number }>('things', 'a')!;
        return s.put('things', { ...cur, n: cur.n + 1 });
      };
      const writes = [bump(), bump(), bump()];
      expect(s.get('things', 'a')).toMatchObject({ n: 4 });
      await expect(s.put('things', thing('b', 'alpha'))).rejects.toBeInstanceOf(UniqueConflictError);
      await Promise.all(writes);
      expect(s.get('things', 'a')).toMatchObject({ n: 4 });
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

    it('lists with equality filters, array membership, params, sort and paging; counts per collection', async () => {
      const s = await open();
      await s.put('things', thing('1', 'b', { tags: ['x'], params: { role: 'web' } }));
      await s.put('things', thing('2', 'a', { tags: ['x', 'y'] }));
      await s.put('things', thing('3', 'c', { tags: ['y'], params: { role: 'db' } }));
      expect(s.list('things', { where: { tags: 'x' } }).items.map((d) => d.name)).toEqual(['a', 'b']);
      expect(s.list('things', { where: { 'params.role': 'WEB' } }).items.map((d) => d.id)).toEqual(['1']);
      expect(s.list('things', { limit: 1, offset: 1 })).toMatchObject({ items: [{ name: 'b' }], total: 3, limit: 1, offset: 1 });
      expect(s.counts()).toEqual({ things: 3, other: 0, hosts: 0 });
      // Text search: any case, a substring of one of the fields, array elements too, with where and paging.
      const names = (q: Parameters<typeof s.list>[1]) => s.list('things', q).items.map((d) => d.name);
      expect(names({ search: { text: 'B', fields: ['name'] } })).toEqual(['b']);
      expect(names({ search: { text: 'y', fields: ['name', 'tags'] } })).toEqual(['a', 'c']);
      expect(names({ search: { text: 'y', fields: ['tags'] }, where: { 'params.role': 'db' } })).toEqual(['c']);
      expect(s.list('things', { search: { text: 'x', fields: ['tags'] }, limit: 1 })).toMatchObject({ items: [{ name: 'a' }], total: 2 });
      expect(names({ search: { text: 'nothing', fields: ['name', 'tags', 'params.role'] } })).toEqual([]);
      await s.close();
    });

    it('runs a background job given to exclusive() when nothing else holds it', async () => {
      const s = await open();
      await expect(s.exclusive('job', () => 42)).resolves.toBe(42);
      await s.close();
    });

    if (backend.reopen) {
      const reopen = backend.reopen;
      it('keeps acknowledged puts and deletes, and only those, across a reopen', async () => {
        const s = await open();
        await s.put('things', thing('a'));
        await s.put('things', thing('b', 'b', { n: 1 }));
        await s.put('things', thing('b', 'b', { n: 2 }));
        await s.put('things', thing('c'));
        await s.delete('things', 'c');
        await s.commit([{ type: 'put', collection: 'hosts', doc: { id: 'h', macs: ['aa:01'] } }]).catch(() => undefined);
        await s.put('hosts', { id: 'h2', macs: ['aa:01'] }).catch(() => undefined); // refused: not kept
        const again = await reopen(s);
        expect(again.list('things').items.map((d) => d.id)).toEqual(['a', 'b']);
        expect(again.get('things', 'b')).toEqual({ id: 'b', name: 'b', n: 2 });
        expect(again.findUnique('hosts', 'mac', 'aa:01')?.id).toBe('h');
        expect(again.get('hosts', 'h2')).toBeUndefined();
        await again.close();
      });
    }
  });
}
