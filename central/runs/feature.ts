import type { CentralFeature } from '../api/feature.js';
import { serviceKey } from '../api/services.js';
import { LIFECYCLE } from '../lifecycle/feature.js';
import { SERVICE_REGISTRY } from '../services/feature.js';
import { TASK_SERVICE } from '../tasks/feature.js';
import { RunEngine } from './engine.js';
import { runsCollection } from './resources.js';
import { registerRunRoutes } from './routes.js';

/** The run engine, for features and tests that start or follow runs. */
export const RUN_ENGINE = serviceKey<RunEngine>('run-engine');

/**
 * Workflow runs (issue 14): `/api/v1/runs`, `POST /machines/{ref}/workflow`, and the engine that drives
 * them on task results, store changes and operator approvals. Listed after tasks, services and the
 * lifecycle (it uses all three). At attach it resumes every unfinished run.
 */
export function runsFeature(): CentralFeature {
  return {
    name: 'runs',
    collections: [runsCollection],
    setup: ({ deps, services }) => {
      services.provide(RUN_ENGINE, new RunEngine({ store: deps.store, changes: deps.changes, logger: deps.logger, tasks: services.get(TASK_SERVICE), registry: services.get(SERVICE_REGISTRY), lifecycle: services.get(LIFECYCLE) }));
    },
    routes: (app, deps, services) => registerRunRoutes(app, deps, services.get(RUN_ENGINE)),
    attach: ({ deps, services }) => {
      const engine = services.get(RUN_ENGINE);
      const offTasks = services.get(TASK_SERVICE).onTaskFinished((t) => engine.onTaskFinished(t));
      const offChanges = deps.changes.on((c) => engine.onChange(c));
      engine.resumeAll();
      return async () => {
        offTasks();
        offChanges();
        // Drives already under way end at their next step: let them, before the store closes under them.
        await engine.shutdown();
      };
    },
  };
}
