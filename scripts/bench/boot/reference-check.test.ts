import { describe, expect, it } from 'vitest';
import { clientVerdict, pinnedArgv, ratioOrRefusal, referenceVerdict } from './reference-check.js';

describe('reference checks', () => {
  it('prints a ratio only when the reference reached its order of magnitude', () => {
    expect(ratioOrRefusal(12000, 10000, 'Kea', 5000)).toBe('1.20x Kea');
    const refused = ratioOrRefusal(900, 731, 'Kea', 5000);
    expect(refused).toMatch(/^NO RATIO: Kea did 731 leases\/s/);
    expect(refused).not.toMatch(/\d\.\d\dx/);
    expect(ratioOrRefusal(1, NaN, 'Kea', 0)).toMatch(/no ratio/);
  });

  it('calls a client that kept a core busy the bottleneck', () => {
    expect(clientVerdict('atftp', 9, 10).limited).toBe(true);
    expect(clientVerdict('atftp', 3, 10)).toEqual({ limited: false, text: 'atftp used 0.30 of a core: not the limit (the server is)' });
  });

  it('refuses a reference that did not keep its core busy, or stayed below the floor', () => {
    const base = { name: 'Kea', leasesPerSec: 11000, serverCores: 0.97, generatorCores: 0.6, floor: 5000 };
    expect(referenceVerdict(base)).toEqual({ ok: true, text: 'Kea 0.97 of its core, generator 0.60' });
    const idle = referenceVerdict({ ...base, serverCores: 0.55, generatorCores: 1.0 });
    expect(idle.ok).toBe(false);
    expect(idle.text).toMatch(/^NO RATIO: Kea 0.55 of its core, generator 1.00: Kea did not keep its core busy/);
    expect(referenceVerdict({ ...base, serverCores: NaN }).ok).toBe(false);
    const slow = referenceVerdict({ ...base, leasesPerSec: 4925 });
    expect(slow).toMatchObject({ ok: false });
    expect(slow.text).toMatch(/^NO RATIO: Kea did 4925 leases\/s/);
  });

  it('pins a command with taskset only when given CPUs', () => {
    expect(pinnedArgv('0', ['kea-dhcp4', '-c', 'k.json'])).toEqual(['taskset', '-c', '0', 'kea-dhcp4', '-c', 'k.json']);
    expect(pinnedArgv(undefined, ['x'])).toEqual(['x']);
  });
});
