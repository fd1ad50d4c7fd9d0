import type { Stage, Step } from '../../shared/api/workflows.js';
import { ConflictError } from '../../shared/errors/domain-errors.js';

/**
 * A workflow run as an explicit state machine (pure: no store, no clock but the `now` passed in). The
 * engine (central/runs/engine.ts) asks `nextAction` what to do, does it, and records what happened with
 * `applyEvent`; every recorded change is committed before the engine acts on it (a step's task id is in
 * the store before the task is signed), so a restarted central resumes exactly where the run was.
 */

/** A stage's gate: none, not reached yet, waiting (what for, since when), or open. */
export type GateRec =
  | { state: 'none' }
  | { state: 'closed'; approvedAt?: string }
  | { state: 'waiting'; waitingFor: string; since: string; approvedAt?: string }
  | { state: 'open'; at: string };

/** One step's state. `dispatching`: committed before its task or action starts; `running`: its task is signed. */
export type StepState =
  | { state: 'pending' }
  | { state: 'dispatching'; since: string; deadline: string; taskId?: string }
  | { state: 'running'; since: string; deadline: string; taskId?: string }
  | { state: 'succeeded'; at: string; output?: string }
  | { state: 'failed'; at: string; reason: string }
  | { state: 'skipped'; at: string };

export type StepRec = StepState & {
  name: string;
  /** Attempts started (1 after the first dispatch). */
  attempts: number;
  /** Every task this step signed, oldest first. */
  taskIds: string[];
  startedAt?: string;
  finishedAt?: string;
  /** Why the last attempt failed (kept when a retry starts). */
  lastError?: string;
};

export interface StageRec {
  name: string;
  gate: GateRec;
  steps: StepRec[];
}

export type RunStatus =
  | { state: 'running' }
  | { state: 'waiting'; for: string; since: string }
  | { state: 'succeeded'; at: string }
  | { state: 'failed'; at: string; reason: string }
  | { state: 'cancelled'; at: string; reason: string };
export type RunState = RunStatus['state'];

export interface RunDoc {
  [key: string]: unknown;
  id: string;
  workflow: string;
  /** The workflow's stages as they were when the run started (an update does not change a running run). */
  definition: Stage[];
  machine: string;
  machineName: string;
  site: string;
  status: RunStatus;
  /** Cursor: the current stage and step (stage === stages.length once every stage is done). */
  stage: number;
  step: number;
  stages: StageRec[];
  /** `goto` jumps taken (bounded: a loop that never ends fails the run). */
  gotos: number;
  /** Step records of stages left by a goto, oldest first (bounded). */
  history: (StepRec & { stage: string })[];
  createdAt: string;
  updatedAt: string;
}

export const MAX_GOTOS = 100;
const MAX_HISTORY = 200;
export const TERMINAL_RUN: ReadonlySet<RunState> = new Set(['succeeded', 'failed', 'cancelled']);

/** Run transitions: which status may follow which. One table; `applyEvent` refuses anything else. */
export const RUN_TRANSITIONS: Record<RunState, readonly RunState[]> = {
  running: ['running', 'waiting', 'succeeded', 'failed', 'cancelled'],
  waiting: ['running', 'waiting', 'cancelled', 'failed'],
  failed: ['running'], // operator retry
  succeeded: [],
  cancelled: [],
};

/** Step transitions (pending → dispatching → running → succeeded | failed; a failed attempt may start again). */
export const STEP_TRANSITIONS: Record<StepState['state'], readonly StepState['state'][]> = {
  pending: ['dispatching', 'skipped'],
  dispatching: ['running', 'succeeded', 'failed', 'pending'],
  running: ['succeeded', 'failed', 'pending'],
  failed: ['pending'], // retry (automatic or by the operator)
  succeeded: [],
  skipped: [],
};

export type RunEvent =
  | { type: 'gate-waiting'; waitingFor: string }
  | { type: 'gate-open' }
  | { type: 'approve' }
  | { type: 'dispatching'; deadline: string; taskId?: string }
  | { type: 'dispatched'; taskId?: string }
  | { type: 'step-succeeded'; output?: string }
  | { type: 'step-failed'; reason: string }
  | { type: 'cancel'; reason: string }
  | { type: 'retry' };

/** What the engine should do next for a run. */
export type NextAction =
  | { kind: 'none' }
  | { kind: 'evaluate-gate'; stage: Stage }
  | { kind: 'wait-gate'; stage: Stage }
  | { kind: 'dispatch'; step: Step; rec: StepRec }
  | { kind: 'resume-dispatch'; step: Step; rec: StepRec & { state: 'dispatching' } }
  | { kind: 'await'; step: Step; rec: StepRec & { state: 'running' } };

export function stepName(step: Step, i: number): string {
  return step.name ?? `${i + 1}-${'task' in step ? step.task : step.action}`;
}

