import { describe, expect, it } from 'vitest';
import { bestAddress, discoveryAddresses, removeAddress, replaceSource, sameAddresses } from './addresses.js';

describe('machine addresses', () => {
  it('replaces one source at a time, dropping duplicates, and removes a released lease', () => {
    let a = replaceSource(undefined, 'lease', [{ address: '198.18.0.5' }], 't1');
    a = replaceSource(a, 'discovery', [{ address: '198.18.0.6' }, { address: '198.18.0.6' }], 't1');
    a = replaceSource(a, 'lease', [{ address: '198.18.0.7' }], 't2');
    expect(a.map((x) => `${x.source}:${x.address}`)).toEqual(['discovery:198.18.0.6', 'lease:198.18.0.7']);
    expect(removeAddress(a, 'lease', '198.18.0.7').map((x) => x.address)).toEqual(['198.18.0.6']);
    expect(removeAddress(a, 'discovery', '198.18.0.7')).toHaveLength(2);
    expect(sameAddresses(a, replaceSource(a, 'lease', [{ address: '198.18.0.7' }], 't3'))).toBe(true);
    expect(sameAddresses(a, removeAddress(a, 'lease', '198.18.0.7'))).toBe(false);
  });

  it('picks the installed OS first, then the lease, then discovery, then the static address; IPv4 first; never loopback or link-local', () => {
    const at = 'x';
    expect(bestAddress({})).toBeUndefined();
    expect(bestAddress({ address: '198.18.9.9' })).toBe('198.18.9.9');
    const disc = { source: 'discovery' as const, address: '198.18.0.3', at };
    const lease = { source: 'lease' as const, address: '198.18.0.2', at };
    const os = [{ source: 'os' as const, address: '127.0.0.1', at }, { source: 'os' as const, address: 'fe80::1', at }, { source: 'os' as const, address: '2001:db8::1', at }, { source: 'os' as const, address: '198.18.0.1', at }];
    expect(bestAddress({ address: '198.18.9.9', addresses: [disc] })).toBe('198.18.0.3');
    expect(bestAddress({ addresses: [disc, lease] })).toBe('198.18.0.2');
    expect(bestAddress({ addresses: [disc, lease, ...os] })).toBe('198.18.0.1');
    expect(bestAddress({ addresses: [lease, ...os.slice(0, 3)] })).toBe('2001:db8::1');
    expect(bestAddress({ addresses: [lease, ...os.slice(0, 2)] })).toBe('198.18.0.2');
  });

  it('reads every interface’s addresses from discovery facts, without prefix lengths', () => {
    expect(discoveryAddresses({ nics: [{ name: 'eno1', mac: '52:54:00:AA:00:01', addresses: ['198.18.0.4/24'] }, { name: 'eno2', mac: '52:54:00:aa:00:02' }] })).toEqual([
      { address: '198.18.0.4', interface: 'eno1', mac: '52:54:00:aa:00:01' },
    ]);
    expect(discoveryAddresses({})).toEqual([]);
  });
});
