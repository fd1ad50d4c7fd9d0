/** A task's states: queued → delivered → accepted → running → one final state. */
export type TaskState = 'queued' | 'delivered' | 'accepted' | 'running' | 'succeeded' | 'failed' | 'rejected' | 'cancelled' | 'expired';

const FINAL = ['succeeded', 'failed', 'rejected', 'cancelled', 'expired'] as const satisfies readonly TaskState[];
export const TERMINAL: ReadonlySet<TaskState> = new Set<TaskState>(FINAL);

/**
 * Which state a task may move to from which: forward only, never out of a final state. Staying in a
 * state is a move too (a running task's progress reports). Reports that arrive out of order (a
 * `running` after `succeeded`) are kept in the history but do not move the state.
 */
export const TASK_TRANSITIONS: Record<TaskState, readonly TaskState[]> = {
  queued: ['queued', 'delivered', 'accepted', 'running', ...FINAL],
  delivered: ['delivered', 'accepted', 'running', ...FINAL],
  accepted: ['accepted', 'running', ...FINAL],
  running: ['running', ...FINAL],
  succeeded: [],
  failed: [],
  rejected: [],
  cancelled: [],
  expired: [],
};

/** States an operator may still cancel a task in (a running task finishes on its machine). */
export const CANCELLABLE: ReadonlySet<TaskState> = new Set<TaskState>(['queued', 'delivered', 'accepted']);

export function canMove(from: TaskState, to: TaskState): boolean {
  return TASK_TRANSITIONS[from].includes(to);
}