function freshStage(s: Stage): StageRec {
  return { name: s.name, gate: s.wait || s.approval ? { state: 'closed' } : { state: 'none' }, steps: s.steps.map((st, i) => ({ name: stepName(st, i), state: 'pending', attempts: 0, taskIds: [] })) };
}

/** A new run of `definition` for one machine. */
export function newRun(input: { id: string; workflow: string; definition: Stage[]; machine: string; machineName: string; site: string }, now: string): RunDoc {
  const run: RunDoc = { ...input, status: { state: 'running' }, stage: 0, step: 0, stages: input.definition.map(freshStage), gotos: 0, history: [], createdAt: now, updatedAt: now };
  settle(run, now); // past leading empty stages
  return run;
}

export function nextAction(run: RunDoc): NextAction {
  if (TERMINAL_RUN.has(run.status.state) || run.stage >= run.stages.length) return { kind: 'none' };
  const stage = run.definition[run.stage]!;
  const rec = run.stages[run.stage]!;
  if (rec.gate.state === 'closed') return { kind: 'evaluate-gate', stage };
  if (rec.gate.state === 'waiting') return { kind: 'wait-gate', stage };
  const step = stage.steps[run.step];
  const srec = rec.steps[run.step];
  if (!step || !srec) return { kind: 'none' }; // an empty stage: applyEvent moved past it already
  switch (srec.state) {
    case 'pending':
      return { kind: 'dispatch', step, rec: srec };
    case 'dispatching':
      return { kind: 'resume-dispatch', step, rec: srec };
    case 'running':
      return { kind: 'await', step, rec: srec };
    default:
      return { kind: 'none' };
  }
}

function setStatus(run: RunDoc, status: RunStatus): void {
  if (!RUN_TRANSITIONS[run.status.state].includes(status.state)) throw new ConflictError(`run ${run.id} is ${run.status.state}: it cannot become ${status.state}`, [{ path: 'status', message: `is ${run.status.state}` }]);
  run.status = status;
}

function setStep(run: RunDoc, next: StepState, extra: Partial<StepRec> = {}): void {
  const steps = run.stages[run.stage]!.steps;
  const cur = steps[run.step]!;
  if (!STEP_TRANSITIONS[cur.state].includes(next.state)) throw new ConflictError(`step "${cur.name}" of run ${run.id} is ${cur.state}: it cannot become ${next.state}`, [{ path: 'step', message: `is ${cur.state}` }]);
  const { name, attempts, taskIds, startedAt, finishedAt, lastError } = cur;
  steps[run.step] = { name, attempts, taskIds, ...(startedAt ? { startedAt } : {}), ...(finishedAt ? { finishedAt } : {}), ...(lastError ? { lastError } : {}), ...next, ...extra } as StepRec;
}

/** Moves the cursor past finished steps and empty or finished stages; the run succeeds after the last. */
function settle(run: RunDoc, now: string): void {
  for (;;) {
    if (run.stage >= run.stages.length) {
      setStatus(run, { state: 'succeeded', at: now });
      return;
    }
    const rec = run.stages[run.stage]!;
    if (rec.gate.state === 'closed' || rec.gate.state === 'waiting') return;
    const s = rec.steps[run.step];
    if (s && (s.state === 'pending' || s.state === 'dispatching' || s.state === 'running' || s.state === 'failed')) return;
    if (s) {
      run.step++;
      continue;
    }
    run.stage++;
    run.step = 0;
  }
}

function jump(run: RunDoc, target: string, now: string): void {
  const to = run.definition.findIndex((s) => s.name === target);
  if (to < 0) throw new ConflictError(`goto: no stage named "${target}"`);
  if (run.gotos >= MAX_GOTOS) {
    setStatus(run, { state: 'failed', at: now, reason: `goto ${target}: more than ${MAX_GOTOS} jumps (a loop that never ends?)` });
    return;
  }
  for (let i = to; i <= run.stage && i < run.stages.length; i++) {
    for (const s of run.stages[i]!.steps) if (s.state !== 'pending') run.history.push({ ...s, stage: run.stages[i]!.name });
    run.stages[i] = freshStage(run.definition[i]!);
  }
  if (run.history.length > MAX_HISTORY) run.history = run.history.slice(-MAX_HISTORY);
  run.gotos++;
  run.stage = to;
  run.step = 0;
}

/**
 * The run after one event (a copy; the input is untouched). Illegal events throw ConflictError. A failed
 * step is retried while it has retries left, else its `onFailure` decides: stop (the run fails),
 * continue (the next step), or goto STAGE.
 */
