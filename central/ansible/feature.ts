import type { CentralFeature } from '../api/feature.js';
import { groupRulesCollection } from './group-rules.js';
import { prepareTailsInBackground } from './host-tail.js';
import { registerAnsibleRoutes, sourceFromStore } from './routes.js';

/**
 * The Ansible dynamic inventory: `/api/v1/inventory` (+ `/hosts/{name}`) and group rules at
 * `/api/v1/group-rules`. The default group-name prefix comes from UNDERLAY_INVENTORY_PREFIX.
 * After a start it prepares every machine's hostvars tail in the background (host-tail.ts).
 */
export function ansibleFeature(opts: { defaultPrefix?: string } = {}): CentralFeature {
  const defaultPrefix = opts.defaultPrefix ?? process.env.UNDERLAY_INVENTORY_PREFIX ?? '';
  return {
    name: 'ansible',
    collections: [groupRulesCollection],
    routes: (app, deps) => {
      registerAnsibleRoutes(app, deps, { defaultPrefix });
    },
    // After a start, every machine's hostvars tail is made in the background (host-tail.ts), so the
    // first inventory render copies bytes instead of serialising every host's facts (issue 21).
    attach: ({ deps }) => {
      const machines = sourceFromStore(deps.store).machines;
      return prepareTailsInBackground(machines, (made, cpuMs) => deps.logger.info({ machines: made, cpuMs: Math.round(cpuMs) }, 'inventory host tails prepared'));
    },
  };
}
