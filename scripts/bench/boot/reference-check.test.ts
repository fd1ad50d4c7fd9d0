import { describe, expect, it } from 'vitest';
import { clientVerdict, ratioOrRefusal } from './reference-check.js';

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
});