export function applyEvent(input: RunDoc, ev: RunEvent, now: string): RunDoc {
  const run: RunDoc = structuredClone(input);
  run.updatedAt = now;
  const terminalError = () => new ConflictError(`run ${run.id} is ${run.status.state}`, [{ path: 'status', message: `is ${run.status.state}` }]);
  if (TERMINAL_RUN.has(run.status.state) && ev.type !== 'retry') throw terminalError();
  const stageRec = run.stages[run.stage];
  switch (ev.type) {
    case 'gate-waiting': {
      if (!stageRec || (stageRec.gate.state !== 'closed' && stageRec.gate.state !== 'waiting')) throw new ConflictError(`run ${run.id}: no gate to wait on`);
      const since = stageRec.gate.state === 'waiting' && stageRec.gate.waitingFor === ev.waitingFor ? stageRec.gate.since : now;
      stageRec.gate = { state: 'waiting', waitingFor: ev.waitingFor, since, ...(stageRec.gate.approvedAt ? { approvedAt: stageRec.gate.approvedAt } : {}) };
      setStatus(run, { state: 'waiting', for: `stage ${stageRec.name}: ${ev.waitingFor}`, since });
      return run;
    }
    case 'gate-open': {
      if (!stageRec || (stageRec.gate.state !== 'closed' && stageRec.gate.state !== 'waiting')) throw new ConflictError(`run ${run.id}: no gate to open`);
      stageRec.gate = { state: 'open', at: now };
      setStatus(run, { state: 'running' });
      settle(run, now);
      return run;
    }
    case 'approve': {
      if (!stageRec || (stageRec.gate.state !== 'closed' && stageRec.gate.state !== 'waiting') || !run.definition[run.stage]!.approval) {
        throw new ConflictError(`run ${run.id} is not waiting for an approval`, [{ path: 'status', message: 'no approval pending' }]);
      }
      // Recorded on the gate; the engine re-evaluates it (a `wait` in the same stage must hold too).
      stageRec.gate = { ...stageRec.gate, approvedAt: now };
      return run;
    }
    case 'dispatching': {
      if (!stageRec || (stageRec.gate.state !== 'none' && stageRec.gate.state !== 'open')) throw new ConflictError(`run ${run.id}: stage ${stageRec?.name ?? '?'} has not passed its gate`);
      const cur = stageRec.steps[run.step]!;
      setStep(run, { state: 'dispatching', since: now, deadline: ev.deadline, ...(ev.taskId ? { taskId: ev.taskId } : {}) }, {
        attempts: cur.attempts + 1,
        taskIds: ev.taskId ? [...cur.taskIds, ev.taskId] : cur.taskIds,
        startedAt: cur.startedAt ?? now,
      });
      return run;
    }
    case 'dispatched': {
      const cur = stageRec!.steps[run.step]!;
      if (cur.state !== 'dispatching') throw new ConflictError(`step "${cur.name}" is ${cur.state}, not dispatching`);
      const taskId = ev.taskId ?? cur.taskId;
      setStep(run, { state: 'running', since: cur.since, deadline: cur.deadline, ...(taskId ? { taskId } : {}) }, { taskIds: taskId && !cur.taskIds.includes(taskId) ? [...cur.taskIds, taskId] : cur.taskIds });
      return run;
    }
    case 'step-succeeded': {
      setStep(run, { state: 'succeeded', at: now, ...(ev.output !== undefined ? { output: ev.output } : {}) }, { finishedAt: now });
      settle(run, now);
      return run;
    }
    case 'step-failed': {
      const step = run.definition[run.stage]!.steps[run.step]!;
      const cur = stageRec!.steps[run.step]!;
      if (cur.attempts <= step.retries) {
        setStep(run, { state: 'pending' }, { lastError: ev.reason });
        return run;
      }
      setStep(run, { state: 'failed', at: now, reason: ev.reason }, { finishedAt: now, lastError: ev.reason });
      if (step.onFailure === 'stop') setStatus(run, { state: 'failed', at: now, reason: `stage ${stageRec!.name}, step ${cur.name}: ${ev.reason}` });
      else if (step.onFailure === 'continue') {
        run.step++;
        settle(run, now);
      } else {
        jump(run, step.onFailure.slice('goto '.length), now);
        if (run.status.state !== 'failed') settle(run, now);
      }
      return run;
    }
    case 'cancel': {
      setStatus(run, { state: 'cancelled', at: now, reason: ev.reason });
      return run;
    }
    case 'retry': {
      if (run.status.state !== 'failed') throw new ConflictError(`run ${run.id} is ${run.status.state}: only a failed run can be retried`, [{ path: 'status', message: `is ${run.status.state}` }]);
      setStatus(run, { state: 'running' });
      const cur = run.stages[run.stage]?.steps[run.step];
      if (cur?.state === 'failed') setStep(run, { state: 'pending' }, { attempts: 0 });
      settle(run, now);
      return run;
    }
  }
}
