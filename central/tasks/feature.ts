import type { CentralFeature } from '../api/feature.js';
import { TASK_QUEUE } from '../agents/task-queue.js';
import { serviceKey } from '../api/services.js';
import { tasksCollection } from './collection.js';
import { DEFAULT_RETENTION, parseRetention, RetentionPruner, type RetentionPolicy } from './retention.js';
import { registerTaskRoutes } from './routes.js';
import { TaskService, type TaskDoc } from './service.js';
import type { Change } from '../store/change-feed.js';
import { TASKS } from './collection.js';

export interface TasksFeatureOptions {
  /** How long finished tasks and agent events are kept (central/tasks/retention.ts); default 7 days, 100,000 each. */
  retention?: RetentionPolicy;
}

/** The task service (create, cancel, report bookkeeping), for features that queue tasks. */
export const TASK_SERVICE = serviceKey<TaskService>('task-service');
const PRUNER = serviceKey<RetentionPruner>('task-retention');

/** Signed tasks: `/api/v1/tasks`, their bookkeeping and retention. Provides TASK_QUEUE to the agents feature (listed after it). */
export function tasksFeature(opts: TasksFeatureOptions = {}): CentralFeature {
  return {
    name: 'tasks',
    collections: [tasksCollection],
    setup: ({ deps, services }) => {
      const tasks = new TaskService(deps.store, deps.identity.signing.privateKey, deps.logger);
      services.provide(TASK_SERVICE, tasks);
      services.provide(TASK_QUEUE, tasks);
      services.provide(PRUNER, new RetentionPruner(deps.store, opts.retention ?? parseRetention(DEFAULT_RETENTION.age, DEFAULT_RETENTION.max), deps.logger));
    },
    routes: (app, deps, services) => registerTaskRoutes(app, deps, services.get(TASK_SERVICE)),
    attach: ({ deps, services }) => {
      const pruner = services.get(PRUNER);
      pruner.start();
      const offRemote = deps.changes.on((c) => deliverRemoteTask(services.get(TASK_SERVICE), c));
      return async () => {
        offRemote();
        await pruner.stop();
        await services.get(TASK_SERVICE).flushDeliveries(); // pending `delivered` marks (see TaskService.markDeliveredMany); runs after the hub stopped
      };
    },
  };
}

/**
 * A task another central replica created or cancelled reaches the agent through this replica when the
 * agent is connected here (the creating replica hands its own tasks over directly): exactly one replica
 * holds the agent's link, so the task goes out once.
 */
export function deliverRemoteTask(tasks: TaskService, c: Change): void {
  if (!c.remote || c.collection !== TASKS || c.type !== 'put' || !c.doc) return;
  const t = c.doc as TaskDoc;
  const before = c.before as TaskDoc | undefined;
  if ((!before && t.state === 'queued') || (t.state === 'cancelled' && before?.state !== 'cancelled')) tasks.onTask?.(t);
}
