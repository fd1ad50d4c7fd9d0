import { describe, expect, it } from 'vitest';
import { buildDesiredState } from '../agents/desired-state.js';
import { MemoryStore } from '../store/memory-store.js';
import { machinesState } from './feature.js';
import { MACHINES, machinesCollection } from './resources.js';

const machine = (over: Record<string, unknown>) => ({ id: 'm1', name: 'web-01', site: 'dc1', macs: ['52:54:00:00:00:01'], profiles: [], params: {}, facts: {}, bootenv: 'local', state: 'deployed', netboot: false, ...over });
const storeWith = async (...machines: Record<string, unknown>[]) => {
  const store = new MemoryStore([machinesCollection]);
  for (const m of machines) await store.put(MACHINES, machine(m));
  return store;
};

describe('machines in the desired state', () => {
  it('carries a machine’s secretsGeneration to its agent (the re-arm), and a re-arm changes the version', async () => {
    const before = buildDesiredState(await storeWith({}), 'dc1', [machinesState]);
    expect(before.machines[0].secretsGeneration).toBeUndefined();
    const after = buildDesiredState(await storeWith({ secretsGeneration: 3 }), 'dc1', [machinesState]);
    expect(after.machines[0].secretsGeneration).toBe(3);
    expect(after.version).not.toBe(before.version);
  });

  it('holds only the site’s machines, and each agent only its own sealed box of a secret param', async () => {
    const store = await storeWith({ params: { bmc: { $sealed: { a1: 'box-for-a1', a2: 'box-for-a2' } }, role: 'web' } }, { id: 'm2', name: 'db-01', site: 'dc2', macs: ['52:54:00:00:00:02'] });
    const state = buildDesiredState(store, 'dc1', [machinesState], 'a1');
    expect(state.machines.map((m) => m.name)).toEqual(['web-01']);
    expect(state.machines[0].params).toEqual({ bmc: { $sealed: 'box-for-a1' }, role: 'web' });
  });
});
