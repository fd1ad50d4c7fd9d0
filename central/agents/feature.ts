import type { CentralFeature, EventHandler } from '../api/feature.js';
import { serviceKey } from '../api/services.js';
import { failureSink } from '../metrics/metrics.js';
import { AgentCertRenewal } from './cert-renewal.js';
import { AGENT_COLLECTIONS } from './collections.js';
import { AgentHub } from './hub.js';
import { registerAgentRoutes } from './routes.js';
import { TASK_QUEUE } from './task-queue.js';

/** The agent hub, for features that talk to connected agents. */
export const AGENT_HUB = serviceKey<AgentHub>('agent-hub');

/**
 * Agents (join, mTLS WebSocket hub, revocation, certificate renewal). Needs the task queue (TASK_QUEUE:
 * the tasks feature, listed before it); builds each site's desired state from every feature's state
 * contributors and dispatches agent events to every feature's event handlers.
 */
export function agentsFeature(): CentralFeature {
  return {
    name: 'agents',
    collections: AGENT_COLLECTIONS,
    setup: ({ deps, services, features }) => {
      const tasks = services.get(TASK_QUEUE);
      const eventHandlers = chainHandlers(features.map((f) => f.eventHandlers?.(deps, services) ?? {}));
      const certRenewal = new AgentCertRenewal({ store: deps.store, ca: deps.identity.ca, lifetimeMs: deps.central.agentCertLifetimeMs, logger: deps.logger });
      const hub = new AgentHub({
        store: deps.store,
        changes: deps.changes,
        tasks,
        logger: deps.logger,
        contributors: features.flatMap((f) => f.stateContributors ?? []),
        stateCollections: features.flatMap((f) => f.stateCollections ?? []),
        eventHandlers,
        certRenewal,
        onFailure: failureSink(deps.logger, deps.metrics),
      });
      services.provide(AGENT_HUB, hub);
    },
    routes: (app, deps, services) => {
      const hub = services.get(AGENT_HUB);
      registerAgentRoutes(app, deps, () => hub);
    },
    attach: ({ server, services }) => services.get(AGENT_HUB).attach(server),
  };
}

/** One handler per event kind: where several features handle a kind, theirs run one after another in list order. */
export function chainHandlers(maps: Record<string, EventHandler>[]): Record<string, EventHandler> {
  const byKind = new Map<string, EventHandler[]>();
  for (const m of maps) for (const [kind, h] of Object.entries(m)) byKind.set(kind, [...(byKind.get(kind) ?? []), h]);
  return Object.fromEntries(
    [...byKind].map(([kind, hs]) => [
      kind,
      hs.length === 1
        ? hs[0]
        : async (agent: Parameters<EventHandler>[0], ev: Parameters<EventHandler>[1]) => {
            for (const h of hs) await h(agent, ev);
          },
    ]),
  );
}
