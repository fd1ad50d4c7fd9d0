import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { Machine } from '../../shared/api/resources.js';
import { fleet } from '../../scripts/bench/inventory/fleet.js';
import { HostBlockCache, renderInventoryBody } from './body.js';
import type { InventorySource } from './context.js';
import { def, fixture } from './render-fixture.test-support.js';
import { renderInventory } from './render.js';

const text = (src: InventorySource, cache?: HostBlockCache, opts = {}) => renderInventoryBody(src, { ...opts, fragments: cache }).bytes.toString('utf8');
const withMachine = (src: InventorySource, name: string, f: (m: Machine) => Machine): InventorySource => ({ ...src, machines: src.machines.map((m) => (m.name === name ? f(m) : m)) });

describe('renderInventoryBody: hostvars blocks kept between renders', () => {
  it('reuses a block only while its hosts, what they inherit and their memberships are unchanged', () => {
    const cache = new HostBlockCache(2); // blocks of ~2 hosts
    let src = fixture();
    const same = (s: InventorySource) => expect(text(s, cache)).toBe(JSON.stringify(renderInventory(s)));
    same(src);
    const blocks = cache.misses;
    expect(blocks).toBeGreaterThan(0);
    expect(cache.hits).toBe(0);
    const etag1 = renderInventoryBody(src, { fragments: cache }).etag;
    expect(cache.hits).toBe(blocks);
    expect(cache.misses).toBe(blocks);
    expect(renderInventoryBody(src, { fragments: new HostBlockCache(2) }).etag).toBe(etag1); // cold cache, same ETag
    // A replaced machine document, a changed profile, a member's status: each shows up.
    src = withMachine(src, 'db-1', (m) => ({ ...m, params: { ...m.params, role: 'replica' } }));
    same(src);
    src.profiles = src.profiles.map((p) => (p.name === 'web' ? { ...p, params: { ...p.params, port: 8443 } } : p));
    same(src);
    src.services = src.services.map((svc) => ({ ...svc, members: svc.members.map((m) => ({ ...m, status: 'warning' as const })) }));
    same(src);
    expect(renderInventoryBody(src, { fragments: cache }).etag).not.toBe(etag1);
    same({ ...src, machines: src.machines.filter((m) => m.name !== 'db-1') });
    same(src);
    // A param turning secret must not be served from an old block.
    src.params = [...src.params, def('role', { secret: true })];
    const body = text(src, cache);
    expect(body).not.toContain('replica');
    expect(body).not.toContain('frontend');
    same(src);
  });

  it('re-serialises only the block of a machine written, added or removed (blocks do not shift)', () => {
    const src = fleet(600);
    const cache = new HostBlockCache(16);
    text(src, cache);
    const blocks = cache.misses;
    expect(blocks).toBeGreaterThan(10);
    const step = (s: InventorySource, maxMisses: number) => {
      const [h, m] = [cache.hits, cache.misses];
      expect(text(s, cache)).toBe(JSON.stringify(renderInventory(s)));
      expect(cache.misses - m).toBeGreaterThanOrEqual(1);
      expect(cache.misses - m).toBeLessThanOrEqual(maxMisses);
      expect(cache.hits - h).toBeGreaterThanOrEqual(blocks - 3);
    };
    // Each step starts from the one before (an old document coming back is a change too).
    const written = withMachine(src, 'node-000300', (m) => ({ ...m, state: 'failed' }));
    step(written, 1);
    const removed = { ...written, machines: written.machines.filter((m) => m.name !== 'node-000100') };
    step(removed, 1);
    step({ ...removed, machines: [...removed.machines, { ...src.machines[5]!, id: 'm-new', name: 'node-000100a' }] }, 2);
  });

  it('writes a cold render into one buffer, and gives kept blocks their own once most of it is replaced', () => {
    const src = fleet(600);
    const cache = new HostBlockCache(16);
    const cold = renderInventoryBody(src, { fragments: cache });
    const hostvars = cold.chunks.slice(1, -1);
    const slab = hostvars[0]!.buffer;
    expect(hostvars.filter((c) => c.buffer === slab).length).toBeGreaterThan(hostvars.length - 3); // the first block and any overflow aside
    // Replace the first two thirds of the machines: the blocks still kept must not pin the big buffer.
    const changed = { ...src, machines: src.machines.map((m, i) => (i >= 400 ? m : { ...m })) };
    const hits = cache.hits;
    const warm = renderInventoryBody(changed, { fragments: cache });
    expect(cache.hits - hits).toBeGreaterThan(5); // the last third's blocks were kept
    expect(warm.bytes.equals(renderInventoryBody(changed).bytes)).toBe(true);
    const again = renderInventoryBody(changed, { fragments: cache });
    expect(again.etag).toBe(warm.etag);
    expect(again.chunks.slice(1, -1).some((c) => c.buffer === slab)).toBe(false);
    expect(again.bytes.equals(warm.bytes)).toBe(true);
  });

  it('keeps blocks per view, and a filtered view matches the object form', () => {
    const src = fleet(300);
    const cache = new HostBlockCache(16);
    for (const opts of [{}, { site: 'site-2' }, { group: 'big_memory' }, { prefix: 'ul' }]) {
      expect(text(src, cache, opts)).toBe(JSON.stringify(renderInventory(src, opts)));
      const misses = cache.misses;
      expect(text(src, cache, opts)).toBe(JSON.stringify(renderInventory(src, opts)));
      expect(cache.misses).toBe(misses);
    }
  });
});

