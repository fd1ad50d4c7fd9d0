import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sodium from 'libsodium-wrappers';
import type { Machine } from '../../shared/api/resources.js';
import type { Logger } from '../../shared/log/logger.js';
import { silentLogger } from '../../shared/log/logger.js';
import type { EventMsg } from '../../shared/protocol/messages.js';
import { AGENTS, type AgentDoc } from '../agents/collections.js';
import { ALL_COLLECTIONS } from '../all-collections.test-support.js';
import { ARTIFACTS } from '../artifacts/routes.js';
import { FileStore } from '../store/file-store.js';
import { TaskService } from '../tasks/service.js';
import { Lifecycle } from './lifecycle.js';
import { onTaskFinished } from './reports.js';

export const SHA_A = 'a'.repeat(64);
export const SHA_RAW = 'b'.repeat(64);
export const MAC = '52:54:00:12:00:01';

/** A store with a site, its agent, an image artifact and the debian-cloud boot environment; a lifecycle wired to a task service. */
export async function lifecycleBench(opts: { logger?: Logger; eventsPerMachine?: number } = {}) {
  await sodium.ready;
  const dir = mkdtempSync(join(tmpdir(), 'lifecycle-'));
  const store = await FileStore.open({ dir, collections: ALL_COLLECTIONS, logger: silentLogger });
  const changes = store.changes;
  const logger = opts.logger ?? silentLogger;
  const tasks = new TaskService(store, sodium.crypto_sign_keypair().privateKey, logger);
  const lc = new Lifecycle({ store, changes, logger, tasks: () => tasks, eventsPerMachine: opts.eventsPerMachine });
  tasks.onTaskFinished((t) => onTaskFinished(lc, t));
  const now = new Date().toISOString();
  for (const name of ['dc1', 'dc2']) await store.put('sites', { id: name, name, params: {}, createdAt: now, updatedAt: now });
  const agent = (id: string, site: string): AgentDoc => ({ id, site, name: id, certFingerprint: `fp-${id}`, certSerial: '1', sealPublicKey: Buffer.alloc(32, 7).toString('base64'), agentVersion: 't', nextSeq: 1, createdAt: now, updatedAt: now });
  const a1 = agent('agent-1', 'dc1');
  const a2 = agent('agent-2', 'dc2');
  await store.put(AGENTS, a1);
  await store.put(AGENTS, a2);
  await store.put(ARTIFACTS, { id: SHA_A, sha256: SHA_A, size: 1000, urls: [], name: 'debian-12', createdAt: now, image: { format: 'zstd', rawSha256: SHA_RAW, rawSize: 4096 } });
  await store.put('bootenvs', { id: 'be-1', name: 'debian-cloud' });
  const machine = async (over: Partial<Machine> = {}): Promise<Machine> => {
    const m: Machine = { id: 'm-1', name: 'node-1', site: 'dc1', macs: [MAC], profiles: [], params: {}, facts: {}, bootenv: 'discovery', state: 'ready', netboot: true, servedBy: a1.id, createdAt: now, updatedAt: now, ...over };
    await store.put('machines', m);
    return m;
  };
  let n = 0;
  const ev = (kind: string, data: unknown): EventMsg => ({ type: 'event', id: `ev-${++n}`, kind, data, at: new Date().toISOString() });
  const report = (taskId: string, state: 'running' | 'succeeded' | 'failed' | 'rejected', reason?: string) =>
    tasks.applyReport(a1.id, { type: 'report', id: `r-${++n}`, taskId, state, at: new Date().toISOString(), ...(reason ? { reason } : {}) });
  return {
    dir,
    collections: ALL_COLLECTIONS,
    store,
    changes,
    tasks,
    lc,
    agents: { a1, a2 },
    machine,
    ev,
    report,
    get: (id = 'm-1') => store.get<Machine>('machines', id)!,
    close: async () => {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
