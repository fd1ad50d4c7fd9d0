import { describe, expect, it } from 'vitest';
import type { Store } from '../store/types.js';
import { buildDesiredState } from './desired-state.js';

const machine = (over: Record<string, unknown>) => ({ id: 'm1', name: 'web-01', site: 'dc1', macs: ['52:54:00:00:00:01'], profiles: [], params: {}, facts: {}, bootenv: 'local', state: 'deployed', netboot: false, ...over });
const storeWith = (machines: unknown[]) =>
  ({
    findUnique: () => ({ name: 'dc1', params: {} }),
    list: (c: string) => ({ items: c === 'machines' ? machines : [] }),
  }) as unknown as Store;

describe('buildDesiredState', () => {
  it('carries a machine’s secretsGeneration to its agent (the re-arm), and a re-arm changes the version', () => {
    const before = buildDesiredState(storeWith([machine({})]), 'dc1');
    expect(before.machines[0].secretsGeneration).toBeUndefined();
    const after = buildDesiredState(storeWith([machine({ secretsGeneration: 3 })]), 'dc1');
    expect(after.machines[0].secretsGeneration).toBe(3);
    expect(after.version).not.toBe(before.version);
  });
});
