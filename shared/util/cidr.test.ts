import { describe, expect, it } from 'vitest';
import { isInterfaceAddress, normalizeCidr } from './cidr.js';
import { SubnetSchema } from '../dhcp/config.js';
import { HardwareFacts } from '../api/facts.js';

describe('CIDRs', () => {
  it('are normalised: host bits cleared, canonical text, IPv4 and IPv6', () => {
    expect(normalizeCidr('198.18.0.77/24')).toBe('198.18.0.0/24');
    expect(normalizeCidr('198.18.3.1/15')).toBe('198.18.0.0/15');
    expect(normalizeCidr('2001:DB8:0:0:1::5/32')).toBe('2001:db8::/32');
    expect(normalizeCidr('fd00::1/128')).toBe('fd00::1/128');
  });
  it('refuse junk and the wrong family', () => {
    for (const bad of ['198.18.0.0', '198.18.0.0/33', '300.1.1.1/8', 'x/8', '2001:db8::/129', '']) expect(() => normalizeCidr(bad), bad).toThrow(/not a CIDR/);
    expect(() => normalizeCidr('2001:db8::/32', 'ipv4')).toThrow(/not an IPv4 CIDR/);
  });
  it('a DHCP subnet stores its CIDR without host bits (IPv4 only: the agent serves DHCPv4)', () => {
    expect(SubnetSchema.parse({ cidr: '198.18.0.9/24', range: { start: '198.18.0.100', end: '198.18.0.200' } }).cidr).toBe('198.18.0.0/24');
    expect(SubnetSchema.safeParse({ cidr: '2001:db8::/64', range: { start: '198.18.0.100', end: '198.18.0.200' } }).success).toBe(false);
  });
  it('interface addresses reported by machines are data: IPv6 accepted, host bits kept, junk refused', () => {
    for (const ok of ['198.18.0.5/24', '198.18.0.5', 'fe80::5054:ff:fe12:3456/64', '2001:db8::1']) expect(isInterfaceAddress(ok), ok).toBe(true);
    for (const bad of ['198.18.0.5/99', '::g', '1.2.3', 'a'.repeat(70)]) expect(isInterfaceAddress(bad), bad).toBe(false);
    const facts = HardwareFacts.safeParse({ nics: [{ name: 'eth0', mac: '52:54:00:00:00:01', addresses: ['198.18.0.5/24', 'fe80::1/64'] }] });
    expect(facts.success, JSON.stringify(facts.error?.issues)).toBe(true);
    expect(HardwareFacts.safeParse({ nics: [{ name: 'eth0', mac: '52:54:00:00:00:01', addresses: ['1.2.3.4/77'] }] }).success).toBe(false);
  });
});
