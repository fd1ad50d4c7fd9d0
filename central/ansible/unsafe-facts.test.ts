import { describe, expect, it } from 'vitest';
import { fleet } from '../../scripts/bench/inventory/fleet.js';
import { HardwareFacts } from '../../shared/api/facts.js';
import { COLLECTOR_SAMPLE } from '../../shared/api/facts.test-support.js';
import { unsafeFacts, unsafeFactsJson } from './unsafe-facts.js';

/** Reference: every string wrapped, everything else as is, in the value's own key order. */
function wrapAll(v: unknown): unknown {
  if (typeof v === 'string') return { __ansible_unsafe: v };
  if (Array.isArray(v)) return v.map(wrapAll);
  if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, wrapAll(x)]));
  return v;
}

/** Every leaf of a value with its path; a marked string counts as one leaf. */
function leaves(v: unknown, path = ''): [string, unknown][] {
  if (v !== null && typeof v === 'object' && !Array.isArray(v) && Object.keys(v).length === 1 && '__ansible_unsafe' in v) return [[path, v]];
  if (v !== null && typeof v === 'object') return Object.entries(v).flatMap(([k, x]) => leaves(x, `${path}.${k}`));
  return [[path, v]];
}

const PAYLOAD = "{{ lookup('pipe','id') }}";

describe('unsafeFactsJson', () => {
  it('marks every string of what the real collector sends and leaves numbers, booleans and null as they are', () => {
    const facts = HardwareFacts.parse(COLLECTOR_SAMPLE);
    const out = JSON.parse(unsafeFactsJson(facts));
    expect(out).toEqual(wrapAll(facts));
    const all = leaves(out);
    expect(all.length).toBeGreaterThan(20);
    for (const [path, v] of all) {
      if (typeof v === 'object' && v !== null) expect(typeof (v as { __ansible_unsafe: unknown }).__ansible_unsafe, path).toBe('string');
      else expect(['number', 'boolean'].includes(typeof v) || v === null, path).toBe(true);
    }
    expect(out.cpu.threads).toBe(COLLECTOR_SAMPLE.cpu.threads);
    expect(out.disks[0].rotational).toBe(false);
    expect(out.system.serial).toEqual({ __ansible_unsafe: '' });
    expect(out.nics[1].speedMbps).toBeNull();
    expect(out.nics[0].addresses).toEqual([{ __ansible_unsafe: '198.18.0.40/24' }, { __ansible_unsafe: 'fe80::b696:91ff:feaa:bb01/64' }]);
  });

  it('writes exactly the generic result for the bench fleet (the fast path), with a payload kept verbatim', () => {
    const { machines } = fleet(300);
    machines[7]!.facts.cpu!.model = PAYLOAD;
    for (const m of machines) expect(unsafeFactsJson(m.facts)).toBe(JSON.stringify(wrapAll(m.facts)));
    expect(unsafeFactsJson(machines[7]!.facts)).toContain(`"model":{"__ansible_unsafe":${JSON.stringify(PAYLOAD)}}`);
  });

  it('marks every string of collector-shaped facts whose strings look like JSON syntax (the fast path cannot be led astray)', () => {
    const tricky = ['","', '":"', '"]', '"}', '\\', '\\"', ':"x",', '[', ']', '"', '', 'a\\', '$1$2$&', '\u2028😀', `{"__ansible_unsafe":"x"}`];
    const { machines } = fleet(tricky.length);
    machines.forEach((m, i) => {
      const t = tricky[i]!;
      m.facts.system!.serial = t;
      m.facts.cpu!.model = t + t;
      m.facts.disks![0]!.model = t;
      m.facts.nics![0]!.driver = t;
      m.facts.nics![0]!.addresses = [t, 'x', t];
      m.facts.bmc = { address: t };
      m.facts.bootMac = t;
    });
    for (const m of machines) {
      const text = unsafeFactsJson(m.facts);
      expect(text).toBe(JSON.stringify(wrapAll(m.facts)));
      expect(JSON.parse(text)).toEqual(wrapAll(m.facts));
    }
  });

  it('writes repeated and non-repeating values of the shared fields alike (the bounded lookup of marked strings)', () => {
    const { machines } = fleet(6000);
    // Distinct vendors beyond the lookup's bound, then the first ones again (looked up after it was cleared).
    machines.forEach((m, i) => (m.facts.system!.vendor = i < 5000 ? `vendor ${i} "q"` : `vendor ${i - 5000} "q"`));
    machines[5999]!.facts.nics![1]!.driver = PAYLOAD;
    for (const m of machines) expect(unsafeFactsJson(m.facts)).toBe(JSON.stringify(wrapAll(m.facts)));
  });

  it('marks facts of any other shape too (stored before the strict schema), in their own key order', () => {
    const legacy = {
      memory: { totalBytes: '300000000000' },
      cpu: { model: PAYLOAD, flags: ['{% raw %}', 'sse'] },
      tags: ['a', '', null],
      labels: { env: 'prod', n: 3, deep: { x: '{{ x }}' } },
      nics: [{ name: 'eth0', extra: true }, 'not-an-object'],
      weird: 'quote " back \\ nl \n 😀 \u2028',
      nan: Number.NaN,
    };
    const out = JSON.parse(unsafeFactsJson(legacy));
    expect(out).toEqual(wrapAll({ ...legacy, nan: null }));
    expect(Object.keys(out)).toEqual(Object.keys(legacy));
    // Reordered known keys alone are still the collector's shape: written in its order.
    expect(Object.keys(JSON.parse(unsafeFactsJson({ memory: { totalBytes: 1 }, cpu: { threads: 2 } })))).toEqual(['cpu', 'memory']);
  });

  it('drops keys that would make Ansible decode a marker of their own, at any depth', () => {
    const smuggled = { __ansible_unsafe: { a: 1 }, cpu: { model: 'x', __ansible_vault: '$ANSIBLE_VAULT;1.1;AES256\n3033' }, labels: { __ansible_x: 'y', ok: 'z' } };
    const text = unsafeFactsJson(smuggled);
    expect(JSON.parse(text)).toEqual({ cpu: { model: { __ansible_unsafe: 'x' } }, labels: { ok: { __ansible_unsafe: 'z' } } });
    expect(text).not.toContain('__ansible_vault');
    expect(text.match(/__ansible_/g)).toHaveLength(2); // the two markers we wrote
  });

  it('survives very deep stored values without a stack overflow (deep parts become null)', () => {
    let deep: unknown = 'bottom';
    for (let i = 0; i < 20_000; i++) deep = { d: deep };
    const text = unsafeFactsJson({ labels: deep });
    expect(text.length).toBeLessThan(1000);
    expect(text).not.toContain('bottom');
    expect(unsafeFactsJson([PAYLOAD])).toBe(`[{"__ansible_unsafe":${JSON.stringify(PAYLOAD)}}]`);
    expect(unsafeFactsJson(undefined)).toBe('null');
  });

  it('unsafeFacts is the same document as a value', () => {
    const f = fleet(3).machines[1]!.facts;
    expect(unsafeFacts(f)).toEqual(wrapAll(f));
    expect(JSON.stringify(unsafeFacts(f))).toBe(unsafeFactsJson(f));
  });
});
