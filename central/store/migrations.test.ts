import { describe, expect, it } from 'vitest';
import { migrate, SCHEMA_VERSION } from './migrations.js';

describe('store migrations', () => {
  it('version 1 → 2 turns every old bootState into the lifecycle state and drops bootState', () => {
    const m = (id: string, bootState: string, facts: object = {}) => ({ id, name: id, bootState, facts });
    const { snapshot, migrated } = migrate({
      schemaVersion: 1,
      journalGeneration: 0,
      collections: {
        machines: [m('a', 'new'), m('b', 'discovered', { cpu: { cores: 2 } }), m('c', 'discovered'), m('d', 'provisioning'), m('e', 'installed'), m('f', 'local'), m('g', 'failed'), m('h', 'new', { cpu: { cores: 1 } })],
        sites: [{ id: 's', name: 's' }],
        'group-rules': [
          { id: 'r1', kind: 'condition', when: { path: 'bootState', op: 'eq', value: 'installed' } },
          { id: 'r2', kind: 'condition', when: [{ path: 'site', op: 'exists' }, { path: 'bootState', op: 'ne', value: 'new' }] },
          { id: 'r3', kind: 'keyed', key: 'bootState' },
          { id: 'r4', kind: 'keyed', key: 'facts.cpu.model' },
        ],
      },
    });
    expect(migrated).toBe(true);
    expect(snapshot.schemaVersion).toBe(SCHEMA_VERSION);
    const states = Object.fromEntries(snapshot.collections.machines.map((d) => [d.id, d.state]));
    expect(states).toEqual({ a: 'discovered', b: 'ready', c: 'discovered', d: 'deploying', e: 'deployed', f: 'deployed', g: 'failed', h: 'ready' });
    expect(snapshot.collections.machines.every((d) => !('bootState' in d))).toBe(true);
    expect(snapshot.collections.machines.find((d) => d.id === 'g')!.stateReason).toMatch(/migrated/);
    expect(snapshot.collections.sites).toEqual([{ id: 's', name: 's' }]);
    expect(snapshot.collections['group-rules']).toEqual([
      { id: 'r1', kind: 'condition', when: { path: 'state', op: 'eq', value: 'installed' } },
      { id: 'r2', kind: 'condition', when: [{ path: 'site', op: 'exists' }, { path: 'state', op: 'ne', value: 'new' }] },
      { id: 'r3', kind: 'keyed', key: 'state' },
      { id: 'r4', kind: 'keyed', key: 'facts.cpu.model' },
    ]);
  });

  it('a store without machines migrates, and a current one is left alone', () => {
    expect(migrate({ schemaVersion: 1, journalGeneration: 0, collections: {} }).snapshot.collections).toEqual({});
    expect(migrate({ schemaVersion: SCHEMA_VERSION, journalGeneration: 0, collections: {} }).migrated).toBe(false);
  });
});

describe('journal records of an older version', () => {
  it('migrate like the snapshot (a machine journaled by version 1 gets its state)', async () => {
    const { migrateRecord } = await import('./migrations.js');
    expect(migrateRecord(1, 'machines', { id: 'x', bootState: 'installed' })).toEqual({ id: 'x', state: 'deployed' });
    expect(migrateRecord(1, 'sites', { id: 's', bootState: 'x' })).toEqual({ id: 's', bootState: 'x' });
    expect(migrateRecord(2, 'machines', { id: 'x', bootState: 'installed' })).toEqual({ id: 'x', bootState: 'installed' });
  });
});
