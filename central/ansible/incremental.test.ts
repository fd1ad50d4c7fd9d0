import { describe, expect, it } from 'vitest';
import type { Machine } from '../../shared/api/resources.js';
import type { Service } from '../../shared/api/services.js';
import { HostBlockCache, renderInventory, renderInventoryBody, type InventorySource } from './render.js';
import { IncrementalInventory } from './incremental.js';
import { def, edgeCases, machine, profile, site } from './render-fixture.test-support.js';

/** mulberry32: a small seeded PRNG, so a failing sequence can be replayed from its seed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const SITES = ['dc1', 'dc-1', 'dc_1', 'Zürich-2', 'nowhere'];
const PROFILES = ['web', 'db', 'jump', 'global', 'Ünïcode prof', 'missing-profile'];
const STATES = ['discovered', 'ready', 'deployed', 'failed'];

/** One random write, as the store would make it: documents replaced, never changed in place. */
function randomWrite(src: InventorySource, rnd: () => number, serial: number): string {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const r = rnd();
  const machines = [...src.machines];
  if (r < 0.25 || machines.length === 0) {
    const name = `h-${Math.floor(rnd() * 60)}`;
    if (machines.some((m) => m.name === name)) return 'noop';
    machines.push(machine(name, { id: `created-${serial}`, site: pick(SITES), rack: rnd() < 0.7 ? `r${Math.floor(rnd() * 4)}` : undefined, profiles: rnd() < 0.5 ? [pick(PROFILES)] : [pick(PROFILES), pick(PROFILES)], state: pick(STATES) as Machine['state'], address: rnd() < 0.5 ? `10.0.0.${serial % 250}` : undefined, params: rnd() < 0.3 ? { role: pick(['web', 'db', 'x']), tier: 'own' } : {}, facts: { cpu: { model: pick(['Xeon', 'EPYC', '']) }, memory: { totalBytes: Math.floor(rnd() * 600) * 2 ** 30 } } }));
    src.machines = machines;
    return 'create machine';
  }
  if (r < 0.55) {
    const i = Math.floor(rnd() * machines.length);
    const m = machines[i]!;
    const patch = pick(['state', 'site', 'rack', 'profiles', 'params', 'facts', 'rename'] as const);
    const next: Machine = { ...m };
    if (patch === 'state') next.state = pick(STATES) as Machine['state'];
    else if (patch === 'site') next.site = pick(SITES);
    else if (patch === 'rack') next.rack = rnd() < 0.3 ? undefined : `r${Math.floor(rnd() * 4)}`;
    else if (patch === 'profiles') next.profiles = rnd() < 0.3 ? [] : [pick(PROFILES)];
    else if (patch === 'params') next.params = { role: pick(['web', 'db', 'x']), n: serial };
    else if (patch === 'facts') next.facts = { cpu: { model: pick(['Xeon', 'EPYC', 'ARM']) }, memory: { totalBytes: Math.floor(rnd() * 600) * 2 ** 30 } };
    else next.name = `h-${Math.floor(rnd() * 60)}`;
    if (next.name !== m.name && machines.some((x) => x.name === next.name)) return 'noop';
    machines[i] = next;
    src.machines = machines;
    return `update machine ${patch}`;
  }
  if (r < 0.65) {
    machines.splice(Math.floor(rnd() * machines.length), 1);
    src.machines = machines;
    return 'delete machine';
  }
  if (r < 0.72) {
    const name = pick(PROFILES);
    const rest = src.profiles.filter((p) => p.name !== name);
    src.profiles = rnd() < 0.3 ? rest : [...rest, profile(name, { tier: `t${serial}`, port: serial })];
    return 'write profile';
  }
  if (r < 0.79) {
    const name = pick(SITES);
    const rest = src.sites.filter((s) => s.name !== name);
    src.sites = rnd() < 0.3 ? rest : [...rest, site(name, { ntp: `ntp${serial}` })];
    return 'write site';
  }
  if (r < 0.86) {
    const name = pick(['tier', 'color', 'role', 'ntp']);
    const rest = src.params.filter((d) => d.name !== name);
    src.params = rnd() < 0.3 ? rest : [...rest, def(name, rnd() < 0.3 ? { secret: true } : { default: `d${serial}` })];
    return 'write param';
  }
  const services = [...src.services];
  const k = Math.floor(rnd() * services.length);
  const svc = services[k]!;
  const members = svc.members.filter(() => rnd() < 0.8);
  if (rnd() < 0.7 && machines.length > 0) {
    const m = pick(machines);
    members.push({ id: `mem-${serial}`, machine: rnd() < 0.8 ? m.name : `h-${Math.floor(rnd() * 60)}`, address: '10.1.1.1', port: serial, tags: [], meta: {}, status: rnd() < 0.7 ? 'passing' : 'critical', statusSince: '2024-01-01T00:00:00Z', registeredAt: '2024-01-01T00:00:00Z' });
  }
  services[k] = { ...svc, members } as Service;
  src.services = services;
  return 'write service';
}

