import { afterEach, describe, expect, it } from 'vitest';
import { DeployRequest } from '../../shared/api/lifecycle.js';
import type { Machine } from '../../shared/api/resources.js';
import { silentLogger } from '../../shared/log/logger.js';
import { FileStore } from '../store/file-store.js';
import { deploy } from './actions.js';
import { lifecycleBench } from './lifecycle.test-support.js';
import { deleteEventsOf, eventsOf } from './machine-events.js';

let b: Awaited<ReturnType<typeof lifecycleBench>>;
afterEach(async () => {
  await b?.close();
});

describe('machine events', () => {
  it('keeps the newest N per machine, in order, and drops the oldest in the same commit', async () => {
    b = await lifecycleBench({ eventsPerMachine: 3 });
    await b.machine({ state: 'ready' });
    await b.machine({ id: 'm-2', name: 'node-2', macs: ['52:54:00:12:00:02'], state: 'ready' });
    for (let i = 0; i < 4; i++) {
      const r = await deploy(b.lc, 'm-1', DeployRequest.parse({ image: 'debian-12' }), {});
      await b.report(r.task!.id, 'failed', `try ${i}`);
    }
    await deploy(b.lc, 'm-2', DeployRequest.parse({ image: 'debian-12' }), {});
    const events = eventsOf(b.store, 'm-1');
    expect(events.map((e) => e.seq)).toEqual([6, 7, 8]);
    expect(events.map((e) => `${e.from}→${e.to}`)).toEqual(['deploying→failed', 'failed→deploying', 'deploying→failed']);
    expect(events.at(-1)!.reason).toBe('image-deploy task failed: try 3');
    expect(eventsOf(b.store, 'm-2')).toHaveLength(1); // another machine's events are its own
    await deleteEventsOf(b.store, 'm-1');
    expect(eventsOf(b.store, 'm-1')).toEqual([]);
    expect(eventsOf(b.store, 'm-2')).toHaveLength(1);
  });

  it('state and events survive a restart of the store (one durable commit each)', async () => {
    b = await lifecycleBench();
    await b.machine({ state: 'ready' });
    const r = await deploy(b.lc, 'm-1', DeployRequest.parse({ image: 'debian-12' }), { tokenId: 'tok' });
    await b.report(r.task!.id, 'failed', 'boom');
    await b.store.close();
    const reopened = await FileStore.open({ dir: b.dir, collections: b.collections, logger: silentLogger });
    try {
      expect(reopened.get<Machine>('machines', 'm-1')).toMatchObject({ state: 'failed', stateReason: 'image-deploy task failed: boom' });
      expect(eventsOf(reopened, 'm-1').map((e) => [e.from, e.to, e.cause.kind])).toEqual([['ready', 'deploying', 'action'], ['deploying', 'failed', 'task']]);
    } finally {
      await reopened.close();
    }
  });
});
