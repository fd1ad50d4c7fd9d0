import { afterEach, describe, expect, it } from 'vitest';
import type { Machine } from '../../shared/api/resources.js';
import { lifecycleBench } from './lifecycle.test-support.js';
import { waitForState } from './wait.js';

let b: Awaited<ReturnType<typeof lifecycleBench>>;
afterEach(async () => {
  await b?.close();
});

async function put(over: Partial<Machine>) {
  const before = b.get();
  const doc = { ...before, ...over };
  await b.store.put('machines', doc);
  b.changes.emit({ collection: 'machines', type: 'put', id: doc.id, doc, before });
}

describe('waitForState', () => {
  it('returns at once when the machine is already there, and when it gets there later', async () => {
    b = await lifecycleBench();
    await b.machine({ state: 'deployed' });
    expect(await waitForState(b.store, b.changes, 'm-1', 'deployed', 1000)).toMatchObject({ outcome: 'reached' });
    const w = waitForState(b.store, b.changes, 'm-1', 'ready', 5000);
    await put({ state: 'releasing' });
    await put({ state: 'ready' });
    expect(await w).toMatchObject({ outcome: 'reached', machine: { state: 'ready' } });
  });

  it('ends at once when the machine fails, at the timeout, when it is deleted, and when the request aborts', async () => {
    b = await lifecycleBench();
    await b.machine({ state: 'deploying' });
    const failing = waitForState(b.store, b.changes, 'm-1', 'deployed', 60_000);
    const t0 = Date.now();
    await put({ state: 'failed', stateReason: 'boom' });
    expect(await failing).toMatchObject({ outcome: 'failed', machine: { stateReason: 'boom' } });
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(await waitForState(b.store, b.changes, 'm-1', 'failed', 10)).toMatchObject({ outcome: 'reached' });
    await put({ state: 'deploying' });
    expect(await waitForState(b.store, b.changes, 'm-1', 'deployed', 50)).toMatchObject({ outcome: 'timeout', machine: { state: 'deploying' } });
    const ac = new AbortController();
    const aborted = waitForState(b.store, b.changes, 'm-1', 'deployed', 60_000, ac.signal);
    ac.abort();
    expect(await aborted).toMatchObject({ outcome: 'timeout' });
    const gone = waitForState(b.store, b.changes, 'm-1', 'deployed', 60_000);
    await b.store.delete('machines', 'm-1');
    b.changes.emit({ collection: 'machines', type: 'delete', id: 'm-1' });
    expect(await gone).toEqual({ outcome: 'gone' });
  });
});
