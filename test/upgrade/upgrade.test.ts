import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { WebSocket } from 'ws';
import { afterAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../shared/log/logger.js';
import type { CentralToAgent } from '../../shared/protocol/messages.js';
import { startCentral } from '../../central/server/serve.js';
import { SCHEMA_VERSION } from '../../central/store/migrations.js';
import { startInProcessCentral, type InProcessCentral } from '../central/in-process.js';
import { tempDir } from '../central/support.js';

/**
 * Issue 19, upgrade: the current central opens a data dir written by the previous release and serves
 * what it held; that release's agent (its recorded hello, its own certificate) is accepted; a data dir
 * of a newer schema is refused with a clear message and left untouched.
 *
 * The fixture (test/upgrade/fixtures/40facb0/) was made by test/upgrade/make-fixture.sh with the code of
 * commit 40facb0: inventory of every kind written through that release's CLI, a queued task, an agent
 * joined with that release's `agent join`, then the central killed with -9 (its journal not compacted).
 */
const FIXTURE = join(import.meta.dirname, 'fixtures/40facb0');
const work = tempDir('underlay-upgrade-');
const open: InProcessCentral[] = [];
afterAll(async () => {
  for (const c of open) await c.close();
});

function copyFixture(name: string): string {
  const dir = join(work, name);
  cpSync(join(FIXTURE, 'central'), join(dir, 'data'), { recursive: true });
  return dir;
}

describe('upgrade from the previous release (40facb0)', () => {
  it("opens the previous release's data dir (snapshot + a journal left by kill -9) and serves its inventory", async () => {
    const c = await startInProcessCentral({ dir: copyFixture('current') });
    open.push(c);
    expect(c.adminToken).toBe(readFileSync(join(FIXTURE, 'central/admin.token'), 'utf8').trim());
    const get = async (path: string) => {
      const r = await c.request('GET', path);
      expect(r.status, `${path}: ${r.text}`).toBe(200);
      return r.json;
    };
    expect((await get('/api/v1/sites/dc1')).params).toEqual({ ntp: '198.18.0.53' });
    const m1 = await get('/api/v1/machines/m1');
    expect(m1).toMatchObject({ site: 'dc1', macs: ['52:54:00:40:fa:01'], params: { rack: 'r1' }, profiles: ['web'] });
    expect(typeof m1.state).toBe('string');
    const m2 = await get('/api/v1/machines/m2');
    expect(Object.keys(m2.params)).toContain('bmc_password'); // (that release's `--param` replaced the others)
    expect(JSON.stringify(m2)).not.toContain('old-release-secret'); // sealed then, still not shown
    expect((await get('/api/v1/params/bmc_password')).secret).toBe(true);
    expect((await get('/api/v1/subnets?site=dc1')).items[0]).toMatchObject({ cidr: '198.18.0.0/24' });
    expect((await get('/api/v1/services/etcd')).members[0]).toMatchObject({ address: '198.18.0.11', port: 2379 });
    expect((await get('/api/v1/tasks?site=dc1')).items.map((t: { kind: string }) => t.kind)).toContain('set-netboot');
    expect((await get('/api/v1/agents')).items.map((a: { name: string }) => a.name)).toEqual(['rack1']);
    // And it takes writes on top of them.
    expect((await c.request('PATCH', '/api/v1/machines/m1', { body: { params: { rack: 'r9' } } })).status).toBe(200);
  });

  it("accepts that release's agent: its hello (protocol, version, features) and its certificate get the welcome, the state and the queued task", async () => {
    const c = open[0]!;
    const agentDir = join(FIXTURE, 'agent');
    const hello = readFileSync(join(FIXTURE, 'agent-hello.json'), 'utf8');
    const frames: CentralToAgent[] = [];
    const ws = new WebSocket(c.url.replace('https', 'wss') + '/api/v1/agents/connect', { key: readFileSync(join(agentDir, 'tls.key')), cert: readFileSync(join(agentDir, 'tls.pem')), ca: readFileSync(join(agentDir, 'ca.pem')), perMessageDeflate: false });
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no task within 10 s; frames: ${JSON.stringify(frames.map((f) => f.type))}`)), 10_000);
        ws.on('open', () => ws.send(hello));
        ws.on('error', reject);
        ws.on('close', (code, reason) => reject(new Error(`closed ${code} ${String(reason)}`)));
        ws.on('message', (d) => {
          frames.push(JSON.parse(String(d)) as CentralToAgent);
          if (frames.some((f) => f.type === 'state') && frames.some((f) => f.type === 'task' || f.type === 'tasks')) {
            clearTimeout(timer);
            resolve();
          }
        });
      });
    } finally {
      ws.terminate();
    }
    expect(frames[0]).toMatchObject({ type: 'welcome', site: 'dc1' });
    const state = frames.find((f) => f.type === 'state') as Extract<CentralToAgent, { type: 'state' }>;
    expect(state.state.machines.map((m) => m.name).sort()).toEqual(['m1', 'm2']);
  });

  it('refuses a data dir of a newer schema version clearly, and leaves it as it was', async () => {
    const dir = copyFixture('newer');
    const storeFile = join(dir, 'data', 'store.json');
    const newer = { ...JSON.parse(readFileSync(storeFile, 'utf8')), schemaVersion: SCHEMA_VERSION + 1 };
    writeFileSync(storeFile, JSON.stringify(newer));
    const journal = readFileSync(join(dir, 'data', 'journal.0.jsonl'), 'utf8');
    await expect(startCentral({ data: join(dir, 'data'), listen: '127.0.0.1:0', logger: silentLogger })).rejects.toThrow(`data file has schema version ${SCHEMA_VERSION + 1}, newer than this central (${SCHEMA_VERSION}); upgrade the central`);
    expect(JSON.parse(readFileSync(storeFile, 'utf8'))).toEqual(newer);
    expect(readFileSync(join(dir, 'data', 'journal.0.jsonl'), 'utf8')).toBe(journal);
  });
});