describe('IncrementalInventory', () => {
  it('after random writes renders byte for byte (and ETag for ETag) what a cold render does', () => {
    for (const seed of [1, 2, 3, 4, 5, 6]) {
      const rnd = prng(seed);
      const src = edgeCases();
      const blockSize = [1, 2, 4][seed % 3]!;
      const model = new IncrementalInventory('', blockSize);
      const prefixed = new IncrementalInventory('ul', blockSize);
      for (let step = 0; step < 120; step++) {
        const what = randomWrite(src, rnd, step);
        const snapshot: InventorySource = { ...src };
        const cold = renderInventoryBody(snapshot, { fragments: new HostBlockCache(blockSize) });
        const warm = model.render(snapshot);
        const label = `seed ${seed} step ${step} (${what})`;
        expect(warm.bytes.toString('utf8'), label).toBe(cold.bytes.toString('utf8'));
        expect(warm.etag, label).toBe(cold.etag);
        expect(warm.hosts, label).toBe(cold.hosts);
        if (step % 10 === 0) {
          const coldPrefixed = renderInventoryBody(snapshot, { prefix: 'ul', fragments: new HostBlockCache(blockSize) });
          expect(prefixed.render(snapshot).bytes.toString('utf8'), label).toBe(coldPrefixed.bytes.toString('utf8'));
        }
      }
      // Machine writes took the incremental path; other writes rebuilt.
      expect(model.updates, `seed ${seed}`).toBeGreaterThan(40);
      expect(model.rebuilds, `seed ${seed}`).toBeGreaterThan(1);
    }
  });

  it('many hosts with the default block size: one changed host re-serialises one block, the ETag follows the bytes', () => {
    const src = edgeCases();
    const many: Machine[] = [];
    for (let i = 0; i < 3000; i++) many.push(machine(`n-${String(i).padStart(5, '0')}`, { rack: `r${i % 7}`, state: i % 3 ? 'deployed' : 'ready' }));
    src.machines = many;
    const model = new IncrementalInventory();
    const first = model.render({ ...src });
    expect(model.render({ ...src }).etag).toBe(first.etag); // nothing changed: same document, same ETag
    const i = 1234;
    src.machines = many.map((m, k) => (k === i ? { ...m, state: 'failed' as const } : m));
    const before = model.blocksSerialised;
    const after = model.render({ ...src });
    expect(model.blocksSerialised - before).toBe(1); // the changed host's block only
    const cold = renderInventoryBody({ ...src });
    expect(after.bytes.equals(cold.bytes)).toBe(true);
    expect(after.etag).toBe(cold.etag);
    expect(after.etag).not.toBe(first.etag);
    // The unchanged blocks are the very same buffers as before (not serialised again).
    const same = after.chunks.filter((c) => first.chunks.includes(c)).length;
    expect(same).toBeGreaterThan(after.chunks.length - 12);
    expect(model.updates).toBe(2);
    // Many writes between two renders: 500 hosts deleted, one renamed, one added.
    src.machines = src.machines.filter((_, k) => k % 6 !== 0).map((m, k) => (k === 7 ? { ...m, name: 'a-renamed' } : m));
    src.machines = [...src.machines, machine('zz-new', { rack: 'r-new' })];
    const many2 = model.render({ ...src });
    const cold2 = renderInventoryBody({ ...src });
    expect(many2.bytes.equals(cold2.bytes)).toBe(true);
    expect(many2.etag).toBe(cold2.etag);
  });

  it('a machine written with new facts shows them, in the model and in a new one (facts JSON is reused per facts object)', () => {
    const src = edgeCases();
    const model = new IncrementalInventory();
    model.render({ ...src });
    const target = src.machines[0]!;
    // A write replaces the document and its facts; an untouched neighbour keeps its facts object.
    src.machines = src.machines.map((m) => (m === target ? { ...m, facts: { cpu: { model: 'after the write {{ x }}' } } } : m));
    // The object form (renderInventory) serialises facts afresh: the reference.
    const reference = Buffer.from(JSON.stringify(renderInventory({ ...src })));
    const updated = model.render({ ...src });
    const fresh = new IncrementalInventory().render({ ...src });
    expect(updated.bytes.equals(reference)).toBe(true);
    expect(fresh.bytes.equals(reference)).toBe(true);
    expect(fresh.bytes.toString()).toContain('{"model":{"__ansible_unsafe":"after the write {{ x }}"}}');
  });
});
