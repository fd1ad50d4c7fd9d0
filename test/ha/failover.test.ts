import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeSigningKey } from '../../central/keys/signing-key.js';
import { makeCsr } from '../../shared/pki/csr.js';
import { waitFor } from '../agent-link/support.js';
import { killAllCentrals, spawnCentral, tempDir, type CentralProcess } from '../central/support.js';
import { postgresReady, TestPostgres } from '../support/postgres.js';
import { LinkSims } from './link-sims.js';
import { cloneIdentity } from './replicas.js';

/**
 * Issue 17: two central processes on one PostgreSQL, 200 agents (the real agent link) spread over both,
 * writes and tasks through both; `kill -9` one replica under load. Every acknowledged write is present,
 * its agents reconnect to the other within 10 s, every task created before and after the kill completes
 * exactly once.
 */
const ready = postgresReady('central replica failover');
const AGENTS = 200;
const SITES = 10;
/** Tasks created before the kill (through both replicas) and after it (through the survivor). */
const TASKS_EACH = 50;
let cluster: TestPostgres;
let a: CentralProcess;
let b: CentralProcess;
let dir: string;
let bDir: string;
let sims: LinkSims;

beforeAll(async () => {
  if (!ready) return;
  dir = tempDir('underlay-ha-');
  cluster = await TestPostgres.start();
  const store = await cluster.createDatabase('ha');
  a = await spawnCentral({ args: ['--store', store] });
  bDir = cloneIdentity(a.dataDir);
  b = await spawnCentral({ dataDir: join(bDir, 'data'), args: ['--store', store] });
  for (let s = 0; s < SITES; s++) expect((await a.request('POST', '/api/v1/sites', { body: { name: `s${s}` } })).status).toBe(201);
  sims = new LinkSims(dir, decodeSigningKey(readFileSync(join(a.dataDir, 'signing.key'), 'utf8')).publicKey);
  // One key for every simulated agent (RSA key generation would dominate); each gets its own certificate.
  const { keyPem, csrPem } = makeCsr('agent-candidate:ha');
  let next = 0;
  const joinOne = async () => {
    while (next < AGENTS) {
      const i = next++;
      const via = i % 2 === 0 ? a : b;
      const t = await via.request('POST', '/api/v1/tokens', { body: { role: 'agent-join', site: `s${i % SITES}` } });
      const bearer = /^ulj1\.(ul_[^.]+)\./.exec(t.json.token)![1];
      const j = await via.request('POST', '/api/v1/agents/join', { token: bearer, body: { csr: csrPem, sealPublicKey: Buffer.alloc(32, 7).toString('base64'), name: `sim-${i}`, agentVersion: 'test' } });
      expect(j.status).toBe(201);
      // Half list A first, half B first: the agents spread over both replicas.
      await sims.add({ id: j.json.agent.id, site: `s${i % SITES}`, key: keyPem, cert: j.json.certificate, ca: a.ca }, i % 2 === 0 ? `${a.url},${b.url}` : `${b.url},${a.url}`);
    }
  };
  await Promise.all(Array.from({ length: 8 }, joinOne));
  await waitFor('every agent linked', () => (sims.readyOn(a.url) + sims.readyOn(b.url) === AGENTS ? true : null), 60_000, 100);
}, 300_000);

afterAll(async () => {
  await sims?.stop();
  await killAllCentrals();
  await a?.cleanup();
  await b?.cleanup();
  if (bDir) rmSync(bDir, { recursive: true, force: true });
  if (dir) rmSync(dir, { recursive: true, force: true });
  cluster?.stop();
}, 60_000);

const createTask = async (via: CentralProcess, i: number): Promise<string | null> => {
  const r = await via.request('POST', '/api/v1/tasks', { body: { site: `s${i % SITES}`, kind: 'ping', payload: { message: `t${i}` } } }).catch(() => null);
  return r?.status === 201 ? (r.json.id as string) : null;
};

