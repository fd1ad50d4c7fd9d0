import type { CentralFeature } from '../server/serve.js';
import { groupRulesCollection } from './group-rules.js';
import { registerInventoryRoutes } from './routes.js';

/**
 * The Ansible dynamic inventory: `/api/v1/inventory` (+ `/hosts/{name}`) and group rules at
 * `/api/v1/group-rules`. The default group-name prefix comes from UNDERLAY_INVENTORY_PREFIX.
 */
export function inventoryFeature(opts: { defaultPrefix?: string } = {}): CentralFeature {
  const defaultPrefix = opts.defaultPrefix ?? process.env.UNDERLAY_INVENTORY_PREFIX ?? '';
  return {
    collections: [groupRulesCollection],
    routes: (app, deps) => {
      registerInventoryRoutes(app, deps, { defaultPrefix });
    },
  };
}
