import { describe, expect, it } from 'vitest';
import { MemoryCollection } from './memory-collection.js';
import { UniqueConflictError, type Doc } from './types.js';

const machines = () =>
  new MemoryCollection({
    name: 'machines',
    unique: [
      { field: 'name', values: (d) => [String(d.name)] },
      { field: 'mac', values: (d) => ((d.macs as string[] | undefined) ?? []).map((m) => m.toLowerCase()) },
    ],
  });
const m = (id: string, name: string, macs: string[] = [], extra: Record<string, unknown> = {}): Doc => ({ id, name, macs, ...extra });

describe('MemoryCollection', () => {
  it('stores, replaces and deletes documents, keeping unique indexes in step', () => {
    const c = machines();
    c.put(m('1', 'a', ['52:54:00:00:00:01']));
    expect(c.findUnique('mac', '52:54:00:00:00:01')?.id).toBe('1');
    c.put(m('1', 'a2', ['52:54:00:00:00:02'])); // rename + MAC change: old index entries go away
    expect(c.findUnique('name', 'a')).toBeUndefined();
    expect(c.findUnique('mac', '52:54:00:00:00:01')).toBeUndefined();
    expect(c.findUnique('name', 'a2')?.id).toBe('1');
    c.delete('1');
    expect(c.get('1')).toBeUndefined();
    expect(c.findUnique('mac', '52:54:00:00:00:02')).toBeUndefined();
    c.delete('1'); // idempotent
    expect(c.docs.size).toBe(0);
    expect(() => c.findUnique('serial', 'x')).toThrow(/no unique index/);
  });

  it('detects conflicts with other documents and within one document, case-insensitively, but not with itself', () => {
    const c = machines();
    c.put(m('1', 'a', ['52:54:00:00:00:01']));
    expect(() => c.checkUnique(m('2', 'a'))).toThrow(UniqueConflictError);
    expect(() => c.checkUnique(m('2', 'b', ['52:54:00:00:00:01']))).toThrow(/mac "52:54:00:00:00:01" is already in use/);
    expect(() => c.checkUnique(m('2', 'b', ['52:54:00:00:00:0A', '52:54:00:00:00:0a']))).toThrow(UniqueConflictError);
    expect(() => c.checkUnique(m('1', 'a', ['52:54:00:00:00:01', '52:54:00:00:00:03']))).not.toThrow();
    expect(() => c.checkUnique(m('2', 'A', ['52:54:00:00:00:04']))).not.toThrow(); // names are case-sensitive
    try {
      c.checkUnique(m('3', 'a'));
    } catch (e) {
      expect(e).toMatchObject({ collection: 'machines', field: 'name', value: 'a' });
    }
  });

  it('lists with equality filters on fields, array members and nested params (case-insensitive), sorted by name', () => {
    const c = machines();
    c.put(m('3', 'c', [], { site: 'dc1', profiles: ['web', 'base'], params: { role: 'web', rank: 3 } }));
    c.put(m('1', 'a', [], { site: 'dc1', profiles: ['db'], params: { role: 'db', rank: 1 } }));
    c.put(m('2', 'b', [], { site: 'DC2', profiles: [], params: { role: 'web' } }));
    const ids = (where: Record<string, string | number>) => c.list({ where }).items.map((d) => d.id);
    expect(c.list().items.map((d) => d.name)).toEqual(['a', 'b', 'c']);
    expect(ids({ site: 'dc1' })).toEqual(['1', '3']);
    expect(ids({ site: 'dc2' })).toEqual(['2']);
    expect(ids({ profiles: 'web' })).toEqual(['3']);
    expect(ids({ 'params.role': 'web' })).toEqual(['2', '3']);
    expect(ids({ 'params.rank': 3 })).toEqual(['3']);
    expect(ids({ 'params.rank': '1' })).toEqual(['1']);
    expect(ids({ 'params.role': 'web', site: 'dc1' })).toEqual(['3']);
    expect(ids({ 'params.missing': 'x' })).toEqual([]);
    expect(ids({ 'params.toString': 'x' })).toEqual([]); // no prototype lookups
    expect(ids({ 'site.length': 3 })).toEqual([]); // no walking into strings
    expect(c.list({ sort: 'id' }).items.map((d) => d.id)).toEqual(['1', '2', '3']);
  });

  it('pages with limit and offset, reporting the total', () => {
    const c = machines();
    for (let i = 0; i < 7; i++) c.put(m(String(i), `n${i}`));
    expect(c.list({ limit: 3, offset: 0 })).toMatchObject({ total: 7, limit: 3, offset: 0 });
    const pages = [0, 3, 6].flatMap((offset) => c.list({ limit: 3, offset }).items.map((d) => d.name));
    expect(pages).toEqual(['n0', 'n1', 'n2', 'n3', 'n4', 'n5', 'n6']);
    expect(c.list({ limit: 3, offset: 9 }).items).toEqual([]);
  });
});
