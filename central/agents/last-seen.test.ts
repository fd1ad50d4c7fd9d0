import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postgresReady, TestPostgres } from '../../test/support/postgres.js';
import { MemoryStore } from '../store/memory-store.js';
import { PostgresStore } from '../store/postgres/postgres-store.js';
import { retryStale } from '../store/stale-write.js';
import { AGENT_COLLECTIONS, AGENTS, type AgentDoc } from './collections.js';
import { recordLastSeen } from './last-seen.js';

const agent = (over: Partial<AgentDoc> = {}): AgentDoc => ({
  id: 'a1', site: 's1', name: 'a1', certFingerprint: 'fp-new', certSerial: '1', sealPublicKey: 'k', agentVersion: 'v',
  nextSeq: 0, createdAt: '2026-01-01T00:00:00.000Z', updatedAt: '2026-01-01T00:00:00.000Z', ...over,
});

describe('recordLastSeen', () => {
  it('only moves last-seen forward, and retires the previous certificate once the agent used the new one', async () => {
    const store = new MemoryStore(AGENT_COLLECTIONS);
    await store.put(AGENTS, agent({ previousCertFingerprint: 'fp-old' }));
    await recordLastSeen(store, 'a1', '2026-05-01T00:00:00.000Z', 'fp-old');
    expect(store.get<AgentDoc>(AGENTS, 'a1')).toMatchObject({ lastSeenAt: '2026-05-01T00:00:00.000Z', previousCertFingerprint: 'fp-old' });
    await recordLastSeen(store, 'a1', '2026-04-01T00:00:00.000Z'); // an older time (another replica's, late) never goes back
    expect(store.get<AgentDoc>(AGENTS, 'a1')?.lastSeenAt).toBe('2026-05-01T00:00:00.000Z');
    await recordLastSeen(store, 'a1', '2026-06-01T00:00:00.000Z', 'fp-new');
    const doc = store.get<AgentDoc>(AGENTS, 'a1')!;
    expect(doc.lastSeenAt).toBe('2026-06-01T00:00:00.000Z');
    expect(doc.previousCertFingerprint).toBeUndefined();
    expect(await recordLastSeen(store, 'gone', '2026-06-01T00:00:00.000Z')).toBe(false);
    await store.close();
  });
});

const ready = postgresReady('recordLastSeen on two replicas');
let cluster: TestPostgres;
beforeAll(async () => {
  if (ready) cluster = await TestPostgres.start();
});
afterAll(() => cluster?.stop());

describe.skipIf(!ready)('recordLastSeen on two PostgreSQL replicas', () => {
  it('racing the other replica writing the same agent (task sequence numbers): every last-seen lands, nothing is lost, nothing thrown', async () => {
    const url = await cluster.createDatabase();
    const [a, b] = await Promise.all([PostgresStore.open({ url, collections: AGENT_COLLECTIONS }), PostgresStore.open({ url, collections: AGENT_COLLECTIONS })]);
    try {
      await a.put(AGENTS, agent());
      const t0 = Date.now();
      while (!b.get(AGENTS, 'a1')) await new Promise((r) => setTimeout(r, 5));
      // B creates tasks for the agent (bumps nextSeq, retrying as the task service does) while A records it seen.
      const bump = () => retryStale(() => b.put(AGENTS, { ...b.get<AgentDoc>(AGENTS, 'a1')!, nextSeq: b.get<AgentDoc>(AGENTS, 'a1')!.nextSeq + 1 }), 50);
      const times: string[] = [];
      for (let k = 0; k < 40; k++) {
        const at = new Date(t0 + k * 1000).toISOString();
        times.push(at);
        await Promise.all([bump(), recordLastSeen(a, 'a1', at)]);
      }
      const last = times[times.length - 1];
      const settled = () => [a, b].every((s) => s.get<AgentDoc>(AGENTS, 'a1')!.nextSeq === 40 && s.get<AgentDoc>(AGENTS, 'a1')!.lastSeenAt === last);
      for (let i = 0; i < 500 && !settled(); i++) await new Promise((r) => setTimeout(r, 10));
      expect(b.get<AgentDoc>(AGENTS, 'a1')).toMatchObject({ nextSeq: 40, lastSeenAt: last });
      expect(a.get<AgentDoc>(AGENTS, 'a1')).toMatchObject({ nextSeq: 40, lastSeenAt: last });
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });
});
