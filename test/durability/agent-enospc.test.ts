import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { SubnetSchema } from '../../shared/dhcp/config.js';
import { intToIp, ipToInt } from '../../shared/dhcp/ip.js';
import { StorageFullError } from '../../shared/fs/storage-errors.js';
import { LeaseStore } from '../../agent/dhcp/leases.js';
import { Outbox } from '../../agent/link/outbox.js';
import { checkPrereqs } from '../support/require.js';
import { SmallDisk } from '../support/tmpfs.js';

/**
 * The agent's journals on a real full disk (a 4 MiB tmpfs): concurrent writers until the disk fills.
 * Every write that was acknowledged is there after a reopen, every refused one got a StorageFullError
 * and is absent (also from memory), nothing crashed, and writes work again once space is freed.
 */
const ready = checkPrereqs('agent ENOSPC', { root: true, commands: ['mount', 'umount'] });

const subnet = SubnetSchema.parse({ cidr: '198.18.0.0/16', range: { start: '198.18.1.0', end: '198.18.255.254' }, gateway: '198.18.0.1', leaseTimeSec: 3600 });
const mac = (i: number) => `02:00:00:${((i >> 16) & 255).toString(16).padStart(2, '0')}:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`;
const addr = (i: number) => intToIp(ipToInt('198.18.1.0') + i);

describe.skipIf(!ready)('agent journals on a full disk', () => {
  let disk: SmallDisk;
  // Background compactions fail on the full disk: logged and retried, never an unhandled rejection.
  const unhandled: unknown[] = [];
  const onUnhandled = (e: unknown) => unhandled.push(e);
  beforeAll(() => {
    process.on('unhandledRejection', onUnhandled);
    disk = new SmallDisk(4 * 1024 * 1024);
  });
  afterAll(() => {
    process.off('unhandledRejection', onUnhandled);
    disk?.unmount();
  });

  it('leases: an ACKed lease survives, a refused one is absent, binds work again after space is freed', async () => {
    const file = join(disk.dir, 'leases.jsonl');
    const now = () => 1_700_000_000_000;
    // compactSlack 0: every bind also starts a background compaction, which fails while the disk is full.
    let store = await LeaseStore.open({ file, now, compactSlack: 0 });
    disk.fill(32 * 1024); // a little room left: the concurrent binds below run out of it
    const acked = new Set<number>();
    const refused = new Set<number>();
    let i = 0;
    const bind = async (n: number) => {
      const r = await store.bind({ subnet, mac: mac(n), address: addr(n), reservations: [], leaseTimeSec: 3600 });
      if (!r.ok) throw new Error(r.reason);
    };
    // 16 writers at a time until some have been refused for a while.
    while (refused.size < 50) {
      await Promise.all(
        Array.from({ length: 16 }, async () => {
          const n = i++;
          try {
            await bind(n);
            acked.add(n);
          } catch (e) {
            expect(e).toBeInstanceOf(StorageFullError);
            refused.add(n);
          }
        }),
      );
    }
    expect(acked.size).toBeGreaterThan(50);
    for (const n of refused) expect(store.isBoundTo(addr(n), mac(n)), `refused lease ${n} stays in memory`).toBe(false);
    for (const n of acked) expect(store.isBoundTo(addr(n), mac(n))).toBe(true);
    // Reopen on the still-full disk: exactly the acknowledged leases.
    await store.close();
    store = await LeaseStore.open({ file, now, compactSlack: 0 });
    for (const n of acked) expect(store.isBoundTo(addr(n), mac(n)), `acked lease ${n}`).toBe(true);
    for (const n of refused) expect(store.isBoundTo(addr(n), mac(n)), `refused lease ${n}`).toBe(false);
    // Still full (what is left of the file's last page may take a few more records).
    for (let k = 0; ; k++) {
      expect(k).toBeLessThan(100);
      const n = i++;
      const r = await bind(n).then(() => null, (e: unknown) => e);
      if (r === null) acked.add(n);
      else {
        expect(r).toBeInstanceOf(StorageFullError);
        break;
      }
    }
    await expect(store.compact()).rejects.toBeInstanceOf(StorageFullError); // the old file stays
    disk.free();
    const later = i++;
    await bind(later);
    await store.compact();
    await store.close();
    store = await LeaseStore.open({ file, now });
    for (const n of [...acked, later]) expect(store.isBoundTo(addr(n), mac(n))).toBe(true);
    expect(store.stats().bound).toBe(acked.size + 1);
    await store.close();
  });

  it('outbox: an added message survives, a refused one is absent, adds work again after space is freed', async () => {
    const file = join(disk.dir, 'outbox.jsonl');
    let ob = new Outbox(file);
    await ob.open();
    disk.fill(32 * 1024);
    const acked: string[] = [];
    const refused = new Set<string>();
    let i = 0;
    const ev = (n: number) => ({ type: 'event' as const, id: `e${n}`, kind: 'discovery', data: { pad: 'x'.repeat(200), n }, at: new Date(0).toISOString() });
    while (refused.size < 50) {
      await Promise.all(
        Array.from({ length: 16 }, async () => {
          const n = i++;
          try {
            await ob.add(ev(n));
            acked.push(`e${n}`);
          } catch (e) {
            expect(e).toBeInstanceOf(StorageFullError);
            refused.add(`e${n}`);
          }
        }),
      );
    }
    expect(ob.messages().map((m) => m.id)).toEqual(acked);
    await ob.close();
    ob = new Outbox(file); // reopening on the full disk works (its compaction fails and is only logged)
    await ob.open();
    expect(ob.messages().map((m) => m.id)).toEqual(acked);
    disk.free();
    await ob.add(ev(i));
    await ob.close();
    ob = new Outbox(file);
    await ob.open();
    expect(ob.messages().map((m) => m.id)).toEqual([...acked, `e${i}`]);
    await ob.close();
  });

  it('saw no unhandled rejection', async () => {
    await new Promise((r) => setTimeout(r, 50));
    expect(unhandled).toEqual([]);
  });
});
