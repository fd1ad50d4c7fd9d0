import { agentsFeature } from './agents/feature.js';
import { artifactsFeature, artifactStateContributor } from './artifacts/feature.js';
import { ARTIFACTS } from './artifacts/routes.js';
import { inventoryFeature } from './ansible/feature.js';
import { bootFeature, bootStateContributor, BOOT_STATE_COLLECTIONS } from './boot/feature.js';
import { leaseEventHandler } from './boot/leases.js';
import { discoveryHandlers } from './discovery/events.js';
import { servicesFeature } from './services/feature.js';
import { serviceStatusHandler } from './services/agent-events.js';
import type { CentralFeature } from './server/serve.js';
import type { RetentionPolicy } from './tasks/retention.js';

/** The features a production central runs with. */
export async function defaultFeatures(opts: { retention?: RetentionPolicy } = {}): Promise<CentralFeature[]> {
  return [
    bootFeature(),
    artifactsFeature(),
    agentsFeature({
      contributors: [bootStateContributor, artifactStateContributor],
      stateCollections: [...BOOT_STATE_COLLECTIONS, ARTIFACTS],
      retention: opts.retention,
      eventHandlers: (deps) => ({ ...discoveryHandlers(deps.store, deps.changes, deps.logger), lease: leaseEventHandler(deps.store, deps.logger, deps.changes), 'service-status': serviceStatusHandler(deps, deps.logger) }),
    }),
    inventoryFeature(),
    servicesFeature(),
  ];
}
