import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../agent-link/support.js';
import { taskIdsIn, type InProcessCentral } from '../central/in-process.js';
import { postgresReady, TestPostgres } from '../support/postgres.js';
import { startReplicas } from './replicas.js';
import { joinCentral } from '../../agent/join/join.js';
import { parseJoinToken } from '../../shared/api/join-token.js';
import { freePort } from '../../scripts/bench/free-port.js';
import { tempDir } from '../central/support.js';

/**
 * Two central replicas (in this process) on one PostgreSQL: every replica serves the whole API, a task
 * created on one reaches an agent connected to the other exactly once, blocking service queries wake on
 * writes through the other replica, inventory ETags agree (issue 17).
 */
const ready = postgresReady('central replicas on PostgreSQL');
let cluster: TestPostgres;
let a: InProcessCentral;
let b: InProcessCentral;

beforeAll(async () => {
  if (!ready) return;
  cluster = await TestPostgres.start();
  [a, b] = await startReplicas(await cluster.createDatabase('ha'));
  expect((await a.request('POST', '/api/v1/sites', { body: { name: 'dc1' } })).status).toBe(201);
}, 120_000);
afterAll(async () => {
  await a?.close();
  await b?.close();
  if (b) rmSync(b.dir, { recursive: true, force: true });
  cluster?.stop();
});

describe.skipIf(!ready)('two central replicas on one PostgreSQL', () => {
  it('a write through one replica is served by the other, and the inventory ETag agrees', async () => {
    const r = await b.request('POST', '/api/v1/machines', { body: { name: 'm1', site: 'dc1', macs: ['52:54:00:00:17:01'] } });
    expect(r.status).toBe(201);
    const onA = await waitFor('the machine on replica A', async () => ((await a.request('GET', '/api/v1/machines/m1')).status === 200 ? true : null), 5000, 20);
    expect(onA).toBe(true);
    // The same MAC through the other replica is a conflict: uniqueness holds across replicas.
    expect((await a.request('POST', '/api/v1/machines', { body: { name: 'm2', site: 'dc1', macs: ['52:54:00:00:17:01'] } })).status).toBe(409);
    const etag = async (c: InProcessCentral) => (await c.request('GET', '/api/v1/inventory')).headers.etag;
    await waitFor('equal inventory ETags', async () => ((await etag(a)) === (await etag(b)) ? true : null), 5000, 20);
    const before = await etag(a);
    await a.request('PATCH', '/api/v1/machines/m1', { body: { params: { role: 'web' } } });
    await waitFor('the new ETag on both', async () => ((await etag(b)) !== before && (await etag(a)) === (await etag(b)) ? true : null), 5000, 20);
  });

  it('a blocking service query on one replica wakes on a write through the other', async () => {
    expect((await a.request('POST', '/api/v1/services/web/members', { body: { id: 'w1', address: '198.18.0.5', port: 80, status: 'passing' } })).status).toBeLessThan(300);
    const first = await waitFor('the service on B', async () => {
      const r = await b.request('GET', '/api/v1/services/web');
      return r.status === 200 ? r : null;
    }, 5000, 20);
    const idx = Number(first.headers['x-underlay-index']);
    const t0 = Date.now();
    const pending = b.request('GET', `/api/v1/services/web?index=${idx}&wait=5m`);
    await new Promise((r) => setTimeout(r, 200));
    const put = await a.request('PUT', '/api/v1/services/web/members/w1/fail', { body: { note: 'down' } });
    expect(put.status).toBe(200);
    const woke = await pending;
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(Number(woke.headers['x-underlay-index'])).toBeGreaterThan(idx);
    expect(woke.json.members[0]).toMatchObject({ status: 'critical', note: 'down' });
  });

  it('TTL heartbeats through one replica keep the member passing on the other; when they stop, both mark it critical', async () => {
    expect((await a.request('POST', '/api/v1/services/ttl/members', { body: { id: 't1', address: '198.18.0.6', port: 81, status: 'passing', ttl: '2s' } })).status).toBeLessThan(300);
    await waitFor('the member on B', async () => ((await b.request('GET', '/api/v1/services/ttl')).status === 200 ? true : null), 5000, 20);
    const status = async (c: InProcessCentral) => (await c.request('GET', '/api/v1/services/ttl')).json.members[0].status as string;
    const t0 = Date.now();
    while (Date.now() - t0 < 3500) {
      expect((await b.request('PUT', '/api/v1/services/ttl/members/t1/pass', { body: { note: 'alive' } })).status).toBe(200);
      await new Promise((r) => setTimeout(r, 400));
    }
    expect([await status(a), await status(b)]).toEqual(['passing', 'passing']); // 3.5 s > the TTL: A heard B's heartbeats
    expect((await a.request('GET', '/api/v1/services/ttl')).json.members[0].note).toBe('alive');
    await waitFor('critical on both', async () => ((await status(a)) === 'critical' && (await status(b)) === 'critical' ? true : null), 6000, 50);
  });

  it("a join token carries every replica's URL: an agent given only the token records them all and joins through one that answers", async () => {
    const dead = `https://127.0.0.1:${await freePort()}`;
    a.running.deps.central.joinUrls = [dead, b.url, a.url]; // what --replica-urls sets
    const dir = tempDir('underlay-ha-join-');
    try {
      const r = await a.request('POST', '/api/v1/tokens', { body: { role: 'agent-join', site: 'dc1' } });
      expect(r.status).toBe(201);
      expect(parseJoinToken(r.json.token).centralUrls).toEqual([dead, b.url, a.url]);
      const id = await joinCentral({ token: r.json.token, state: join(dir, 'state'), name: 'token-urls' });
      expect(id.centralUrl).toBe([dead, b.url, a.url].join(','));
      expect((await b.request('GET', `/api/v1/agents/${id.agentId}`)).json.name).toBe('token-urls');
      // The token was spent through B: one-time on every replica.
      await expect(joinCentral({ token: r.json.token, central: a.url, state: join(dir, 'again'), name: 'again' })).rejects.toThrow(/refused the join token/);
    } finally {
      a.running.deps.central.joinUrls = [];
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('tasks created through both replicas reach an agent connected to one of them exactly once and complete', async () => {
    const agent = await a.joinAgent('dc1', 'rack-1', b.url); // joined through A, linked to B
    const ids: string[] = [];
    for (let i = 0; i < 20; i++) {
      const via = i % 2 === 0 ? a : b;
      const r = await via.request('POST', '/api/v1/tasks', { body: { site: 'dc1', kind: 'ping', payload: { message: `t${i}` } } });
      expect(r.status).toBe(201);
      ids.push(r.json.id);
    }
    await waitFor('every task at the agent', () => ids.every((id) => taskIdsIn(agent.frames).includes(id)), 10_000, 20);
    for (const id of ids) await agent.report(id, 'succeeded');
    const seqs = agent.frames.flatMap((f) => (f.type === 'task' ? [f.task] : f.type === 'tasks' ? f.tasks : [])).map((t) => JSON.parse(Buffer.from(t.canonical, 'base64').toString('utf8')).seq as number);
    expect(new Set(seqs).size).toBe(seqs.length); // no sequence number handed out twice
    const received = taskIdsIn(agent.frames);
    for (const id of ids) expect(received.filter((x) => x === id)).toHaveLength(1);
    for (const c of [a, b]) {
      await waitFor('every task succeeded', async () => {
        for (const id of ids) if ((await c.request('GET', `/api/v1/tasks/${id}`)).json.state !== 'succeeded') return null;
        return true;
      }, 10_000, 50);
    }
  });
});
