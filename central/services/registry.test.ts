import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ChangeFeed } from '../store/change-feed.js';
import { MemoryStore } from '../store/memory-store.js';
import type { LocalReplicaMessages } from '../store/replica-messages.js';
import { ServiceRegistry, servicesCollection, SERVICES } from './registry.js';

describe('ServiceRegistry', () => {
  let store: MemoryStore;
  let changes: ChangeFeed;
  let clock: number;
  let reg: ServiceRegistry;
  const now = () => clock;

  beforeEach(async () => {
    store = new MemoryStore([servicesCollection]);
    changes = store.changes; // the store announces the registry's writes
    clock = Date.parse('2024-05-01T00:00:00Z');
    reg = new ServiceRegistry(store, { now });
  });
  afterEach(async () => {
    await reg.stop();
    await store.close();
  });

  const member = (id: string, extra: Record<string, unknown> = {}) => ({ id, address: '10.0.0.1', port: 2379, tags: [], meta: {}, status: 'passing' as const, ...extra });

  it('heartbeats other replicas received move the deadline here; after a gap (messages maybe missed) every TTL restarts', async () => {
    const peers = store.peers as LocalReplicaMessages;
    await reg.register('etcd', member('a', { ttl: '10s' }));
    clock += 8_000;
    peers.deliver('service-heartbeat', { s: 'etcd', m: 'a', at: clock, note: 'via B' });
    peers.deliver('service-heartbeat', { s: 'etcd', m: 'nobody', at: clock }); // unknown members and junk are ignored
    peers.deliver('service-heartbeat', 'junk');
    clock += 8_000;
    await reg.sweep();
    expect(reg.get('etcd')!.members[0]).toMatchObject({ status: 'passing', note: 'via B', lastHeartbeatAt: new Date(clock - 8_000).toISOString() });
    clock += 8_000;
    peers.gap();
    clock += 8_000;
    await reg.sweep();
    expect(reg.get('etcd')!.members[0]!.status).toBe('passing'); // 16 s without a heartbeat, but 8 s since the gap
    clock += 2_001;
    await reg.sweep();
    expect(reg.get('etcd')!.members[0]!.status).toBe('critical');
  });

  it('tells the other replicas of each heartbeat (a long note cut to fit a message)', async () => {
    const sent: unknown[] = [];
    store.peers.send = (topic, payload) => void sent.push({ topic, payload });
    await reg.register('etcd', member('a', { ttl: '10s' }));
    await reg.reportMemberStatus('etcd', 'a', 'passing', 'x'.repeat(4096));
    expect(sent).toEqual([{ topic: 'service-heartbeat', payload: { s: 'etcd', m: 'a', at: clock, note: 'x'.repeat(1024) } }]);
  });

  it('marks a member critical when its TTL lapses, and a heartbeat restores it', async () => {
    await reg.register('etcd', member('a', { ttl: '10s' }));
    clock += 9_000;
    await reg.sweep();
    expect(reg.get('etcd')!.members[0]!.status).toBe('passing');
    clock += 2_000;
    await reg.sweep();
    expect(reg.get('etcd')!.members[0]).toMatchObject({ status: 'critical', note: 'TTL expired: no heartbeat for 10s' });
    expect(store.get<{ members: { status: string }[] } & { id: string }>(SERVICES, reg.get('etcd')!.id)!.members[0]!.status).toBe('critical');
    await reg.reportMemberStatus('etcd', 'a', 'passing', 'ok again');
    expect(reg.get('etcd')!.members[0]).toMatchObject({ status: 'passing', note: 'ok again' });
  });

  it('writes only on status changes: a same-status heartbeat moves the deadline in memory only', async () => {
    await reg.register('etcd', member('a', { ttl: '10s' }));
    const idx = reg.get('etcd')!.modifyIndex;
    const feed = changes.index;
    for (let i = 0; i < 5; i++) {
      clock += 8_000;
      await reg.reportMemberStatus('etcd', 'a', 'passing');
      await reg.sweep();
    }
    expect(reg.get('etcd')!.members[0]!.status).toBe('passing');
    expect(reg.get('etcd')!.modifyIndex).toBe(idx);
    expect(changes.index).toBe(feed);
    await reg.reportMemberStatus('etcd', 'a', 'warning', 'disk 91%');
    expect(reg.get('etcd')!.modifyIndex).toBeGreaterThan(idx);
    expect(reg.get('etcd')!.members[0]).toMatchObject({ status: 'warning', note: 'disk 91%' });
    await reg.reportMemberStatus('etcd', 'a', 'critical');
    expect(reg.get('etcd')!.members[0]!.status).toBe('critical');
  });

  it('deregisters a member critical for longer than deregisterCriticalAfter', async () => {
    await reg.register('etcd', member('a', { ttl: '5s', deregisterCriticalAfter: '1m' }));
    await reg.register('etcd', member('b', { port: 2380 }));
    clock += 6_000;
    await reg.sweep();
    expect(reg.get('etcd')!.members.find((m) => m.id === 'a')!.status).toBe('critical');
    clock += 59_000;
    await reg.sweep();
    expect(reg.get('etcd')!.members.map((m) => m.id)).toEqual(['a', 'b']);
    clock += 2_000;
    await reg.sweep();
    expect(reg.get('etcd')!.members.map((m) => m.id)).toEqual(['b']);
  });

  it('survives a restart: state, index and a fresh TTL grace', async () => {
    await reg.register('etcd', member('a', { ttl: '10s' }));
    const idx = reg.currentIndex();
    await reg.stop();
    clock += 60_000; // the central was down longer than the TTL
    const again = new ServiceRegistry(store, { now });
    expect(again.currentIndex()).toBe(idx);
    expect(again.get('etcd')!.members[0]!.status).toBe('passing');
    await again.sweep();
    expect(again.get('etcd')!.members[0]!.status).toBe('passing');
    clock += 11_000;
    await again.sweep();
    expect(again.get('etcd')!.members[0]!.status).toBe('critical');
    expect(again.currentIndex()).toBeGreaterThan(idx);
    await again.stop();
  });

  it('blocking watch wakes on a change with the new index, and returns at the timeout otherwise', async () => {
    await reg.register('etcd', member('a'));
    const idx = reg.get('etcd')!.modifyIndex;
    const woken = reg.watch('etcd', idx, 60_000);
    await reg.register('etcd', member('b', { port: 1 }));
    const s = await woken;
    expect(s!.modifyIndex).toBeGreaterThan(idx);
    expect(s!.members).toHaveLength(2);
    const quiet = await reg.watch('etcd', s!.modifyIndex, 20);
    expect(quiet!.modifyIndex).toBe(s!.modifyIndex);
    // An index from the future (a restarted central) answers at once.
    expect((await reg.watch('etcd', 10_000, 60_000))!.modifyIndex).toBe(s!.modifyIndex);
  });

  it('waitForPassing returns when enough members pass, even for a service that does not exist yet', async () => {
    const waiting = reg.waitForPassing('db', 2, 60_000);
    await reg.register('db', member('a', { status: 'critical' }));
    await reg.register('db', member('b', { port: 2 }));
    await reg.reportMemberStatus('db', 'a', 'passing');
    const r = await waiting;
    expect(r).toMatchObject({ satisfied: true, passing: 2, wanted: 2 });
    const short = await reg.waitForPassing('db', 3, 10);
    expect(short).toMatchObject({ satisfied: false, passing: 2 });
  });

  it('clamps waits to 10 minutes plus at most 1/16 jitter', () => {
    const r = new ServiceRegistry(store, { now, random: () => 0.999 });
    expect(r.waitMs('1h')).toBeLessThan(10 * 60_000 * (1 + 1 / 16));
    expect(r.waitMs('1h')).toBeGreaterThanOrEqual(10 * 60_000);
    expect(r.waitMs()).toBeGreaterThanOrEqual(5 * 60_000);
    expect(r.waitMs('30s')).toBeLessThan(30_000 * (1 + 1 / 16));
  });
});
