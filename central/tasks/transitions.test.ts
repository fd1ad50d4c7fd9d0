import { describe, expect, it } from 'vitest';
import { CANCELLABLE, canMove, TASK_TRANSITIONS, TERMINAL, type TaskState } from './transitions.js';

const ALL: TaskState[] = ['queued', 'delivered', 'accepted', 'running', 'succeeded', 'failed', 'rejected', 'cancelled', 'expired'];

describe('task state transitions', () => {
  it('move forward only, stay put for progress, and never leave a final state', () => {
    expect(canMove('queued', 'running')).toBe(true);
    expect(canMove('running', 'running')).toBe(true);
    expect(canMove('running', 'succeeded')).toBe(true);
    expect(canMove('running', 'accepted')).toBe(false);
    expect(canMove('accepted', 'delivered')).toBe(false);
    for (const f of TERMINAL) for (const to of ALL) expect(canMove(f, to)).toBe(false);
    for (const from of ALL) if (!TERMINAL.has(from)) for (const f of TERMINAL) expect(canMove(from, f)).toBe(true);
    expect(Object.keys(TASK_TRANSITIONS).sort()).toEqual([...ALL].sort());
  });
  it('an operator cancels only what has not started running', () => {
    expect([...CANCELLABLE]).toEqual(['queued', 'delivered', 'accepted']);
  });
});
