import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { appendFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SubnetSchema, type LeaseEvent, type Reservation } from '../../shared/dhcp/config.js';
import { LEASE_JOURNAL_LINGER, LEASE_JOURNAL_PREALLOCATE, LeaseStore } from './leases.js';
import { ipToInt, intToIp } from '../../shared/dhcp/ip.js';

/** The journal's records: its text without the zero tail written ahead of them. */
const journalText = (file: string) => readFileSync(file, 'utf8').replace(/\0+$/, '');

const subnet = SubnetSchema.parse({
  cidr: '198.18.0.0/24',
  range: { start: '198.18.0.100', end: '198.18.0.109' },
  gateway: '198.18.0.1',
  leaseTimeSec: 600,
});
const mac = (i: number) => `02:00:00:00:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`;

describe('lease allocation', () => {
  let t = 1_000_000;
  const now = () => t;
  beforeEach(() => (t = 1_000_000));

  it('gives the first free address, the same one again to the same MAC, and distinct ones to others', async () => {
    const s = await LeaseStore.open({ now });
    const a = s.offer({ subnet, mac: mac(1), reservations: [] });
    const a2 = s.offer({ subnet, mac: mac(1), reservations: [] });
    const b = s.offer({ subnet, mac: mac(2), reservations: [] });
    expect(a.ok && b.ok && a2.ok).toBe(true);
    if (!a.ok || !b.ok || !a2.ok) return;
    expect(a2.address).toBe(a.address);
    expect(b.address).not.toBe(a.address);
    expect(ipToInt(a.address)).toBeGreaterThanOrEqual(ipToInt(subnet.range.start));
  });

  it('never offers the network or broadcast address, even inside the range', async () => {
    const tiny = SubnetSchema.parse({ cidr: '198.18.0.0/30', range: { start: '198.18.0.0', end: '198.18.0.3' }, gateway: '198.18.0.1' });
    const s = await LeaseStore.open({ now });
    expect(s.offer({ subnet: tiny, mac: mac(1), reservations: [] })).toMatchObject({ ok: true, address: '198.18.0.2' });
    expect(s.offer({ subnet: tiny, mac: mac(2), reservations: [] })).toEqual({ ok: false, reason: 'exhausted' });
    expect(s.canBind({ subnet: tiny, mac: mac(3), reservations: [], address: '198.18.0.3' }).ok).toBe(false);
  });

  it('honours reservations first, and never gives a reserved address to another client', async () => {
    const s = await LeaseStore.open({ now });
    const reservations: Reservation[] = [{ mac: mac(9), address: '198.18.0.100', hostname: 'node9' }];
    const other = s.offer({ subnet, mac: mac(1), reservations, requested: '198.18.0.100' });
    expect(other.ok && other.address).not.toBe('198.18.0.100');
    const mine = s.offer({ subnet, mac: mac(9), reservations });
    expect(mine).toEqual({ ok: true, address: '198.18.0.100', reserved: true, hostname: 'node9' });
    // Outside the range but inside the subnet is fine for a reservation.
    const out = s.offer({ subnet, mac: mac(8), reservations: [{ mac: mac(8), address: '198.18.0.20' }] });
    expect(out.ok && out.address).toBe('198.18.0.20');
    expect(s.canBind({ subnet, mac: mac(1), address: '198.18.0.100', reservations }).ok).toBe(false);
  });

  it('ignores unknown MACs on a reservations-only subnet', async () => {
    const s = await LeaseStore.open({ now });
    const only = { ...subnet, reservationsOnly: true };
    expect(s.offer({ subnet: only, mac: mac(1), reservations: [] })).toEqual({ ok: false, reason: 'reservations_only' });
    expect(s.offer({ subnet: only, mac: mac(2), reservations: [{ mac: mac(2), address: '198.18.0.50' }] }).ok).toBe(true);
  });

  it('honours option 50 when free and not when another client holds it', async () => {
    const s = await LeaseStore.open({ now });
    const r = s.offer({ subnet, mac: mac(1), reservations: [], requested: '198.18.0.105' });
    expect(r.ok && r.address).toBe('198.18.0.105');
    await s.bind({ subnet, mac: mac(1), reservations: [], address: '198.18.0.105', leaseTimeSec: 600 });
    const r2 = s.offer({ subnet, mac: mac(2), reservations: [], requested: '198.18.0.105' });
    expect(r2.ok && r2.address).not.toBe('198.18.0.105');
    // Outside the range: ignored
    const r3 = s.offer({ subnet, mac: mac(3), reservations: [], requested: '198.18.0.50' });
    expect(r3.ok && r3.address).not.toBe('198.18.0.50');
  });

  it('runs out when every address is taken, and reuses expired addresses last, oldest first', async () => {
    const s = await LeaseStore.open({ now });
    const size = ipToInt(subnet.range.end) - ipToInt(subnet.range.start) + 1;
    for (let i = 0; i < size; i++) {
      const o = s.offer({ subnet, mac: mac(i), reservations: [] });
      expect(o.ok).toBe(true);
      if (o.ok) await s.bind({ subnet, mac: mac(i), reservations: [], address: o.address, leaseTimeSec: 60 + i });
    }
    expect(s.offer({ subnet, mac: mac(100), reservations: [] })).toEqual({ ok: false, reason: 'exhausted' });
    // Offers are held too: a pending offer blocks the address.
    t += 61_000; // mac(0)'s lease (60 s) expired, the others have not
    const o = s.offer({ subnet, mac: mac(100), reservations: [] });
    expect(o.ok && o.address).toBe(s.forMac(subnet.cidr, mac(0))!.address);
    // The expired holder itself still gets its address back while nobody else took it.
    t += 100_000; // now everything has expired
    const back = s.offer({ subnet, mac: mac(5), reservations: [] });
    expect(back.ok && back.address).toBe(intToIp(ipToInt(subnet.range.start) + 5));
  });

  it('an expired lease keeps its affinity: a new client gets a never-used address first', async () => {
    const s = await LeaseStore.open({ now });
    const o = s.offer({ subnet, mac: mac(1), reservations: [] });
    if (!o.ok) throw new Error('no offer');
    await s.bind({ subnet, mac: mac(1), reservations: [], address: o.address, leaseTimeSec: 60 });
    t += 120_000;
    expect(await s.sweep()).toBe(1);
    const n = s.offer({ subnet, mac: mac(2), reservations: [], requested: o.address });
    expect(n.ok && n.address).not.toBe(o.address);
  });

  it('holds an offered address so 1,000 parallel DISCOVERs never share one', async () => {
    const big = SubnetSchema.parse({ cidr: '198.18.0.0/20', range: { start: '198.18.0.10', end: '198.18.15.250' } });
    const s = await LeaseStore.open({ now });
    const results = await Promise.all(Array.from({ length: 1000 }, (_, i) => Promise.resolve().then(() => s.offer({ subnet: big, mac: mac(i), reservations: [], requested: '198.18.0.10' }))));
    const addrs = results.map((r) => (r.ok ? r.address : 'none'));
    expect(addrs).not.toContain('none');
    expect(new Set(addrs).size).toBe(1000);
  });

  it('an expired offer releases the address to others', async () => {
    const s = await LeaseStore.open({ now, offerHoldMs: 5_000 });
    const tiny = { ...subnet, range: { start: '198.18.0.100', end: '198.18.0.100' } };
    expect(s.offer({ subnet: tiny, mac: mac(1), reservations: [] }).ok).toBe(true);
    expect(s.offer({ subnet: tiny, mac: mac(2), reservations: [] }).ok).toBe(false);
    t += 6_000;
    expect(s.offer({ subnet: tiny, mac: mac(2), reservations: [] }).ok).toBe(true);
  });

  it('DECLINE quarantines the address for everyone, then frees it', async () => {
    const events: LeaseEvent[] = [];
    const s = await LeaseStore.open({ now, declineQuarantineMs: 600_000, onEvent: (e) => events.push(e) });
    const tiny = { ...subnet, range: { start: '198.18.0.100', end: '198.18.0.101' } };
    const o = s.offer({ subnet: tiny, mac: mac(1), reservations: [] });
    if (!o.ok) throw new Error('no offer');
    expect(await s.decline(tiny.cidr, mac(1), o.address)).toBe(true);
    expect(events.map((e) => e.type)).toEqual(['decline']);
    const again = s.offer({ subnet: tiny, mac: mac(1), reservations: [] });
    expect(again.ok && again.address).not.toBe(o.address);
    const other = s.offer({ subnet: tiny, mac: mac(2), reservations: [] });
    expect(other.ok).toBe(false); // one quarantined, one offered to mac(1)
    t += 600_001;
    s.dropOffer(tiny.cidr, mac(1));
    const later = s.offer({ subnet: tiny, mac: mac(2), reservations: [], requested: o.address });
    expect(later.ok && later.address).toBe(o.address);
    // A client cannot decline an address it was never given.
    expect(await s.decline(tiny.cidr, mac(7), '198.18.0.101')).toBe(false);
  });

  it('RELEASE frees the address (only for its holder) and emits an event', async () => {
    const events: LeaseEvent[] = [];
    const s = await LeaseStore.open({ now, onEvent: (e) => events.push(e) });
    const o = s.offer({ subnet, mac: mac(1), reservations: [] });
    if (!o.ok) throw new Error('no offer');
    await s.bind({ subnet, mac: mac(1), reservations: [], address: o.address, leaseTimeSec: 600, hostname: 'h1' });
    expect(await s.release(subnet.cidr, mac(2), o.address)).toBe(false);
    expect(s.isBoundTo(o.address, mac(1))).toBe(true);
    expect(await s.release(subnet.cidr, mac(1), o.address)).toBe(true);
    expect(s.isBoundTo(o.address, mac(1))).toBe(false);
    expect(events.map((e) => [e.type, e.address, e.hostname])).toEqual([
      ['lease', o.address, 'h1'],
      ['release', o.address, 'h1'],
    ]);
    expect(events[0]!.expiresAt).toBe(new Date(t + 600_000).toISOString());
  });

  it('binding a new address releases the MAC\'s previous one in that subnet', async () => {
    const s = await LeaseStore.open({ now });
    await s.bind({ subnet, mac: mac(1), reservations: [], address: '198.18.0.101', leaseTimeSec: 600 });
    await s.bind({ subnet, mac: mac(1), reservations: [], address: '198.18.0.102', leaseTimeSec: 600 });
    expect(s.get('198.18.0.101')!.state).toBe('released');
    expect(s.isBoundTo('198.18.0.102', mac(1))).toBe(true);
  });
});

