import { describe, expect, it } from 'vitest';
import { fleet } from '../../scripts/bench/inventory/fleet.js';
import { HardwareFacts, InvalidFactsError, MAX_FACTS_BYTES, parseFacts } from './facts.js';
import { COLLECTOR_SAMPLE } from './facts.test-support.js';

function problems(input: unknown): { path: string; message: string }[] {
  try {
    parseFacts(input);
  } catch (e) {
    expect(e).toBeInstanceOf(InvalidFactsError);
    return (e as InvalidFactsError).problems;
  }
  throw new Error('accepted');
}

describe('HardwareFacts: what the collector sends is accepted', () => {
  it('accepts a full server report, the bench fleet and an empty object', () => {
    expect(parseFacts(COLLECTOR_SAMPLE)).toEqual(COLLECTOR_SAMPLE);
    for (const m of fleet(20).machines) expect(parseFacts(m.facts)).toEqual(m.facts);
    expect(parseFacts({})).toEqual({});
    // Many disks are fine while the whole stays under the size limit (a 60-bay storage server).
    const disks = Array.from({ length: 60 }, (_, i) => ({ name: `sd${i}`, sizeBytes: 16e12, model: 'ST16000NM001G-2KK103', serial: `ZL2${i}ABC`, rotational: true }));
    expect(parseFacts({ ...COLLECTOR_SAMPLE, disks }).disks).toHaveLength(60);
  });
});

describe('HardwareFacts: anything else is refused with the offending path', () => {
  it('refuses unknown keys at any level (rejected, not dropped)', () => {
    expect(problems({ ...COLLECTOR_SAMPLE, hostname: "{{ lookup('pipe','id') }}" })).toEqual([{ path: 'hostname', message: 'unknown field' }]);
    expect(problems({ cpu: { model: 'x', flags: ['sse'] } })).toEqual([{ path: 'cpu.flags', message: 'unknown field' }]);
    expect(problems({ disks: [{ name: 'sda' }, { name: 'sdb', wwn: 'x' }] })).toEqual([{ path: 'disks.1.wwn', message: 'unknown field' }]);
    expect(problems({ __ansible_unsafe: 'x' })).toEqual([{ path: '__ansible_unsafe', message: 'unknown field' }]);
    expect(HardwareFacts.safeParse({ bmc: { address: '10.0.0.1', password: 'x' } }).success).toBe(false);
  });

  it('refuses long strings, long arrays and wrong types', () => {
    expect(problems({ cpu: { model: 'x'.repeat(257) } })[0]!.path).toBe('cpu.model');
    expect(problems({ system: { uuid: 'u'.repeat(65) } })[0]!.path).toBe('system.uuid');
    expect(problems({ nics: [{ name: 'n'.repeat(65) }] })[0]!.path).toBe('nics.0.name');
    expect(problems({ bootMac: 'm'.repeat(33) })[0]!.path).toBe('bootMac');
    expect(problems({ disks: Array.from({ length: 513 }, () => ({})) })[0]!.path).toBe('disks');
    expect(problems({ nics: Array.from({ length: 257 }, () => ({})) })[0]!.path).toBe('nics');
    expect(problems({ memory: { totalBytes: 'lots' } })[0]!.path).toBe('memory.totalBytes');
    expect(problems({ firmware: 'coreboot' })[0]!.path).toBe('firmware');
    expect(problems('facts')[0]!.path).toBe('(body)');
  });

  it(`refuses more than ${MAX_FACTS_BYTES} bytes of JSON in all, though every part is within its own bound`, () => {
    const disk = (i: number) => ({ name: `sd${i}`, sizeBytes: 1, model: 'm'.repeat(256), serial: 's'.repeat(256), rotational: true });
    const big = { disks: Array.from({ length: 200 }, (_, i) => disk(i)) };
    const e = problems(big);
    expect(e).toHaveLength(1);
    expect(e[0]!.message).toMatch(/at most 65536 are accepted/);
    // Multi-byte text counts in bytes, not characters.
    const cjk = { disks: Array.from({ length: 100 }, (_, i) => ({ ...disk(i), model: '漢'.repeat(256) })) };
    expect(Buffer.byteLength(JSON.stringify(cjk)) > MAX_FACTS_BYTES && JSON.stringify(cjk).length < MAX_FACTS_BYTES).toBe(true);
    expect(problems(cjk)[0]!.message).toMatch(/bytes of JSON/);
  });

  it('refuses hostile shapes without parsing their elements, and without throwing anything but InvalidFactsError', () => {
    let deep: unknown = 'x';
    for (let i = 0; i < 50_000; i++) deep = { a: deep };
    // A million disks: the length is checked before any element is read (counted, not timed).
    let elementsRead = 0;
    const disks = new Proxy(Array.from({ length: 1_000_000 }, () => ({})), {
      get(target, key, receiver) {
        if (typeof key === 'string' && /^\d+$/.test(key)) elementsRead++;
        return Reflect.get(target, key, receiver);
      },
    });
    const model = 'x'.repeat(4 * 1024 * 1024);
    expect(problems({ disks })[0]!.path).toBe('disks');
    expect(elementsRead).toBe(0);
    expect(problems({ cpu: { model } })[0]!.path).toBe('cpu.model');
    expect(problems({ labels: deep })).toEqual([{ path: 'labels', message: 'unknown field' }]);
    expect(problems({ cpu: { model: deep } })[0]!.path).toBe('cpu.model');
    expect(problems([deep])[0]!.path).toBe('(body)');
  });

  it('InvalidFactsError says what is wrong and where', () => {
    expect(() => parseFacts({ cpu: { model: 1, bogus: true } })).toThrow(/invalid facts: .*cpu\.bogus: unknown field/);
  });
});
