import { describe, expect, it } from 'vitest';
import { WorkflowCreate } from '../../shared/api/workflows.js';
import { ConflictError } from '../../shared/errors/domain-errors.js';
import { applyEvent, MAX_GOTOS, newRun, nextAction, RUN_TRANSITIONS, STEP_TRANSITIONS, type RunDoc, type RunEvent } from './state-machine.js';

const T = '2026-01-01T00:00:00.000Z';
const wf = (stages: unknown[]) => WorkflowCreate.parse({ name: 'w', stages }).stages;
const run = (stages: unknown[]) => newRun({ id: 'r1', workflow: 'w', definition: wf(stages), machine: 'm1', machineName: 'node-1', site: 'dc1' }, T);
const apply = (r: RunDoc, ...evs: RunEvent[]) => evs.reduce((x, e) => applyEvent(x, e, T), r);
const script = (name: string, extra: Record<string, unknown> = {}) => ({ name, task: 'run-script', payload: { script: 'true' }, ...extra });
const ok: RunEvent[] = [{ type: 'dispatching', deadline: T, taskId: 't' }, { type: 'dispatched' }, { type: 'step-succeeded', output: 'ok' }];
const fail = (reason = 'boom'): RunEvent[] => [{ type: 'dispatching', deadline: T, taskId: 't' }, { type: 'dispatched' }, { type: 'step-failed', reason }];

