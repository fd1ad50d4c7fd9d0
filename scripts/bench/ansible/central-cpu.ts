/**
 * The central's CPU per Ansible operation, in one process and without Ansible: what the connection plugin
 * and the agent make the central do for one pipelined module run — `POST /api/v1/tasks` (an exec carrying a
 * 200 KB module, base64, as the plugin sends it), the agent's reports (accepted, then succeeded) and the
 * plugin's `GET /api/v1/tasks/{id}?wait=` — over the real file store (journal, fdatasync) with every
 * production feature (audit included). No agent is connected, so nothing is sent on a WebSocket.
 *
 *   npx tsc -p . && node dist/scripts/bench/ansible/central-cpu.js [--ops 200] [--full]
 *
 * `--full` leaves out `Prefer: return=minimal` (the plugin sends it). Prints CPU (user + system) per
 * operation and the journal bytes written per operation. Run it in two trees back to back to compare.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import sodium from 'libsodium-wrappers';
import { silentLogger } from '../../../shared/log/logger.js';
import { createApp } from '../../../central/api/app.js';
import type { ApiDeps } from '../../../central/api/deps.js';
import { Services } from '../../../central/api/services.js';
import { TokenService } from '../../../central/auth/tokens.js';
import { centralFeatures } from '../../../central/features.js';
import { Metrics } from '../../../central/metrics/metrics.js';
import { FileStore } from '../../../central/store/file-store.js';
import { TASK_SERVICE } from '../../../central/tasks/feature.js';

const { values: args } = parseArgs({ options: { ops: { type: 'string', default: '200' }, full: { type: 'boolean', default: false } } });
const OPS = Number(args.ops);

await sodium.ready;
const dir = mkdtempSync(join(tmpdir(), 'underlay-bench-central-cpu-'));
const features = centralFeatures();
const store = await FileStore.open({ dir, collections: features.flatMap((f) => f.collections ?? []), logger: silentLogger });
const deps: ApiDeps = {
  store, changes: store.changes, tokens: new TokenService(store), metrics: new Metrics(), logger: silentLogger, dataDir: dir,
  central: { caFingerprint: 'x', publicUrl: 'https://127.0.0.1', signingPublicKey: 'x', agentCertLifetimeMs: 86_400_000 },
  identity: { ca: { keyPem: '', certPem: '' }, signing: sodium.crypto_sign_keypair(), caFingerprint: 'x' },
};
const services = new Services();
const app = createApp(deps, { features, services });
const tasks = services.get(TASK_SERVICE);
const token = (await deps.tokens.create({ role: 'operator' })).token;
const now = new Date().toISOString();
await store.put('sites', { id: 's1', name: 's1', params: {}, createdAt: now, updatedAt: now });
await store.put('agents', { id: 'a1', site: 's1', name: 'a1', certFingerprint: 'fp', certSerial: '1', sealPublicKey: 'x', agentVersion: 'bench', nextSeq: 1, createdAt: now, updatedAt: now });
await store.put('machines', { id: 'm1', name: 'm1', site: 's1', macs: [], profiles: [], params: {}, bootenv: 'local', state: 'deployed', netboot: false, createdAt: now, updatedAt: now });

const module = Buffer.from(Array.from({ length: 200_000 }, (_, i) => (i * 7919) % 251)).toString('base64');
const body = JSON.stringify({ site: 's1', machine: 'm1', kind: 'exec', payload: { cmdB64: Buffer.from('/usr/bin/python3').toString('base64'), stdinB64: module }, ttl: '10m' });
const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json', ...(args.full ? {} : { prefer: 'return=minimal' }) };

async function operation(i: string): Promise<void> {
  const created = await app.request('/api/v1/tasks', { method: 'POST', body, headers });
  const t = (await created.json()) as { id: string };
  if (created.status !== 201) throw new Error(`create: ${created.status} ${JSON.stringify(t)}`);
  await tasks.applyReports('a1', [{ type: 'report', id: `a-${i}`, taskId: t.id, state: 'accepted', at: new Date().toISOString() }]);
  await tasks.applyReports('a1', [{ type: 'report', id: `s-${i}`, taskId: t.id, state: 'succeeded', at: new Date().toISOString(), exitCode: 0, output: 'underlay-exec 1 5 0 /tmp/t\naGVsbG8=\n' }]);
  const got = await app.request(`/api/v1/tasks/${t.id}?wait=30s`, { headers });
  if ((await got.json() as { state: string }).state !== 'succeeded') throw new Error('the task did not finish');
}

try {
  for (let i = 0; i < 20; i++) await operation(`warm-${i}`);
  // Journal bytes per operation, from an empty journal (compaction at 64 MiB would reset the count).
  const journal = () => (store as unknown as { journal: { bytes: number } }).journal.bytes;
  await store.compact();
  for (let i = 0; i < 20; i++) await operation(`bytes-${i}`);
  const written = journal() / 20;
  const c0 = process.cpuUsage();
  for (let i = 0; i < OPS; i++) await operation(String(i));
  const c = process.cpuUsage(c0);
  console.log(`central, ${OPS} exec operations (200 KB module${args.full ? ', full answers' : ', Prefer: return=minimal'}):`);
  console.log(`  CPU per operation ${((c.user + c.system) / OPS / 1000).toFixed(2)} ms (user ${(c.user / OPS / 1000).toFixed(2)}, system ${(c.system / OPS / 1000).toFixed(2)})`);
  console.log(`  journal per operation ${(written / 1024).toFixed(0)} KiB`);
} finally {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
}