describe('renderInventoryBody: ETag', () => {
  const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

  it('changes exactly when the bytes change, cached or not', () => {
    const base = fleet(300);
    const variants: [string, InventorySource, object?][] = [
      ['unchanged', { ...base, machines: [...base.machines].reverse() }],
      ['one host var', withMachine(base, 'node-000007', (m) => ({ ...m, params: { ...m.params, role: 'db2' } }))],
      ['one fact', withMachine(base, 'node-000251', (m) => ({ ...m, facts: { ...m.facts, firmware: 'bios' } }))],
      ['a host removed', { ...base, machines: base.machines.filter((m) => m.name !== 'node-000000') }],
      ['the last host removed', { ...base, machines: base.machines.filter((m) => m.name !== 'node-000299') }],
      ['a host added', { ...base, machines: [...base.machines, { ...base.machines[0]!, id: 'x', name: 'node-000000b' }] }],
      ['a host renamed', withMachine(base, 'node-000042', (m) => ({ ...m, name: 'node-000042x' }))],
      ['a group var', { ...base, sites: base.sites.map((s) => (s.name === 'site-1' ? { ...s, params: { ...s.params, ntp: 'x' } } : s)) }],
      ['a rule removed', { ...base, rules: base.rules.slice(1) }],
      ['a prefix', base, { prefix: 'ul' }],
      ['a site view', base, { site: 'site-1' }],
      ['no hosts', { ...base, machines: [] }],
    ];
    const cache = new HostBlockCache(16);
    const seen = new Map<string, string>();
    const first = renderInventoryBody(base, { fragments: cache });
    seen.set(first.etag, sha(first.bytes));
    for (const [name, src, opts] of variants) {
      for (const fragments of [cache, new HostBlockCache(16)]) {
        const r = renderInventoryBody(src, { ...opts, fragments });
        const digest = sha(r.bytes);
        if (seen.has(r.etag)) expect(seen.get(r.etag), name).toBe(digest);
        else expect([...seen.values()], name).not.toContain(digest);
        seen.set(r.etag, digest);
      }
    }
    expect(renderInventoryBody(variants[0]![1], { fragments: cache }).etag).toBe(first.etag);
    expect(seen.size).toBe(variants.length); // every variant but "unchanged" is a new document with a new ETag
  });
});