describe('lease persistence', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'ul-leases-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('survives a crash (no close) and tolerates a torn last record', async () => {
    const file = join(dir, 'leases.jsonl');
    const s = await LeaseStore.open({ file });
    const bound: string[] = [];
    for (let i = 0; i < 5; i++) {
      const o = s.offer({ subnet, mac: mac(i), reservations: [] });
      if (!o.ok) throw new Error('no offer');
      const r = await s.bind({ subnet, mac: mac(i), reservations: [], address: o.address, leaseTimeSec: 600 });
      expect(r.ok).toBe(true);
      bound.push(o.address);
    }
    await s.release(subnet.cidr, mac(4), bound[4]!);
    // Simulated crash: no close(); a half-written record at the end.
    appendFileSync(file, '{"mac":"02:00:00:00:00:63","address":"198.18.0.1');
    const s2 = await LeaseStore.open({ file });
    for (let i = 0; i < 4; i++) expect(s2.isBoundTo(bound[i]!, mac(i))).toBe(true);
    expect(s2.get(bound[4]!)!.state).toBe('released');
    // The torn tail was cut: the file ends with a newline and further appends are readable.
    expect(journalText(file).endsWith('\n')).toBe(true);
    const o = s2.offer({ subnet, mac: mac(1), reservations: [] });
    expect(o.ok && o.address).toBe(bound[1]);
    await s2.bind({ subnet, mac: mac(7), reservations: [], address: '198.18.0.109', leaseTimeSec: 600 });
    const s3 = await LeaseStore.open({ file });
    expect(s3.isBoundTo('198.18.0.109', mac(7))).toBe(true);
    expect(s3.all().length).toBe(6);
    await s2.close();
    await s3.close();
    await s.close();
  });

  it('skips a corrupt record in the middle and keeps the rest', async () => {
    const file = join(dir, 'leases.jsonl');
    const s = await LeaseStore.open({ file });
    await s.bind({ subnet, mac: mac(1), reservations: [], address: '198.18.0.101', leaseTimeSec: 600 });
    await s.bind({ subnet, mac: mac(2), reservations: [], address: '198.18.0.102', leaseTimeSec: 600 });
    await s.close();
    // Corruption between the two records: an unparsable line and one that fails the schema.
    const [first, ...rest] = readFileSync(file, 'utf8').split('\n');
    writeFileSync(file, [first, 'garbage', '{"mac":1}', ...rest].join('\n'));
    // DHCP keeps serving (the agent salvages, docs/decisions.md): the record after the bad lines is kept.
    const s2 = await LeaseStore.open({ file });
    expect(s2.isBoundTo('198.18.0.101', mac(1))).toBe(true);
    expect(s2.isBoundTo('198.18.0.102', mac(2))).toBe(true);
    await s2.close();
    expect(readFileSync(file, 'utf8')).not.toContain('garbage'); // rewritten without the bad lines
    expect(readdirSync(dir).filter((f) => f.startsWith('leases.jsonl.corrupt-'))).toHaveLength(1);
  });

  it('group-commits concurrent binds into fewer fsyncs than records, all durable', async () => {
    const file = join(dir, 'leases.jsonl');
    const big = SubnetSchema.parse({ cidr: '198.18.0.0/22', range: { start: '198.18.0.10', end: '198.18.3.250' } });
    const s = await LeaseStore.open({ file });
    const binds = Array.from({ length: 500 }, (_, i) => {
      const o = s.offer({ subnet: big, mac: mac(i), reservations: [] });
      if (!o.ok) throw new Error('no offer');
      return s.bind({ subnet: big, mac: mac(i), reservations: [], address: o.address, leaseTimeSec: 600 });
    });
    const results = await Promise.all(binds);
    expect(results.every((r) => r.ok)).toBe(true);
    const st = s.stats().journal!;
    expect(st.appends).toBe(500);
    expect(st.batches).toBeLessThan(500);
    const lines = journalText(file).trim().split('\n');
    expect(lines.length).toBe(500);
    // The journal keeps zeros written ahead of its records (LEASE_JOURNAL_PREALLOCATE): ACKs' fdatasyncs change no metadata.
    expect(statSync(file).size).toBeGreaterThanOrEqual(Buffer.byteLength(journalText(file)) + LEASE_JOURNAL_PREALLOCATE / 2);
    await s.close();
  });

  it('lingers: binds arriving in separate turns of the loop share one fsync, each resolving only once durable', async () => {
    const file = join(dir, 'leases.jsonl');
    const s = await LeaseStore.open({ file, journalLinger: { records: 8, ms: 60_000 } });
    const binds: Promise<unknown>[] = [];
    for (let i = 0; i < 8; i++) {
      const o = s.offer({ subnet, mac: mac(i), reservations: [] });
      if (!o.ok) throw new Error('no offer');
      binds.push(s.bind({ subnet, mac: mac(i), reservations: [], address: o.address, leaseTimeSec: 600 }).then((r) => {
        // Resolved: the lease is in the file already.
        expect(readFileSync(file, 'utf8')).toContain(mac(i));
        return r;
      }));
      await new Promise((r) => setImmediate(r));
    }
    await Promise.all(binds);
    expect(s.stats().journal).toMatchObject({ appends: 8, batches: 1 });
    await s.close();
    // The default linger is on, and bounded.
    expect(LEASE_JOURNAL_LINGER).toEqual({ records: 32, ms: 2 });
  });

  it('compacts the journal to the live records and keeps working after', async () => {
    const file = join(dir, 'leases.jsonl');
    const s = await LeaseStore.open({ file, compactSlack: 20 });
    for (let round = 0; round < 10; round++) {
      for (let i = 0; i < 5; i++) await s.bind({ subnet, mac: mac(i), reservations: [], address: intToIp(ipToInt('198.18.0.100') + i), leaseTimeSec: 600 + round });
    }
    await s.compact();
    const lines = journalText(file).trim().split('\n');
    expect(lines.length).toBe(5);
    expect(s.stats().journal!.compactions).toBeGreaterThanOrEqual(1);
    await s.release(subnet.cidr, mac(0), '198.18.0.100');
    const s2 = await LeaseStore.open({ file });
    expect(s2.get('198.18.0.100')!.state).toBe('released');
    expect(s2.isBoundTo('198.18.0.104', mac(4))).toBe(true);
    expect(s2.get('198.18.0.104')!.expiresAt - s2.get('198.18.0.104')!.updatedAt).toBe(609_000);
    expect(statSync(file).size).toBeGreaterThan(0);
    await s.close();
    await s2.close();
  });

  it('starts empty when the file does not exist, and creates it', async () => {
    const file = join(dir, 'sub', 'leases.jsonl');
    const s = await LeaseStore.open({ file });
    expect(s.all()).toEqual([]);
    await s.bind({ subnet, mac: mac(1), reservations: [], address: '198.18.0.101', leaseTimeSec: 600 });
    expect(readFileSync(file, 'utf8')).toContain('198.18.0.101');
    await s.close();
    writeFileSync(file, '');
  });
});
