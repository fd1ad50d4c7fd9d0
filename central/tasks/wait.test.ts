import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sodium from 'libsodium-wrappers';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../shared/log/logger.js';
import { AGENTS, type AgentDoc } from '../agents/collections.js';
import { ALL_COLLECTIONS } from '../all-collections.test-support.js';
import { FileStore } from '../store/file-store.js';
import { ChangeFeed } from '../store/change-feed.js';
import { TASKS } from './collection.js';
import { TaskService } from './service.js';
import { TaskWaiters } from './wait.js';

let dir: string;
let store: FileStore;
let svc: TaskService;

beforeEach(async () => {
  await sodium.ready;
  dir = mkdtempSync(join(tmpdir(), 'taskwait-'));
  store = await FileStore.open({ dir, collections: ALL_COLLECTIONS, logger: silentLogger });
  await store.put('sites', { id: 's1', name: 's1', params: {}, createdAt: 'x', updatedAt: 'x' });
  const agent: AgentDoc = { id: 'a1', site: 's1', name: 'a1', certFingerprint: 'fp', certSerial: '1', sealPublicKey: 'x', agentVersion: 't', nextSeq: 1, createdAt: 'x', updatedAt: 'x' };
  await store.put(AGENTS, agent);
  svc = new TaskService(store, sodium.crypto_sign_keypair().privateKey, silentLogger);
});
afterEach(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

const report = (taskId: string, state: 'accepted' | 'succeeded', id: string) => ({ type: 'report' as const, id, taskId, state, at: new Date().toISOString(), ...(state === 'succeeded' ? { output: 'done', exitCode: 0 } : {}) });

describe('TaskWaiters', () => {
  it('answers as soon as the task is final, with its output, not at the timeout', async () => {
    const waiters = new TaskWaiters(svc);
    const t = await svc.create({ site: 's1', kind: 'ping' });
    const started = Date.now();
    const waiting = waiters.finished(t.id, 30_000);
    await svc.applyReport('a1', report(t.id, 'accepted', 'r1'));
    expect(waiters.size).toBe(1); // an accepted report is not final
    setTimeout(() => void svc.applyReport('a1', report(t.id, 'succeeded', 'r2')), 50);
    const done = await waiting;
    expect(done).toMatchObject({ id: t.id, state: 'succeeded', output: 'done', exitCode: 0 });
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(waiters.size).toBe(0);
  });

  it('answers at the timeout with the task as it stands, at once for a final or unknown task', async () => {
    const waiters = new TaskWaiters(svc);
    const t = await svc.create({ site: 's1', kind: 'ping' });
    expect((await waiters.finished(t.id, 100))?.state).toBe('queued');
    expect(waiters.size).toBe(0);
    expect(await waiters.finished('nope', 10_000)).toBeUndefined();
    await svc.applyReport('a1', report(t.id, 'succeeded', 'r3'));
    const started = Date.now();
    expect((await waiters.finished(t.id, 10_000))?.state).toBe('succeeded');
    expect(Date.now() - started).toBeLessThan(1_000);
  });

  it('wakes on a task another central replica finished (a remote change), not only on this one\'s reports', async () => {
    const feed = new ChangeFeed();
    const waiters = new TaskWaiters(svc, feed);
    const t = await svc.create({ site: 's1', kind: 'ping' });
    const started = Date.now();
    const waiting = waiters.finished(t.id, 30_000);
    feed.emit({ collection: TASKS, type: 'put', id: t.id, doc: { ...t, state: 'running' }, remote: true }); // not final: still waiting
    feed.emit({ collection: TASKS, type: 'put', id: t.id, doc: { ...t, state: 'succeeded', output: 'there' } }); // a local change: onTaskFinished's business
    expect(waiters.size).toBe(1);
    feed.emit({ collection: TASKS, type: 'put', id: t.id, doc: { ...t, state: 'succeeded', output: 'there' }, remote: true });
    expect(await waiting).toMatchObject({ id: t.id, state: 'succeeded', output: 'there' });
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(waiters.size).toBe(0);
  });
});
