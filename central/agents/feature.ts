import type { CentralFeature } from '../server/serve.js';
import type { ApiDeps } from '../api/deps.js';
import { DEFAULT_RETENTION, parseRetention, RetentionPruner, type RetentionPolicy } from '../tasks/retention.js';
import { TaskService } from '../tasks/service.js';
import { registerTaskRoutes } from '../tasks/routes.js';
import { AGENT_COLLECTIONS } from './collections.js';
import type { StateContributor } from './desired-state.js';
import { AgentHub, type EventHandler } from './hub.js';
import { registerAgentRoutes } from './routes.js';
import { AgentCertRenewal } from './cert-renewal.js';
import { failureSink } from '../metrics/metrics.js';

export interface AgentsFeatureOptions {
  contributors?: StateContributor[];
  stateCollections?: string[];
  eventHandlers?: (deps: ApiDeps) => Record<string, EventHandler>;
  /** How long finished tasks and agent events are kept (central/tasks/retention.ts); default 7 days, 100,000 each. */
  retention?: RetentionPolicy;
}

/** Agents (join, mTLS WebSocket hub, revocation) and signed tasks. */
export function agentsFeature(opts: AgentsFeatureOptions = {}): CentralFeature & { hub: () => AgentHub | undefined; tasks: () => TaskService | undefined } {
  let hub: AgentHub | undefined;
  let tasks: TaskService | undefined;
  let pruner: RetentionPruner | undefined;
  return {
    collections: AGENT_COLLECTIONS,
    routes: (app, deps) => {
      tasks = new TaskService(deps.store, deps.changes, deps.identity.signing.privateKey, deps.logger);
      const certRenewal = new AgentCertRenewal({ store: deps.store, changes: deps.changes, ca: deps.identity.ca, lifetimeMs: deps.central.agentCertLifetimeMs, logger: deps.logger });
      hub = new AgentHub({ store: deps.store, changes: deps.changes, tasks, logger: deps.logger, contributors: opts.contributors, stateCollections: opts.stateCollections, eventHandlers: opts.eventHandlers?.(deps), certRenewal, onFailure: failureSink(deps.logger, deps.metrics) });
      registerAgentRoutes(app, deps, () => hub);
      registerTaskRoutes(app, deps, tasks);
      pruner = new RetentionPruner(deps.store, opts.retention ?? parseRetention(DEFAULT_RETENTION.age, DEFAULT_RETENTION.max), deps.logger);
    },
    attach: ({ server }) => {
      const detach = hub!.attach(server);
      pruner!.start();
      return async () => {
        await pruner!.stop();
        await detach();
        await tasks!.flushDeliveries(); // pending `delivered` marks (see TaskService.markDeliveredMany)
      };
    },
    hub: () => hub,
    tasks: () => tasks,
  };
}
