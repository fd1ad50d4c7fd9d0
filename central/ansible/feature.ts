import type { CentralFeature } from '../api/feature.js';
import { groupRulesCollection } from './group-rules.js';
import { registerAnsibleRoutes } from './routes.js';

/**
 * The Ansible dynamic inventory: `/api/v1/inventory` (+ `/hosts/{name}`) and group rules at
 * `/api/v1/group-rules`. The default group-name prefix comes from UNDERLAY_INVENTORY_PREFIX.
 */
export function ansibleFeature(opts: { defaultPrefix?: string } = {}): CentralFeature {
  const defaultPrefix = opts.defaultPrefix ?? process.env.UNDERLAY_INVENTORY_PREFIX ?? '';
  return {
    name: 'ansible',
    collections: [groupRulesCollection],
    routes: (app, deps) => {
      registerAnsibleRoutes(app, deps, { defaultPrefix });
    },
  };
}
