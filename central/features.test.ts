import { chainHandlers } from './agents/feature.js';
import { describe, expect, it } from 'vitest';
import { AGENT_HUB } from './agents/feature.js';
import { TASK_QUEUE } from './agents/task-queue.js';
import { agentsFeature } from './agents/feature.js';
import { createApp } from './api/app.js';
import type { ApiDeps } from './api/deps.js';
import { centralFeatures } from './features.js';
import { Services } from './api/services.js';
import { SERVICE_REGISTRY } from './services/feature.js';
import type { ServiceRegistry } from './services/registry.js';
import { tasksFeature } from './tasks/feature.js';
import { memoryApiDeps } from './all-collections.test-support.js';

describe('central/features.ts: every feature listed once', () => {
  const features = centralFeatures();

  it('has every resource as a feature, each once, and every collection owned by exactly one feature', () => {
    const names = features.map((f) => f.name);
    expect(new Set(names).size).toBe(names.length);
    for (const noun of ['sites', 'profiles', 'params', 'machines', 'tokens', 'boot', 'artifacts', 'tasks', 'agents', 'discovery', 'ansible', 'services']) expect(names).toContain(noun);
    const collections = features.flatMap((f) => (f.collections ?? []).map((c) => c.name));
    expect(new Set(collections).size).toBe(collections.length);
    for (const c of ['sites', 'profiles', 'params', 'machines', 'tokens', 'tasks', 'agents', 'events', 'leases', 'artifacts', 'services', 'group-rules']) expect(collections).toContain(c);
  });

  it('the core inventory reaches the agents: sites, profiles, params and machines contribute desired state and name their collections', () => {
    const byName = new Map(features.map((f) => [f.name, f]));
    for (const noun of ['sites', 'profiles', 'params', 'machines']) {
      expect(byName.get(noun)!.stateContributors?.length, noun).toBeGreaterThan(0);
      expect(byName.get(noun)!.stateCollections, noun).toContain(noun);
    }
  });

  it('agent events are handled by the features that own them', () => {
    const services = new Services();
    services.provide(SERVICE_REGISTRY, {} as ServiceRegistry); // handlers are only built here, not called
    const byFeature = Object.fromEntries(features.flatMap((f) => (f.eventHandlers ? [[f.name, Object.keys(f.eventHandlers({} as ApiDeps, services)).sort()]] : [])));
    expect(byFeature).toEqual({
      boot: ['lease'],
      services: ['service-status'],
      'service-pki': ['machine-csr'],
      discovery: ['discovery', 'install-done', 'render-error'],
      // Listed after discovery and boot: its handlers of a kind run after theirs (chainHandlers).
      lifecycle: ['discovery', 'install-done', 'lease', 'machine-os'],
      power: ['power-state'],
    });
    const names = features.map((f) => f.name);
    expect(names.indexOf('lifecycle')).toBeGreaterThan(names.indexOf('discovery'));
    expect(names.indexOf('lifecycle')).toBeGreaterThan(names.indexOf('boot'));
  });

  it('chains the handlers of one event kind in list order, each awaited before the next', async () => {
    const seen: string[] = [];
    const h = (tag: string, ms: number) => async () => {
      await new Promise((r) => setTimeout(r, ms));
      seen.push(tag);
    };
    const chained = chainHandlers([{ discovery: h('discovery', 20) }, { lease: h('lease', 0) }, { discovery: h('lifecycle', 0) }]);
    await chained.discovery!({ id: 'a', site: 's' }, {} as never);
    await chained.lease!({ id: 'a', site: 's' }, {} as never);
    expect(seen).toEqual(['discovery', 'lifecycle', 'lease']);
  });

  it('the production list sets up and registers every route with real dependencies (the wiring order is right)', async () => {
    const deps = await memoryApiDeps();
    const services = new Services();
    const app = createApp(deps, { features: centralFeatures(), services });
    for (const key of [TASK_QUEUE, AGENT_HUB, SERVICE_REGISTRY]) expect(services.has(key), key.name).toBe(true);
    const doc = (await (await app.request('/api/v1/openapi.json')).json()) as { paths: Record<string, unknown> };
    for (const path of ['/api/v1/sites', '/api/v1/profiles', '/api/v1/params', '/api/v1/machines', '/api/v1/tokens', '/api/v1/tasks', '/api/v1/agents', '/api/v1/services', '/api/v1/inventory', '/api/v1/subnets', '/api/v1/artifacts']) expect(Object.keys(doc.paths), path).toContain(path);
  });

  it('a feature listed before the one providing what it needs fails the start with a clear message', () => {
    const deps = { logger: console, metrics: {}, identity: { signing: { privateKey: new Uint8Array(64) } } } as unknown as ApiDeps;
    expect(() => createApp(deps, { features: [agentsFeature(), tasksFeature()] })).toThrow('service "task-queue" is not provided');
  });
});
