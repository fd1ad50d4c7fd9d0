import type { CentralFeature } from '../api/feature.js';
import { secretParamNames } from '../params/sealing.js';
import { installAudit } from './audit.js';
import { registerEventRoutes } from './routes.js';

/**
 * The event stream (issue 19): the agents' events (stored by the agents feature in `events`) and the
 * audit record of every API write, in the same collection, listed and watched at GET /api/v1/events and
 * pruned with finished tasks (central/tasks/retention.ts).
 */
export function eventsFeature(): CentralFeature {
  return {
    name: 'events',
    setup: ({ deps }) => installAudit(deps.store, () => secretParamNames(deps.store)),
    routes: (app, deps) => registerEventRoutes(app, deps),
  };
}
