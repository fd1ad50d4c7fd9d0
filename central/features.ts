import { agentsFeature } from './agents/feature.js';
import { artifactsFeature, artifactStateContributor } from './artifacts/feature.js';
import { ARTIFACTS } from './artifacts/routes.js';
import { inventoryFeature } from './ansible/feature.js';
import { bootFeature, bootStateContributor, BOOT_STATE_COLLECTIONS } from './boot/feature.js';
import { leaseEventHandler } from './boot/leases.js';
import { discoveryHandlers } from './discovery/events.js';
import { after, lifecycleFeature } from './lifecycle/feature.js';
import { servicesFeature } from './services/feature.js';
import { serviceStatusHandler } from './services/agent-events.js';
import type { CentralFeature } from './server/serve.js';
import type { RetentionPolicy } from './tasks/retention.js';

/** The features a production central runs with. */
export async function defaultFeatures(opts: { retention?: RetentionPolicy } = {}): Promise<CentralFeature[]> {
  // The lifecycle reads what the other handlers stored (a discovered machine, a lease), so its handlers run after theirs.
  const lifecycle = lifecycleFeature({ tasks: () => agents.tasks() });
  const agents = agentsFeature({
    contributors: [bootStateContributor, artifactStateContributor],
    stateCollections: [...BOOT_STATE_COLLECTIONS, ARTIFACTS],
    retention: opts.retention,
    eventHandlers: (deps) =>
      after(
        { ...discoveryHandlers(deps.store, deps.changes, deps.logger), lease: leaseEventHandler(deps.store, deps.logger, deps.changes), 'service-status': serviceStatusHandler(deps, deps.logger) },
        lifecycle.eventHandlers(deps),
      ),
  });
  return [bootFeature(), artifactsFeature(), agents, lifecycle, inventoryFeature(), servicesFeature()];
}