describe('run state machine', () => {
  it('walks stages and steps in order and succeeds after the last; the input run is never changed', () => {
    let r = run([{ name: 'a', steps: [script('a1'), script('a2')] }, { name: 'b', steps: [script('b1')] }]);
    expect(nextAction(r)).toMatchObject({ kind: 'dispatch', rec: { name: 'a1' } });
    const before = structuredClone(r);
    const next = apply(r, { type: 'dispatching', deadline: T, taskId: 'task-1' });
    expect(r).toEqual(before);
    expect(next.stages[0]!.steps[0]).toMatchObject({ state: 'dispatching', taskId: 'task-1', attempts: 1, taskIds: ['task-1'] });
    expect(nextAction(next).kind).toBe('resume-dispatch');
    r = apply(next, { type: 'dispatched' });
    expect(nextAction(r)).toMatchObject({ kind: 'await', rec: { state: 'running', taskId: 'task-1' } });
    r = apply(r, { type: 'step-succeeded', output: 'hi' });
    expect(nextAction(r)).toMatchObject({ kind: 'dispatch', rec: { name: 'a2' } });
    r = apply(r, ...ok);
    expect([r.stage, r.step]).toEqual([1, 0]);
    r = apply(r, ...ok);
    expect(r.status).toEqual({ state: 'succeeded', at: T });
    expect(nextAction(r).kind).toBe('none');
    expect(() => apply(r, { type: 'cancel', reason: 'x' })).toThrow(ConflictError);
  });

  it('a gate: closed → waiting (what for, since when, kept while unchanged) → open; approval is recorded, then re-evaluated', () => {
    let r = run([{ name: 'join', wait: { service: 'etcd', passing: 3 }, approval: true, steps: [script('s')] }]);
    expect(r.stages[0]!.gate).toEqual({ state: 'closed' });
    expect(nextAction(r).kind).toBe('evaluate-gate');
    r = apply(r, { type: 'gate-waiting', waitingFor: 'service etcd to have 3 passing members' });
    expect(r.status).toEqual({ state: 'waiting', for: 'stage join: service etcd to have 3 passing members', since: T });
    const later = applyEvent(r, { type: 'gate-waiting', waitingFor: 'service etcd to have 3 passing members' }, '2026-01-02T00:00:00.000Z');
    expect(later.stages[0]!.gate).toMatchObject({ since: T });
    expect(nextAction(r).kind).toBe('wait-gate');
    expect(() => apply(r, { type: 'dispatching', deadline: T })).toThrow(ConflictError); // steps never start behind a gate
    r = apply(r, { type: 'approve' });
    expect(r.stages[0]!.gate).toMatchObject({ state: 'waiting', approvedAt: T });
    r = apply(r, { type: 'gate-open' });
    expect(r.status.state).toBe('running');
    expect(nextAction(r)).toMatchObject({ kind: 'dispatch' });
  });

  it('approve is refused where no approval gate waits', () => {
    const r = run([{ name: 'a', wait: { param: 'x' }, steps: [script('s')] }]);
    expect(() => apply(r, { type: 'approve' })).toThrow(/not waiting for an approval/);
  });

  it('retries a failed step while it has retries left, then stops the run with the reason', () => {
    let r = run([{ name: 'a', steps: [script('s', { retries: 2 })] }]);
    r = apply(r, ...fail('one'));
    expect(r.stages[0]!.steps[0]).toMatchObject({ state: 'pending', attempts: 1, lastError: 'one' });
    r = apply(r, ...fail('two'), { type: 'dispatching', deadline: T, taskId: 't3' }, { type: 'dispatched' }, { type: 'step-failed', reason: 'three' });
    expect(r.stages[0]!.steps[0]).toMatchObject({ state: 'failed', attempts: 3, reason: 'three', taskIds: ['t', 't', 't3'] });
    expect(r.status).toMatchObject({ state: 'failed', reason: 'stage a, step s: three' });
  });

  it('onFailure continue goes on with the next step; goto jumps back, keeping the old records in history, and stops after MAX_GOTOS', () => {
    let r = run([{ name: 'a', steps: [script('s1', { onFailure: 'continue' }), script('s2')] }]);
    r = apply(r, ...fail());
    expect(r.stages[0]!.steps[0]!.state).toBe('failed');
    expect(nextAction(r)).toMatchObject({ kind: 'dispatch', rec: { name: 's2' } });

    r = run([{ name: 'burn', steps: [script('load')] }, { name: 'check', steps: [script('verify', { onFailure: 'goto burn' })] }]);
    r = apply(r, ...ok, ...fail('hot'));
    expect([r.stage, r.step, r.gotos]).toEqual([0, 0, 1]);
    expect(r.stages[1]!.steps[0]!.state).toBe('pending');
    expect(r.history.map((h) => `${h.stage}/${h.name}:${h.state}`)).toEqual(['burn/load:succeeded', 'check/verify:failed']);
    for (let i = 1; i < MAX_GOTOS; i++) r = apply(r, ...ok, ...fail('hot'));
    expect(r.status.state).toBe('running');
    r = apply(r, ...ok, ...fail('hot'));
    expect(r.status).toMatchObject({ state: 'failed', reason: expect.stringContaining(`more than ${MAX_GOTOS} jumps`) });
    expect(r.history.length).toBeLessThanOrEqual(200);
  });

  it('retry restarts a failed run at its failed step; cancel ends a waiting run; terminal runs refuse events', () => {
    let r = run([{ name: 'a', steps: [script('s1'), script('s2')] }]);
    r = apply(r, ...ok, ...fail());
    expect(r.status.state).toBe('failed');
    r = apply(r, { type: 'retry' });
    expect(r.status.state).toBe('running');
    expect(nextAction(r)).toMatchObject({ kind: 'dispatch', rec: { name: 's2', attempts: 0 } });
    expect(() => apply(r, { type: 'retry' })).toThrow(/only a failed run can be retried/);
    let w = run([{ name: 'a', approval: true, steps: [] }]);
    w = apply(w, { type: 'gate-waiting', waitingFor: 'approval' }, { type: 'cancel', reason: 'no' });
    expect(w.status).toEqual({ state: 'cancelled', at: T, reason: 'no' });
    expect(() => apply(w, { type: 'gate-open' })).toThrow(ConflictError);
  });

  it('a step cannot succeed before it was dispatched, nor run twice', () => {
    const r = run([{ name: 'a', steps: [script('s')] }]);
    expect(() => apply(r, { type: 'step-succeeded' })).toThrow(/pending: it cannot become succeeded/);
    const running = apply(r, { type: 'dispatching', deadline: T, taskId: 't' }, { type: 'dispatched' });
    expect(() => apply(running, { type: 'dispatching', deadline: T, taskId: 't2' })).toThrow(/running: it cannot become dispatching/);
  });

  it('empty stages are passed over; the transition tables name every state', () => {
    const r0 = run([{ name: 'a', steps: [] }, { name: 'b', approval: true, steps: [] }]);
    expect([r0.stage, r0.stages[1]!.gate.state]).toEqual([1, 'closed']);
    const r = apply(r0, { type: 'gate-waiting', waitingFor: 'x' }, { type: 'approve' }, { type: 'gate-open' });
    expect(r.status.state).toBe('succeeded');
    expect(Object.keys(RUN_TRANSITIONS).sort()).toEqual(['cancelled', 'failed', 'running', 'succeeded', 'waiting']);
    expect(Object.keys(STEP_TRANSITIONS).sort()).toEqual(['dispatching', 'failed', 'pending', 'running', 'skipped', 'succeeded']);
  });
});
