import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../shared/log/logger.js';
import { EVENTS } from '../agents/collections.js';
import { ALL_COLLECTIONS } from '../all-collections.test-support.js';
import { TASKS } from './collection.js';
import { FileStore } from '../store/file-store.js';
import { parseRetention, prune, prunable } from './retention.js';

const DAY = 86_400_000;
const NOW = Date.parse('2026-11-22T12:00:00Z');
const ago = (ms: number) => new Date(NOW - ms).toISOString();
const task = (id: string, state: string, age: number) => ({ id, state, updatedAt: ago(age), createdAt: ago(age), history: [] });
const event = (id: string, age: number) => ({ id, kind: 'lease', receivedAt: ago(age) });

let dir: string;
let store: FileStore;
const open = () => FileStore.open({ dir, collections: ALL_COLLECTIONS, logger: silentLogger });
beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'retention-'));
  store = await open();
});
afterEach(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('task and event retention', () => {
  it('drops finished tasks older than the age, never unfinished ones however old, and old events', async () => {
    await store.commit([
      task('old-succeeded', 'succeeded', 8 * DAY), task('old-failed', 'failed', 30 * DAY), task('old-expired', 'expired', 9 * DAY),
      task('new-succeeded', 'succeeded', 1 * DAY), task('old-queued', 'queued', 60 * DAY), task('old-running', 'running', 60 * DAY), task('old-delivered', 'delivered', 60 * DAY),
    ].map((doc) => ({ type: 'put' as const, collection: TASKS, doc })));
    await store.commit([event('e-old', 8 * DAY), event('e-new', DAY)].map((doc) => ({ type: 'put' as const, collection: EVENTS, doc })));
    const policy = parseRetention('7d', '100000');
    expect(await prune(store, policy, NOW)).toEqual({ tasks: 3, events: 1 });
    expect(store.list(TASKS).items.map((t) => t.id).sort()).toEqual(['new-succeeded', 'old-delivered', 'old-queued', 'old-running']);
    expect(store.list(EVENTS).items.map((e) => e.id)).toEqual(['e-new']);
    // durable: a reopened store agrees
    await store.close();
    store = await open();
    expect(store.count(TASKS)).toBe(4);
    expect(store.count(EVENTS)).toBe(1);
  });

  it('keeps at most the newest maxCount finished tasks, deleting in batches of batchSize commits', async () => {
    await store.commit(Array.from({ length: 25 }, (_, i) => ({ type: 'put' as const, collection: TASKS, doc: task(`t${String(i).padStart(2, '0')}`, 'succeeded', i * 1000) })));
    await store.commit([{ type: 'put', collection: TASKS, doc: task('busy', 'accepted', 99 * DAY) }]);
    const policy = { maxAgeMs: 7 * DAY, maxCount: 10 };
    expect(prunable(store, policy, NOW).tasks.sort()).toEqual(Array.from({ length: 15 }, (_, i) => `t${i + 10}`));
    const commits: number[] = [];
    const commit = store.commit.bind(store);
    store.commit = async (ops) => (commits.push(ops.length), commit(ops));
    await prune(store, policy, NOW, 4);
    expect(commits).toEqual([4, 4, 4, 3]);
    expect(store.list(TASKS).items.map((t) => t.id).sort()).toEqual(['busy', ...Array.from({ length: 10 }, (_, i) => `t0${i}`)]);
    expect(await prune(store, policy, NOW, 4)).toEqual({ tasks: 0, events: 0 });
  });

  it('refuses settings that are not a duration or a positive count', () => {
    expect(parseRetention('12h', '5')).toEqual({ maxAgeMs: 12 * 3_600_000, maxCount: 5 });
    expect(() => parseRetention('forever', '5')).toThrow(/not a duration/);
    expect(() => parseRetention('10s', '5')).toThrow(/shorter than a minute/);
    for (const bad of ['0', '-1', '1.5', 'lots']) expect(() => parseRetention('7d', bad)).toThrow(/positive whole number/);
  });
});
