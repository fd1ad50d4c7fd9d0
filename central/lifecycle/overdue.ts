import { MACHINES } from '../machines/resources.js';
import type { Machine } from '../../shared/api/resources.js';
import type { Lifecycle } from './lifecycle.js';

/** How often the lifecycle looks for action tasks that expired while their agent was away. */
export const OVERDUE_SWEEP_MS = 30_000;

/**
 * A deploy or release task expires only when its agent asks for work (TaskService.pendingFor). While the
 * agent stays away, a deploying or releasing machine would wait forever: this asks the task service to
 * expire the overdue tasks of those machines' agents, which fails the machines through the task-finished
 * hook ("image-deploy task expired: …"). Returns how many machines had an overdue task.
 */
export async function expireOverdueActionTasks(lc: Lifecycle, now = Date.now()): Promise<number> {
  const tasks = lc.opts.tasks();
  if (!tasks) return 0;
  const agents = new Set<string>();
  let overdue = 0;
  for (const state of ['deploying', 'releasing'] as const) {
    for (const m of lc.store.list<Machine>(MACHINES, { where: { state } }).items) {
      const t = m.deployment?.taskId ? tasks.get(m.deployment.taskId) : undefined;
      if (t && (t.state === 'queued' || t.state === 'delivered') && Date.parse(t.expiresAt) <= now) {
        agents.add(t.agent);
        overdue++;
      }
    }
  }
  for (const agent of agents) await tasks.pendingFor(agent);
  return overdue;
}