describe.skipIf(!ready)('kill -9 of one of two central replicas under load', () => {
  it('loses no acknowledged write, its agents move to the other within 10 s, every task runs exactly once', async () => {
    expect(sims.readyOn(a.url)).toBeGreaterThan(AGENTS / 4);
    expect(sims.readyOn(b.url)).toBeGreaterThan(AGENTS / 4);

    // Writes through both replicas, until told to stop; only acknowledged (201) ones are counted.
    const acked: string[] = [];
    let writing = true;
    const writer = async (id: number) => {
      for (let n = 0; writing; n++) {
        const via = (n + id) % 2 === 0 ? a : b;
        if (!via.running) continue;
        const name = `w${id}-${n}`;
        const mac = `52:54:${id.toString(16).padStart(2, '0')}:${((n >> 16) & 255).toString(16).padStart(2, '0')}:${((n >> 8) & 255).toString(16).padStart(2, '0')}:${(n & 255).toString(16).padStart(2, '0')}`;
        const r = await via.request('POST', '/api/v1/machines', { body: { name, site: 's0', macs: [mac] } }).catch(() => null);
        if (r?.status === 201) acked.push(name);
      }
    };
    const writers = Array.from({ length: 2 }, (_, i) => writer(i));

    const tasks: string[] = [];
    for (let i = 0; i < TASKS_EACH; i++) {
      const id = await createTask(i % 2 === 0 ? a : b, i);
      expect(id).not.toBeNull();
      tasks.push(id!);
    }
    const onA = sims.readyOn(a.url);
    console.log(`[ha] before kill: ${onA} on A, ${sims.readyOn(b.url)} on B, ${acked.length} writes acknowledged`);
    const killedAt = Date.now();
    await a.kill();
    const moved = await waitFor('every agent on replica B', () => (sims.readyOn(b.url) === AGENTS ? Date.now() - killedAt : null), 30_000, 50);
    console.log(`[ha] every agent on B ${moved} ms after the kill`);
    expect(moved).toBeLessThanOrEqual(10_000);
    expect(onA).toBeGreaterThan(0);

    console.log(`[ha] ${acked.length} writes acknowledged; creating ${TASKS_EACH} more tasks through B`);
    for (let i = TASKS_EACH; i < 2 * TASKS_EACH; i++) {
      const id = await createTask(b, i);
      expect(id).not.toBeNull();
      tasks.push(id!);
    }
    writing = false;
    await Promise.all(writers);
    console.log(`[ha] tasks created; writers stopped at ${acked.length} acknowledged writes`);
    expect(acked.length).toBeGreaterThan(10);

    await waitFor(
      'every task succeeded',
      async () => {
        const r = await b.request('GET', '/api/v1/tasks?limit=1000');
        if (r.status !== 200) console.log(`[ha] tasks list: ${r.status} ${r.text.slice(0, 200)}`);
        const states = new Map<string, string>((r.json.items as { id: string; state: string }[]).map((t) => [t.id, t.state]));
        const done = tasks.filter((id) => states.get(id) === 'succeeded').length;
        if (done < tasks.length && Math.random() < 0.05) console.log(`[ha] ${done}/${tasks.length} tasks succeeded; executed ${sims.executed.size}`);
        return done === tasks.length ? true : null;
      },
      120_000,
      500,
    );
    console.log(`[ha] all tasks succeeded; ${acked.length} writes acknowledged`);
    for (const id of tasks) expect(sims.executed.get(id), `task ${id} executions`).toBe(1);
    expect(sims.executed.size).toBe(tasks.length);

    const stored = new Set<string>();
    for (let offset = 0; ; offset += 100) {
      const page = await b.request('GET', `/api/v1/machines?limit=100&offset=${offset}`);
      expect(page.status).toBe(200);
      for (const m of page.json.items as { name: string }[]) stored.add(m.name);
      if (page.json.items.length < 100) break;
    }
    const lost = acked.filter((n) => !stored.has(n));
    expect(lost).toEqual([]);
  });
});
