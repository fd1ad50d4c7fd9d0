import { describe, expect, it } from 'vitest';
import { fleet } from './fleet.js';
import { storeOf } from './run.js';

describe('the inventory bench’s store', () => {
  it('holds the whole synthetic fleet in the product’s MemoryStore (its unique indexes accept every document)', () => {
    const f = fleet(500);
    const store = storeOf(500);
    expect(store.counts()).toEqual({ sites: f.sites.length, profiles: f.profiles.length, params: f.params.length, machines: 500, 'group-rules': f.rules.length, services: f.services.length });
    expect(store.findUnique('machines', 'mac', String((f.machines[7] as { macs: string[] }).macs[0]).toLowerCase())?.id).toBe(f.machines[7].id);
  });
});
