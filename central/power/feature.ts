import { POWER_STATE_EVENT } from '../../shared/api/bmc.js';
import type { Machine } from '../../shared/api/resources.js';
import type { CentralFeature } from '../api/feature.js';
import { serviceKey } from '../api/services.js';
import { LIFECYCLE } from '../lifecycle/feature.js';
import { MACHINES } from '../machines/resources.js';
import { TASK_SERVICE } from '../tasks/feature.js';
import { registerPowerRoutes } from './routes.js';
import { PowerService } from './service.js';
import { powerOnForDeploy } from './deploy-power.js';

export const POWER = serviceKey<PowerService>('power');

/**
 * Power (issue 13): power and boot-device tasks through the machine's agent, the readings its agent
 * reports, and a deploy of a machine that is off powers it on into PXE. Listed after lifecycle.
 */
export function powerFeature(): CentralFeature {
  return {
    name: 'power',
    collections: [],
    setup: ({ services }) => {
      const tasks = services.get(TASK_SERVICE);
      const lifecycle = services.get(LIFECYCLE);
      services.provide(POWER, new PowerService({ lifecycle: () => lifecycle, tasks: () => tasks }));
    },
    routes: (app, deps, services) => {
      const power = services.get(POWER);
      registerPowerRoutes(app, deps, () => power);
    },
    attach: ({ deps, services }) => {
      const power = services.get(POWER);
      const offTasks = services.get(TASK_SERVICE).onTaskFinished((t) => power.onTaskFinished(t));
      const offChanges = deps.changes.on((c) => {
        if (c.collection !== MACHINES || c.type === 'delete') return;
        const m = deps.store.get<Machine>(MACHINES, c.id);
        if (m) powerOnForDeploy(power, m, c.before as Machine | undefined).catch((err: Error) => deps.logger.warn({ err: err.message, machine: m.name }, 'could not power the machine on for its deploy'));
      });
      return () => {
        offTasks();
        offChanges();
      };
    },
    eventHandlers: (_deps, services) => ({ [POWER_STATE_EVENT]: (agent, ev) => services.get(POWER).onReadings(agent, ev) }),
  };
}
