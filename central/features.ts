import { agentsFeature } from './agents/feature.js';
import { ansibleFeature } from './ansible/feature.js';
import type { CentralFeature } from './api/feature.js';
import { artifactsFeature } from './artifacts/feature.js';
import { backupFeature } from './backup/feature.js';
import { bootFeature } from './boot/feature.js';
import { discoveryFeature } from './discovery/feature.js';
import { eventsFeature } from './events/feature.js';
import { machinesFeature } from './machines/feature.js';
import { monitoringFeature } from './monitoring/feature.js';
import { machinesOfProfile, machinesOfSite, machinesParamHolder } from './machines/resources.js';
import { paramsFeature } from './params/feature.js';
import { profilesFeature } from './profiles/feature.js';
import { profilesParamHolder } from './profiles/resources.js';
import { lifecycleFeature } from './lifecycle/feature.js';
import { SERVICE_REGISTRY, servicesFeature } from './services/feature.js';
import { servicePkiFeature } from './service-pki/feature.js';
import { powerFeature } from './power/feature.js';

import { sitesFeature } from './sites/feature.js';
import { sitesParamHolder } from './sites/resources.js';
import { tasksFeature } from './tasks/feature.js';
import type { RetentionPolicy } from './tasks/retention.js';
import { tokensFeature } from './tokens/feature.js';
import { runsFeature } from './runs/feature.js';
import { workflowsFeature } from './workflows/feature.js';
import { uiFeature } from './ui/feature.js';

export interface FeatureOptions {
  /** How long finished tasks and agent events are kept. */
  retention?: RetentionPolicy;
}

/**
 * Every feature of the central, listed once, in the order they are set up (a feature that provides a
 * service comes before the ones that use it: tasks and services before agents, whose setup gathers
 * every feature's event handlers). Routes are registered in this order; where several features handle one
 * agent event kind, their handlers run in this order (the lifecycle reads what discovery and leases stored).
 */
export function centralFeatures(opts: FeatureOptions = {}): CentralFeature[] {
  return [
    // First: its setup makes every API write's commits carry their audit record.
    eventsFeature(),
    sitesFeature({ referrers: [machinesOfSite] }),
    profilesFeature({ referrers: [machinesOfProfile] }),
    paramsFeature({ holders: [machinesParamHolder, sitesParamHolder, profilesParamHolder] }),
    machinesFeature(),
    tokensFeature(),
    bootFeature(),
    artifactsFeature(),
    tasksFeature({ retention: opts.retention }),
    servicesFeature(),
    servicePkiFeature({ membership: (services) => ({ isMember: (service, machine) => !!services.get(SERVICE_REGISTRY).get(service)?.members.some((m) => m.machine === machine) }) }),
    agentsFeature(),
    discoveryFeature(),
    lifecycleFeature(),
    workflowsFeature(),
    runsFeature(),
    powerFeature(),

    ansibleFeature(),
    backupFeature(),
    monitoringFeature(),
    uiFeature(),
  ];
}
