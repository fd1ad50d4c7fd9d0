import type { ChangeFeed } from '../store/change-feed.js';
import { TASKS } from './collection.js';
import { TERMINAL, type TaskDoc, type TaskService } from './service.js';

/** The longest a `GET /api/v1/tasks/{id}?wait=…` request waits. */
export const MAX_TASK_WAIT_MS = 60_000;

/**
 * Waiting for a task to finish without polling (`GET /api/v1/tasks/{id}?wait=30s`): the Ansible
 * connection plugin creates a task and waits for its final report in one blocking request each, so an
 * exec round trip costs no polling interval. One task-finished subscription serves every waiter.
 */
export class TaskWaiters {
  private readonly waiting = new Map<string, Set<(t: TaskDoc) => void>>();

  /**
   * `changes`: the store's change feed. With central replicas sharing PostgreSQL the report may be applied
   * on another replica than the one holding the waiting request: its remote change wakes the waiters here
   * (onTaskFinished fires only on the replica that applied the report).
   */
  constructor(
    private readonly tasks: TaskService,
    changes?: ChangeFeed,
  ) {
    tasks.onTaskFinished((t) => this.wake(t));
    changes?.on((c) => {
      if (c.remote && c.collection === TASKS && c.type === 'put' && c.doc && TERMINAL.has((c.doc as TaskDoc).state)) this.wake(c.doc as TaskDoc);
    });
  }

  private wake(t: TaskDoc): void {
    const set = this.waiting.get(t.id);
    if (!set) return;
    this.waiting.delete(t.id);
    for (const wake of set) wake(t);
  }

  /** The task once it is final, or as it stands after `ms`; undefined if there is no such task. */
  async finished(id: string, ms: number): Promise<TaskDoc | undefined> {
    const now = this.tasks.get(id);
    if (!now || TERMINAL.has(now.state) || ms <= 0) return now;
    return new Promise((resolve) => {
      const set = this.waiting.get(id) ?? new Set();
      this.waiting.set(id, set);
      const wake = (t?: TaskDoc) => {
        clearTimeout(timer);
        set.delete(wake);
        if (set.size === 0 && this.waiting.get(id) === set) this.waiting.delete(id);
        resolve(t ?? this.tasks.get(id));
      };
      const timer = setTimeout(() => wake(), Math.min(ms, MAX_TASK_WAIT_MS));
      set.add(wake);
    });
  }

  /** Requests waiting now (for tests and metrics). */
  get size(): number {
    let n = 0;
    for (const s of this.waiting.values()) n += s.size;
    return n;
  }
}
