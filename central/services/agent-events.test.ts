import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../shared/log/logger.js';
import type { AgentDoc } from '../agents/collections.js';
import { memoryStore } from '../all-collections.test-support.js';
import type { MemoryStore } from '../store/memory-store.js';
import { serviceStatusHandler } from './agent-events.js';
import { ServiceRegistry } from './registry.js';

describe('service health reported by a site agent for its machines', () => {
  let store: MemoryStore;
  let registry: ServiceRegistry;
  const ev = (data: unknown) => ({ type: 'event' as const, id: crypto.randomUUID(), kind: 'service-status', data, at: new Date().toISOString() });
  const now = new Date().toISOString();
  const machine = (id: string, name: string, site: string) => ({ id, name, site, macs: [], profiles: [], params: {}, facts: {}, bootenv: 'local', state: 'deployed', netboot: false, address: '198.18.0.10', createdAt: now, updatedAt: now });

  beforeEach(async () => {
    store = memoryStore();
    registry = new ServiceRegistry(store);
    await store.put('machines', machine('m1', 'etcd-1', 'dc1'));
    await store.put('machines', machine('m2', 'etcd-2', 'dc1'));
    await registry.register('etcd', { machine: 'etcd-1', port: 2379, tags: [], meta: {}, status: 'critical' } as never, () => '198.18.0.10');
  });
  afterEach(async () => {
    await registry.stop();
    await store.close();
  });

  it('updates a member running on the reporting machine at the agent’s site, and nothing else', async () => {
    const handler = serviceStatusHandler(store, registry, silentLogger);
    const member = registry.get('etcd')!.members[0];
    expect(member.status).toBe('critical');
    // Another machine cannot speak for it; neither can another site's agent.
    await handler({ id: 'a1', site: 'dc1' } as AgentDoc, ev({ service: 'etcd', member: member.id, status: 'passing', machineId: 'm2' }));
    await handler({ id: 'a9', site: 'dc9' } as AgentDoc, ev({ service: 'etcd', member: member.id, status: 'passing', machineId: 'm1' }));
    await handler({ id: 'a1', site: 'dc1' } as AgentDoc, ev({ service: 'etcd', member: member.id, status: 'bogus', machineId: 'm1' }));
    expect(registry.get('etcd')!.members[0].status).toBe('critical');
    await handler({ id: 'a1', site: 'dc1' } as AgentDoc, ev({ service: 'etcd', member: member.id, status: 'passing', machineId: 'm1', note: 'ok' }));
    expect(registry.get('etcd')!.members[0].status).toBe('passing');
  });
});
