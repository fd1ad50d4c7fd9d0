import { MACHINE_OS_EVENT } from '../../shared/api/os-report.js';
import type { ApiDeps } from '../api/deps.js';
import type { EventHandler } from '../agents/hub.js';
import type { CentralFeature } from '../server/serve.js';
import type { TaskService } from '../tasks/service.js';
import { Lifecycle } from './lifecycle.js';
import { deleteEventsOf, MACHINE_EVENT_COLLECTIONS } from './machine-events.js';
import { expireOverdueActionTasks, OVERDUE_SWEEP_MS } from './overdue.js';
import { onDiscovery, onInstallDone, onLease, onMachineOs, onTaskFinished } from './reports.js';
import { registerLifecycleRoutes } from './routes.js';

export interface LifecycleFeatureOptions {
  /** The task service (the agents feature creates it). */
  tasks: () => TaskService | undefined;
  /** Events kept per machine (default 200). */
  eventsPerMachine?: number;
  /** How often overdue deploy and release tasks are expired (ms; default 30 s). */
  overdueSweepMs?: number;
}

export type LifecycleFeature = CentralFeature & {
  /** Agent event handlers that run after the other features' handlers of the same kind (see `after`). */
  eventHandlers: (deps: ApiDeps) => Record<string, EventHandler>;
  lifecycle: () => Lifecycle | undefined;
};

/**
 * The machine lifecycle (issue 12): one state per machine, changed by actions (deploy, release,
 * rescue) and by what its agent reports (task results, discovery, the installed OS's `machine-os`,
 * leases, install-done); every change is an event in `machine-events`.
 */
export function lifecycleFeature(opts: LifecycleFeatureOptions): LifecycleFeature {
  let lc: Lifecycle | undefined;
  const get = (deps: ApiDeps) => (lc ??= new Lifecycle({ store: deps.store, changes: deps.changes, logger: deps.logger, tasks: opts.tasks, eventsPerMachine: opts.eventsPerMachine }));
  return {
    collections: MACHINE_EVENT_COLLECTIONS,
    routes: (app, deps) => registerLifecycleRoutes(app, deps, () => get(deps)),
    attach: ({ deps }) => {
      const lifecycle = get(deps);
      const offTasks = opts.tasks()?.onTaskFinished((t) => onTaskFinished(lifecycle, t));
      const offChanges = deps.changes.on((c) => {
        if (c.collection === 'machines' && c.type === 'delete') {
          deleteEventsOf(deps.store, c.id).catch((err: Error) => deps.logger.warn({ err, machine: c.id }, 'could not drop a deleted machine\'s events'));
        }
      });
      const sweep = setInterval(() => {
        expireOverdueActionTasks(lifecycle).catch((err: Error) => deps.logger.warn({ err }, 'could not expire overdue deploy or release tasks'));
      }, opts.overdueSweepMs ?? OVERDUE_SWEEP_MS);
      sweep.unref();
      return () => {
        clearInterval(sweep);
        offTasks?.();
        offChanges();
      };
    },
    eventHandlers: (deps) => ({
      discovery: (agent, ev) => onDiscovery(get(deps), agent, ev),
      lease: (agent, ev) => onLease(get(deps), agent, ev),
      'install-done': (agent, ev) => onInstallDone(get(deps), agent, ev),
      [MACHINE_OS_EVENT]: (agent, ev) => onMachineOs(get(deps), agent, ev),
    }),
    lifecycle: () => lc,
  };
}

/** Handlers of both maps; where both handle a kind, `first`'s runs before `then`'s. */
export function after(first: Record<string, EventHandler>, then: Record<string, EventHandler>): Record<string, EventHandler> {
  const out = { ...first };
  for (const [kind, h] of Object.entries(then)) {
    const before = first[kind];
    out[kind] = before
      ? async (agent, ev) => {
          await before(agent, ev);
          await h(agent, ev);
        }
      : h;
  }
  return out;
}
