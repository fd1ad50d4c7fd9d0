import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { memoryStore } from '../all-collections.test-support.js';
import type { Change } from '../store/change-feed.js';
import { RUNS } from './resources.js';
import { runsBench } from './runs.test-support.js';
import type { RunDoc } from './state-machine.js';
import { WaitingGates } from './waiting-gates.js';

const svc = (name: string, passing: number, critical = 0): Change => ({
  collection: 'services',
  type: 'put',
  id: `svc-${name}`,
  doc: { id: `svc-${name}`, name, members: [...Array(passing).fill({ status: 'passing' }), ...Array(critical).fill({ status: 'critical' })] },
});
const ids = (n: number, prefix = 'r') => Array.from({ length: n }, (_, i) => `${prefix}-${i}`);

describe('waiting gates: the index of runs waiting at a gate', () => {
  it('1,000 runs on one service wait cost one check per change to that service, none for other services or collections; the change that opens it wakes all 1,000', () => {
    const g = new WaitingGates(memoryStore());
    for (const id of ids(1000)) g.add(id, `m-${id}`, { service: 'etcd', passing: 3 });
    expect(g.concerned({ collection: 'tasks', type: 'put', id: 't1', doc: { id: 't1' } })).toEqual([]);
    expect(g.concerned({ collection: 'runs', type: 'put', id: 'r-1', doc: { id: 'r-1' } })).toEqual([]);
    expect(g.concerned(svc('other', 5))).toEqual([]);
    expect(g.checks).toBe(0);
    expect(g.concerned(svc('etcd', 2, 7))).toEqual([]);
    expect(g.checks).toBe(1);
    expect(g.concerned(svc('etcd', 3)).sort()).toEqual(ids(1000).sort());
    expect(g.checks).toBe(2);
  });

  it('groups by threshold: a change wakes only the groups it satisfies; a deleted service wakes nobody', () => {
    const g = new WaitingGates(memoryStore());
    g.add('a', 'm-a', { service: 'etcd', passing: 2 });
    g.add('b', 'm-b', { service: 'etcd', passing: 3 });
    expect(g.concerned(svc('etcd', 2))).toEqual(['a']);
    expect(g.checks).toBe(2);
    expect(g.concerned({ collection: 'services', type: 'delete', id: 'svc-etcd', before: svc('etcd', 5).doc })).toEqual([]);
  });

  it('removed runs and approval-only runs are never woken; re-adding moves a run to its new wait', () => {
    const g = new WaitingGates(memoryStore());
    g.add('a', 'm-a', { service: 'etcd', passing: 1 });
    g.add('b', 'm-b', { service: 'etcd', passing: 1 });
    g.add('c', 'm-c', undefined);
    g.remove('a');
    expect(g.size).toBe(2);
    expect(g.concerned(svc('etcd', 1))).toEqual(['b']);
    g.add('b', 'm-b', { service: 'consul', passing: 1 });
    expect(g.concerned(svc('etcd', 1))).toEqual([]);
    expect(g.concerned(svc('consul', 1))).toEqual(['b']);
    g.remove('b');
    g.remove('c');
    expect(g.size).toBe(0);
    expect(g.concerned(svc('consul', 1))).toEqual([]);
  });

  it('a machines wait is checked once per machine change for all its runs, and wakes them when it holds', async () => {
    const store = memoryStore();
    const now = new Date().toISOString();
    const machine = (id: string, state: string) => ({ id, name: id, site: 'dc1', rack: 'r1', macs: [], profiles: [], params: {}, facts: {}, state, createdAt: now, updatedAt: now });
    await store.put('machines', machine('m-1', 'deploying'));
    const g = new WaitingGates(store);
    for (const id of ids(50)) g.add(id, 'x', { machines: 'rack=r1', state: 'deployed' });
    expect(g.concerned({ collection: 'machines', type: 'put', id: 'm-1', doc: machine('m-1', 'deploying') })).toEqual([]);
    expect(g.checks).toBe(1);
    await store.put('machines', machine('m-1', 'deployed'));
    expect(g.concerned({ collection: 'machines', type: 'put', id: 'm-1', doc: machine('m-1', 'deployed') })).toHaveLength(50);
  });

  it('a param wait wakes on its own machine’s change only, and on any profile, site or param change', () => {
    const g = new WaitingGates(memoryStore());
    g.add('a', 'm-a', { param: 'role' });
    g.add('b', 'm-b', { param: 'role' });
    expect(g.concerned({ collection: 'machines', type: 'put', id: 'm-b', doc: { id: 'm-b' } })).toEqual(['b']);
    expect(g.concerned({ collection: 'machines', type: 'put', id: 'm-z', doc: { id: 'm-z' } })).toEqual([]);
    expect(g.concerned({ collection: 'profiles', type: 'put', id: 'p', doc: { id: 'p' } }).sort()).toEqual(['a', 'b']);
    expect(g.concerned({ collection: 'tasks', type: 'put', id: 't', doc: { id: 't' } })).toEqual([]);
  });
});

describe('run engine with many waiting gates', () => {
  let b: Awaited<ReturnType<typeof runsBench>>;
  beforeEach(async () => {
    b = await runsBench();
  });
  afterEach(async () => {
    await b.close();
  });

  it('200 runs at one service gate: a change that does not open it is one gate check (not 200); the one that opens it moves all 200 on', async () => {
    for (let i = 1; i <= 200; i++) await b.machine(i, { macs: [`52:54:00:13:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 0xff).toString(16).padStart(2, '0')}`] });
    const wf = await b.workflow({ name: 'gated', stages: [{ name: 'join', wait: { service: 'bench-svc', passing: 2 }, steps: [{ task: 'ping', payload: {} }] }] });
    const runs = await b.env.engine.start(wf, b.store.list<never>('machines').items);
    await b.settle();
    expect(runs).toHaveLength(200);
    for (const r of runs) expect(b.store.get<RunDoc>(RUNS, r.id)!.status.state).toBe('waiting');
    const before = b.env.engine.gateEvaluations;
    await b.env.registry.register('bench-svc', { id: 'a', address: '198.18.0.1', port: 1, tags: [], meta: {}, status: 'passing' });
    for (const status of ['critical', 'warning', 'critical'] as const) await b.env.registry.register('bench-svc', { id: 'b', address: '198.18.0.2', port: 1, tags: [], meta: {}, status });
    await b.settle();
    expect(b.env.engine.gateEvaluations - before).toBe(4);
    expect(b.tasks()).toHaveLength(0);
    await b.heartbeat('bench-svc', 'b');
    await b.settle();
    expect(b.tasks()).toHaveLength(200);
    for (const r of runs) expect(b.store.get<RunDoc>(RUNS, r.id)!.stages[0]!.steps[0]!.state).toBe('running');
  });
});
