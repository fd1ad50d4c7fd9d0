import { MACHINE_OS_EVENT } from '../../shared/api/os-report.js';
import type { CentralFeature } from '../api/feature.js';
import { serviceKey } from '../api/services.js';
import { MACHINES } from '../machines/resources.js';
import { TASK_SERVICE } from '../tasks/feature.js';
import { Lifecycle } from './lifecycle.js';
import { deleteEventsOf, MACHINE_EVENT_COLLECTIONS } from './machine-events.js';
import { expireOverdueActionTasks, OVERDUE_SWEEP_MS } from './overdue.js';
import { onDiscovery, onInstallDone, onLease, onMachineOs, onTaskFinished } from './reports.js';
import { registerLifecycleRoutes } from './routes.js';

export interface LifecycleFeatureOptions {
  /** Events kept per machine (default 200). */
  eventsPerMachine?: number;
  /** How often overdue deploy and release tasks are expired (ms; default 30 s). */
  overdueSweepMs?: number;
}

/** The lifecycle service (actions and agent reports), for features and tests that drive machines. */
export const LIFECYCLE = serviceKey<Lifecycle>('lifecycle');

/**
 * The machine lifecycle (issue 12): one state per machine, changed by actions (deploy, release,
 * rescue) and by what its agent reports (task results, discovery, the installed OS's `machine-os`,
 * leases, install-done); every change is an event in `machine-events`. Listed after discovery and boot
 * in central/features.ts: its handlers of an event kind run after theirs (they read what those stored).
 */
export function lifecycleFeature(opts: LifecycleFeatureOptions = {}): CentralFeature {
  return {
    name: 'lifecycle',
    collections: MACHINE_EVENT_COLLECTIONS,
    setup: ({ deps, services }) => {
      const tasks = services.get(TASK_SERVICE);
      services.provide(LIFECYCLE, new Lifecycle({ store: deps.store, changes: deps.changes, logger: deps.logger, tasks: () => tasks, eventsPerMachine: opts.eventsPerMachine }));
    },
    routes: (app, deps, services) => {
      const lifecycle = services.get(LIFECYCLE);
      registerLifecycleRoutes(app, deps, () => lifecycle);
    },
    attach: ({ deps, services }) => {
      const lifecycle = services.get(LIFECYCLE);
      const offTasks = services.get(TASK_SERVICE).onTaskFinished((t) => onTaskFinished(lifecycle, t));
      const offChanges = deps.changes.on((c) => {
        if (c.collection === MACHINES && c.type === 'delete') {
          deleteEventsOf(deps.store, c.id).catch((err: Error) => deps.logger.warn({ err, machine: c.id }, "could not drop a deleted machine's events"));
        }
      });
      const sweep = setInterval(() => {
        // With central replicas on one database, one of them sweeps at a time.
        deps.store.exclusive('lifecycle-overdue', () => expireOverdueActionTasks(lifecycle)).catch((err: Error) => deps.logger.warn({ err }, 'could not expire overdue deploy or release tasks'));
      }, opts.overdueSweepMs ?? OVERDUE_SWEEP_MS);
      sweep.unref();
      return () => {
        clearInterval(sweep);
        offTasks();
        offChanges();
      };
    },
    eventHandlers: (_deps, services) => {
      const lifecycle = () => services.get(LIFECYCLE);
      return {
        discovery: (agent, ev) => onDiscovery(lifecycle(), agent, ev),
        lease: (agent, ev) => onLease(lifecycle(), agent, ev),
        'install-done': (agent, ev) => onInstallDone(lifecycle(), agent, ev),
        [MACHINE_OS_EVENT]: (agent, ev) => onMachineOs(lifecycle(), agent, ev),
      };
    },
  };
}
