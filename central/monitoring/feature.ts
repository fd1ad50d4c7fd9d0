import { AGENT_HUB } from '../agents/feature.js';
import type { CentralFeature } from '../api/feature.js';
import { registerFleetMetrics } from './fleet-metrics.js';

/** Fleet gauges on the central's /metrics (issue 19): tasks, runs, machines and agents per site, joins. */
export function monitoringFeature(): CentralFeature {
  return {
    name: 'monitoring',
    attach: ({ deps, services }) => {
      const hub = services.get(AGENT_HUB);
      return registerFleetMetrics(deps.metrics.registry, deps.store, deps.changes, () => [...hub.sessions.values()].map((s) => s.agent));
    },
  };
}
