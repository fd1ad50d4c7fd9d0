import { describe, expect, it } from 'vitest';
import { ReservationSchema, SubnetSchema } from './config.js';

describe('config schemas', () => {
  it('applies defaults', () => {
    const s = SubnetSchema.parse({ cidr: '198.18.0.0/24', range: { start: '198.18.0.100', end: '198.18.0.200' } });
    expect(s.leaseTimeSec).toBe(3600);
    expect(s.dns).toEqual([]);
    expect(s.reservationsOnly).toBe(false);
  });

  it('rejects a range outside the CIDR, reversed ranges, bad gateways and reserved option codes', () => {
    const bad = [
      { cidr: '198.18.0.0/24', range: { start: '198.18.1.1', end: '198.18.0.200' } },
      { cidr: '198.18.0.0/24', range: { start: '198.18.0.200', end: '198.18.0.100' } },
      { cidr: '198.18.0.0/24', range: { start: '198.18.0.1', end: '198.18.0.2' }, gateway: '10.0.0.1' },
      { cidr: '198.18.0.0/24', range: { start: '198.18.0.1', end: '198.18.0.2' }, options: { '53': 'x' } },
      { cidr: '198.18.0.0/33', range: { start: '198.18.0.1', end: '198.18.0.2' } },
      { cidr: '198.18.0.0/24', range: { start: '198.18.0.1', end: '198.18.0.300' } },
    ];
    for (const b of bad) expect(SubnetSchema.safeParse(b).success, JSON.stringify(b)).toBe(false);
  });

  it('normalizes MACs in reservations and rejects bad ones', () => {
    expect(ReservationSchema.parse({ mac: '52-54-00-AA-BB-CC', address: '198.18.0.5' }).mac).toBe('52:54:00:aa:bb:cc');
    expect(ReservationSchema.safeParse({ mac: '52:54:00:aa:bb', address: '198.18.0.5' }).success).toBe(false);
    expect(ReservationSchema.safeParse({ mac: '52:54:00:aa:bb:cc', address: '198.18.0.5', hostname: 'bad host' }).success).toBe(false);
  });
});
