import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postgresReady, TestPostgres } from '../../test/support/postgres.js';
import type { Change } from '../store/change-feed.js';
import { PostgresStore } from '../store/postgres/postgres-store.js';
import { ServiceRegistry, servicesCollection, SERVICES } from './registry.js';
import type { Service } from '../../shared/api/services.js';

/** The service registry on two central replicas sharing PostgreSQL (issue 17): TTL health agreed, lapses written once. */
const ready = postgresReady('service registry on two replicas');
let cluster: TestPostgres;
beforeAll(async () => {
  if (ready) cluster = await TestPostgres.start();
});
afterAll(() => cluster?.stop());

const until = async (what: string, cond: () => boolean, ms = 5000) => {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error(`not in time: ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
};

/** Two replicas (stores + registries) on one new database, with one fake clock; sweeps are called by the test. */
async function twoReplicas() {
  const url = await cluster.createDatabase('svc');
  const [a, b] = await Promise.all([PostgresStore.open({ url, collections: [servicesCollection] }), PostgresStore.open({ url, collections: [servicesCollection] })]);
  const clock = { t: Date.parse('2026-05-01T00:00:00Z') };
  const ra = new ServiceRegistry(a, { now: () => clock.t });
  const rb = new ServiceRegistry(b, { now: () => clock.t });
  const close = async () => {
    await Promise.all([ra.stop(), rb.stop()]);
    await Promise.all([a.close(), b.close()]);
  };
  return { a, b, ra, rb, clock, close };
}

const statusOf = (r: ServiceRegistry) => r.get('db')?.members[0]?.status;

describe.skipIf(!ready)('ServiceRegistry on two replicas sharing PostgreSQL', () => {
  it('heartbeats through one replica keep the member passing on both; its lapse is written once and both agree', async () => {
    const { a, b, ra, rb, clock, close } = await twoReplicas();
    try {
      await ra.register('db', { id: 'm1', address: '198.18.0.1', port: 5432, status: 'passing', ttl: '10s' });
      await until('the member on B', () => statusOf(rb) === 'passing');
      for (let i = 1; i <= 3; i++) {
        clock.t += 6_000; // 18 s in all: past the TTL unless B's heartbeats reach A
        await rb.reportMemberStatus('db', 'm1', 'passing', `ok ${i}`);
        await until('the heartbeat on A', () => ra.get('db')!.members[0].lastHeartbeatAt === new Date(clock.t).toISOString());
        await Promise.all([ra.sweep(), rb.sweep()]);
        expect([statusOf(ra), statusOf(rb)]).toEqual(['passing', 'passing']);
      }
      expect(ra.get('db')!.members[0].note).toBe('ok 3');

      const written: Change[] = [];
      a.changes.on((c) => c.collection === SERVICES && written.push(c));
      clock.t += 10_001;
      await Promise.all([ra.sweep(), rb.sweep(), ra.sweep(), rb.sweep()]);
      await until('critical on both', () => statusOf(ra) === 'critical' && statusOf(rb) === 'critical');
      await new Promise((r) => setTimeout(r, 200)); // a second write would have arrived by now
      expect(written).toHaveLength(1);
      expect((written[0].doc as unknown as Service).members[0]).toMatchObject({ status: 'critical', note: 'TTL expired: no heartbeat for 10s' });
      expect(rb.get('db')!.members[0].note).toBe('TTL expired: no heartbeat for 10s');
      expect(b.get<Service & { id: string }>(SERVICES, ra.get('db')!.id)!.modifyIndex).toBe(ra.get('db')!.modifyIndex);
    } finally {
      await close();
    }
  });

  it('a blocking query on one replica wakes on a heartbeat through the other that changes the status', async () => {
    const { ra, rb, close } = await twoReplicas();
    try {
      await ra.register('db', { id: 'm1', address: '198.18.0.1', port: 5432, status: 'passing', ttl: '30s' });
      await until('the member on B', () => statusOf(rb) === 'passing');
      const idx = ra.currentIndex();
      const t0 = Date.now();
      const woke = ra.watch('db', idx, 10_000);
      await new Promise((r) => setTimeout(r, 100));
      await rb.reportMemberStatus('db', 'm1', 'warning', 'slow disk');
      const s = await woke;
      expect(Date.now() - t0).toBeLessThan(5000);
      expect(s!.modifyIndex).toBeGreaterThan(idx);
      expect(s!.members[0]).toMatchObject({ status: 'warning', note: 'slow disk' });
    } finally {
      await close();
    }
  });
});
