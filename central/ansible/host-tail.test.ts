import { describe, expect, it } from 'vitest';
import type { Machine } from '../../shared/api/resources.js';
import { fleet } from '../../scripts/bench/inventory/fleet.js';
import { hostTailJson, keptTail, prepareTails, prepareTailsInBackground } from './host-tail.js';
import { IncrementalInventory } from './incremental.js';
import { goldenCases } from './render-fixture.test-support.js';
import { renderInventoryBody, type InventorySource } from './render.js';

/** The source with fresh machine documents (nothing kept for them yet), as after a start. */
function fresh(src: InventorySource): InventorySource {
  return { ...src, machines: structuredClone(src.machines) };
}

describe('hostvars tails kept per machine document', () => {
  const cases = goldenCases((n) => fleet(Math.min(n, 300)));

  for (const { name, src, opts } of cases) {
    it(`${name}: a render over prepared tails gives the bytes and ETag of one without`, () => {
      const plain = fresh(src);
      const before = renderInventoryBody(plain, opts);
      expect(plain.machines.every((m) => keptTail(m) === undefined)).toBe(true); // a cold render makes none
      const prepared = fresh(src);
      expect(prepareTails(prepared.machines)).toBe(prepared.machines.length);
      const after = renderInventoryBody(prepared, opts);
      expect(after.bytes.equals(before.bytes)).toBe(true);
      expect(after.etag).toBe(before.etag);
      if (!opts.site && !opts.group) {
        const model = new IncrementalInventory(opts.prefix).render(prepared);
        expect(model.bytes.equals(before.bytes)).toBe(true);
        expect(model.etag).toBe(before.etag);
      }
    });
  }

  it('a kept tail is the UTF-8 of the machine’s tail text, escapes and non-ASCII included', () => {
    const edge = fresh(cases.find((c) => c.name === 'edge')!.src);
    prepareTails(edge.machines);
    for (const m of edge.machines) expect(Buffer.from(keptTail(m)!).toString('utf8')).toBe(hostTailJson(m));
    expect(edge.machines.some((m) => /[^\x00-\x7f]/.test(hostTailJson(m)))).toBe(true);
  });

  it('a written machine (a new document) is rendered from its own facts, and a few changed hosts get tails', () => {
    const src = fresh(goldenCases(fleet)[0]!.src);
    prepareTails(src.machines);
    const model = new IncrementalInventory();
    model.render(src);
    const i = 17;
    const old = src.machines[i]!;
    const next: Machine = { ...old, facts: { ...old.facts, cpu: { model: 'Brand-new CPU 9000', sockets: 1, cores: 8, threads: 16 } } };
    src.machines = src.machines.map((m, j) => (j === i ? next : m));
    expect(keptTail(next)).toBeUndefined();
    const out = model.render(src);
    expect(out.bytes.toString('utf8')).toContain('"model":{"__ansible_unsafe":"Brand-new CPU 9000"}');
    expect(keptTail(next)).toBeDefined();
    const reference = renderInventoryBody(fresh(src));
    expect(out.bytes.equals(reference.bytes)).toBe(true);
    expect(out.etag).toBe(reference.etag);
  });

  it('prepares in slices in the background and stops when asked', async () => {
    const a = fresh(goldenCases(fleet)[0]!.src).machines;
    const made = await new Promise<number>((resolve) => prepareTailsInBackground(a, (n) => resolve(n), 64));
    expect(made).toBe(a.length);
    expect(a.every((m) => keptTail(m) !== undefined)).toBe(true);

    const b = fresh(goldenCases(fleet)[0]!.src).machines;
    let finished = false;
    const stop = prepareTailsInBackground(b, () => (finished = true), 64);
    await new Promise((r) => setImmediate(r)); // one slice
    stop();
    await new Promise((r) => setTimeout(r, 20));
    expect(finished).toBe(false);
    const count = b.filter((m) => keptTail(m) !== undefined).length;
    expect(count).toBeGreaterThan(0);
    expect(count).toBeLessThan(b.length);
  });
});
