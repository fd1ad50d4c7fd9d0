import type { CentralFeature } from '../api/feature.js';
import { discoveryHandlers } from './events.js';

/** Machines found by their site agent: `discovery` and `install-done` events create and update machines. */
export function discoveryFeature(): CentralFeature {
  return {
    name: 'discovery',
    eventHandlers: (deps) => discoveryHandlers(deps.store, deps.logger),
  };
}
