import { randomUUID } from 'node:crypto';
import type { Machine } from '../../shared/api/resources.js';
import type { Stage, Workflow } from '../../shared/api/workflows.js';
import { ConflictError, DomainError, NotFoundError } from '../../shared/errors/domain-errors.js';
import type { Logger } from '../../shared/log/logger.js';
import { parseDuration } from '../../shared/util/duration.js';
import { deploy, release } from '../lifecycle/actions.js';
import { bestAddress } from '../lifecycle/addresses.js';
import type { Lifecycle } from '../lifecycle/lifecycle.js';
import { MACHINES } from '../machines/resources.js';
import type { ServiceRegistry } from '../services/registry.js';
import type { Change, ChangeFeed } from '../store/change-feed.js';
import type { Store } from '../store/types.js';
import { TERMINAL, type TaskDoc, type TaskService } from '../tasks/service.js';
import { evaluateGate, type GateContext } from './gates.js';
import { renderPayload } from './render.js';
import { RUNS } from './resources.js';
import { stepScope } from './scope.js';
import { applyEvent, newRun, nextAction, TERMINAL_RUN, type RunDoc, type RunEvent, type StepRec } from './state-machine.js';
import { planStep, type StepPlan } from './steps.js';
import { WaitingGates } from './waiting-gates.js';

export interface RunEngineOptions {
  store: Store;
  changes: ChangeFeed;
  logger: Logger;
  tasks: TaskService;
  registry: ServiceRegistry;
  lifecycle: Lifecycle;
  now?: () => number;
}

/** Output kept per step (the tail of the task's output). */
const MAX_OUTPUT = 4096;

/**
 * Drives runs (central/runs/state-machine.ts): one run at a time per run id, each recorded change
 * committed before the engine acts on it. Wakes on events only: a task finishing (TaskService
 * onTaskFinished), a store change (machines for deploy and release steps and machine/param gates, the
 * service registry's documents for service gates), an operator's continue, a step's deadline. After a
 * restart `resumeAll` picks every unfinished run up where its record says it is.
 */
export class RunEngine {
  private readonly queues = new Map<string, Promise<unknown>>();
  /** Run waiting on a task, by task id (and the way back). */
  private readonly byTask = new Map<string, string>();
  private readonly taskOfRun = new Map<string, string>();
  /** Runs whose current step is a deploy or release, by machine id. */
  private readonly byMachine = new Map<string, string>();
  /** Runs waiting at a gate, indexed by what the gate watches. */
  private readonly waiting: WaitingGates;
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private stopped = false;
  /** Gate evaluations of runs' drives (for the benchmark and metrics); `waiting.checks` counts those on changes. */
  private driveEvaluations = 0;

  constructor(private readonly o: RunEngineOptions) {
    this.waiting = new WaitingGates(o.store);
  }

  /** Gates evaluated so far: once per distinct wait a change concerns, once per run's drive at a gate. */
  get gateEvaluations(): number {
    return this.driveEvaluations + this.waiting.checks;
  }

  private now(): string {
    return new Date(this.o.now?.() ?? Date.now()).toISOString();
  }

  get(id: string): RunDoc | undefined {
    return this.o.store.get<RunDoc>(RUNS, id);
  }

  private starting: Promise<unknown> = Promise.resolve();

  /** Starts one run per machine in one durable commit, then drives each. Starts are serialized: two racing for a machine, one wins. */
  start(workflow: Workflow, machines: Machine[]): Promise<RunDoc[]> {
    const run = this.starting.then(() => this.startNow(workflow, machines));
    this.starting = run.catch(() => undefined);
    return run;
  }

  private async startNow(workflow: Workflow, machines: Machine[]): Promise<RunDoc[]> {
    const now = this.now();
    const busy = machines.filter((m) => this.o.store.list<RunDoc>(RUNS, { where: { machine: m.id } }).items.some((r) => !TERMINAL_RUN.has(r.status.state)));
    if (busy.length > 0) {
      throw new ConflictError(`${busy.map((m) => m.name).slice(0, 10).join(', ')}${busy.length > 10 ? ' …' : ''} already run a workflow (cancel it first)`, [{ path: 'machines', message: `${busy.length} busy` }]);
    }
    const runs = machines.map((m) => newRun({ id: randomUUID(), workflow: workflow.name, definition: workflow.stages, machine: m.id, machineName: m.name, site: m.site }, now));
    await this.o.store.commit(runs.map((doc) => ({ type: 'put' as const, collection: RUNS, doc })));
    for (const r of runs) this.kick(r.id);
    return runs;
  }

  /** Picks up every unfinished run (at start). */
  resumeAll(): void {
    for (const r of this.o.store.list<RunDoc>(RUNS).items) if (!TERMINAL_RUN.has(r.status.state)) this.kick(r.id);
  }

  /** Approves the current stage's gate (`underlay runs continue`). */
  async approve(id: string): Promise<RunDoc> {
    return this.exclusive(id, async () => {
      await this.record(this.must(id), { type: 'approve' });
      await this.drive(id);
      return this.must(id);
    });
  }

  async cancel(id: string, reason = 'cancelled by operator'): Promise<RunDoc> {
    return this.exclusive(id, async () => {
      const run = this.must(id);
      const step = run.stages[run.stage]?.steps[run.step];
      const next = await this.record(run, { type: 'cancel', reason });
      this.forget(id);
      // A task not yet running is withdrawn; one already running finishes on its machine, ignored by the run.
      if (step && (step.state === 'running' || step.state === 'dispatching') && step.taskId) {
        await this.o.tasks.cancel(step.taskId).catch(() => undefined);
      }
      return next;
    });
  }

  /** Retries a failed run from its failed step. */
  async retry(id: string): Promise<RunDoc> {
    return this.exclusive(id, async () => {
      await this.record(this.must(id), { type: 'retry' });
      await this.drive(id);
      return this.must(id);
    });
  }

  /** A task reached a final state (the task service calls this after the state is durable). */
  onTaskFinished(t: TaskDoc): void {
    const id = this.byTask.get(t.id);
    if (id) this.kick(id);
  }

  /** A store change: wakes the runs it may concern. */
  onChange(c: Change): void {
    if (this.stopped) return;
    if (c.collection === MACHINES) {
      const id = this.byMachine.get(c.id);
      if (id) this.kick(id);
    }
    for (const id of this.waiting.concerned(c)) this.kick(id);
  }

  stop(): void {
    this.stopped = true;
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
  }

  /** Stops waking runs and lets the drives under way end at their next step; resolves when none is left (before the store closes). */
  async shutdown(): Promise<void> {
    this.stop();
    await this.idle();
  }

  /** Settles when every queued drive finished (tests, shutdown). */
  async idle(): Promise<void> {
    while (this.queues.size > 0) await Promise.all([...this.queues.values()]);
  }

  // ---- internals

  private must(id: string): RunDoc {
    const r = this.get(id);
    if (!r) throw new NotFoundError(`run "${id}" not found`);
    return r;
  }

  private exclusive<T>(id: string, fn: () => Promise<T>): Promise<T> {
    const run = (this.queues.get(id) ?? Promise.resolve()).then(fn);
    const tail = run.then(
      () => undefined,
      () => undefined,
    );
    this.queues.set(id, tail);
    void tail.then(() => {
      if (this.queues.get(id) === tail) this.queues.delete(id);
    });
    return run;
  }

  private kick(id: string): void {
    if (this.stopped) return;
    this.exclusive(id, () => this.drive(id)).catch((err: Error) => this.o.logger.error({ err, run: id }, 'workflow run: drive failed'));
  }

  private forget(id: string): void {
    this.waiting.remove(id);
    const task = this.taskOfRun.get(id);
    if (task !== undefined) this.byTask.delete(task);
    this.taskOfRun.delete(id);
    const run = this.get(id);
    if (run && this.byMachine.get(run.machine) === id) this.byMachine.delete(run.machine);
    const t = this.timers.get(id);
    if (t) clearTimeout(t);
    this.timers.delete(id);
  }

  /** Commits the run after `ev` (durable before anything acts on it). */
  private async record(run: RunDoc, ev: RunEvent): Promise<RunDoc> {
    const next = applyEvent(run, ev, this.now());
    await this.o.store.put(RUNS, next);
    if (TERMINAL_RUN.has(next.status.state)) {
      this.forget(next.id);
      this.o.logger.info({ run: next.id, workflow: next.workflow, machine: next.machineName, state: next.status.state }, 'workflow run finished');
    }
    return next;
  }

  /** Steps the run until it has to wait for something (a task, a machine, a gate). */
  private async drive(id: string): Promise<void> {
    for (let guard = 0; guard < 10_000 && !this.stopped; guard++) {
      const run = this.get(id);
      if (!run) return;
      const act = nextAction(run);
      this.forget(id);
      switch (act.kind) {
        case 'none':
          return;
        case 'evaluate-gate':
        case 'wait-gate': {
          this.driveEvaluations++;
          const ctx: GateContext = { store: this.o.store };
          const g = evaluateGate(ctx, act.stage, run.stages[run.stage]!.gate, run.machine);
          if (g.open) {
            await this.record(run, { type: 'gate-open' });
            continue;
          }
          const gate = run.stages[run.stage]!.gate;
          if (gate.state !== 'waiting' || gate.waitingFor !== g.waitingFor) await this.record(run, { type: 'gate-waiting', waitingFor: g.waitingFor });
          this.waiting.add(id, run.machine, act.stage.wait && g.waitingFor.startsWith('an approval') ? undefined : act.stage.wait);
          return;
        }
        case 'dispatch': {
          const waitFor = await this.dispatch(run, act.step, act.rec);
          if (waitFor) return;
          continue;
        }
        case 'resume-dispatch': {
          if (await this.resumeDispatch(run, act.step)) return;
          continue;
        }
        case 'await': {
          if (await this.follow(run, act.step, act.rec)) return;
          continue;
        }
      }
    }
  }

  private stageOf(run: RunDoc): Stage {
    return run.definition[run.stage]!;
  }

  private plan(run: RunDoc, step: Stage['steps'][number], rec: StepRec): StepPlan {
    const m = this.o.store.get<Machine>(MACHINES, run.machine);
    if (!m) throw new NotFoundError(`machine ${run.machineName} is gone`);
    const scope = stepScope(this.o.store, m, { id: run.id, workflow: run.workflow, stage: this.stageOf(run).name, step: rec.name, attempt: rec.attempts + 1 });
    return planStep(step, renderPayload('task' in step ? step.payload : step.with, scope), m.name);
  }

  /**
   * Starts the current step: records `dispatching` (with the task id it is about to sign), then signs the
   * task or fires the action, then records `running`. Returns true when the run now waits.
   */
  private async dispatch(run: RunDoc, step: Stage['steps'][number], rec: StepRec): Promise<boolean> {
    let plan: StepPlan;
    try {
      plan = this.plan(run, step, rec);
    } catch (e) {
      if (!(e instanceof DomainError)) throw e;
      await this.record(applyEvent(run, { type: 'dispatching', deadline: this.now() }, this.now()), { type: 'step-failed', reason: e.message });
      return false;
    }
    const deadline = new Date(Date.parse(this.now()) + parseDuration(step.timeout)).toISOString();
    const taskId = plan.via === 'task' || plan.via === 'register-service' ? randomUUID() : undefined;
    const dispatching = await this.record(run, { type: 'dispatching', deadline, ...(taskId ? { taskId } : {}) });
    return this.carryOut(dispatching, step, plan, taskId);
  }

  /** Signs the step's task or fires its action (the `dispatching` record is durable), then records `running`. */
  private async carryOut(run: RunDoc, step: Stage['steps'][number], plan: StepPlan, taskId: string | undefined): Promise<boolean> {
    try {
      let adopted = taskId;
      switch (plan.via) {
        case 'task':
          if (!this.o.tasks.get(taskId!)) await this.o.tasks.create({ id: taskId, site: run.site, machine: run.machine, kind: plan.kind, payload: plan.payload, ttl: taskTtl(step.timeout) });
          break;
        case 'register-service': {
          const m = this.o.store.get<Machine>(MACHINES, run.machine);
          await this.o.registry.register(plan.service, { id: plan.member, machine: run.machineName, port: plan.port, ttl: plan.ttl, tags: plan.tags, meta: { run: run.id }, status: 'critical' }, () => (m ? bestAddress(m) : null));
          if (!this.o.tasks.get(taskId!)) await this.o.tasks.create({ id: taskId, site: run.site, machine: run.machine, kind: 'run-script', payload: { scriptB64: Buffer.from(plan.script).toString('base64') }, ttl: taskTtl(step.timeout) });
          break;
        }
        case 'deploy':
          adopted = (await deploy(this.o.lifecycle, run.machine, { ...plan.request, params: {} } as never, { tokenId: `run:${run.id}` })).task?.id;
          break;
        case 'release':
          adopted = (await release(this.o.lifecycle, run.machine, { powerOff: false, ...plan.request }, { tokenId: `run:${run.id}` })).task?.id;
          break;
      }
      const running = await this.record(run, { type: 'dispatched', ...(adopted ? { taskId: adopted } : {}) });
      return this.follow(running, step, running.stages[running.stage]!.steps[running.step] as StepRec & { state: 'running' });
    } catch (e) {
      if (!(e instanceof DomainError)) throw e;
      await this.record(run, { type: 'step-failed', reason: e.message });
      return false;
    }
  }

  /**
   * A step found `dispatching` after a restart: its task may or may not exist. A task step looks its
   * recorded task id up (signing it only if it never was); a deploy or release adopts the task the
   * machine's record names when that deployment started after the dispatch, else fires again.
   */
  private async resumeDispatch(run: RunDoc, step: Stage['steps'][number]): Promise<boolean> {
    const rec = run.stages[run.stage]!.steps[run.step] as StepRec & { state: 'dispatching' };
    if (rec.taskId && this.o.tasks.get(rec.taskId)) return this.follow(await this.record(run, { type: 'dispatched' }), step, rec as never);
    if (!rec.taskId && 'action' in step && (step.action === 'deploy' || step.action === 'release')) {
      const m = this.o.store.get<Machine>(MACHINES, run.machine);
      const d = m?.deployment as { action?: string; taskId?: string; startedAt?: string } | undefined;
      if (d?.action === step.action && d.taskId && d.startedAt && d.startedAt >= rec.since) {
        const running = await this.record(run, { type: 'dispatched', taskId: d.taskId });
        return this.follow(running, step, running.stages[running.stage]!.steps[running.step] as never);
      }
    }
    let plan: StepPlan;
    try {
      plan = this.plan(run, step, rec);
    } catch (e) {
      if (!(e instanceof DomainError)) throw e;
      await this.record(run, { type: 'step-failed', reason: e.message });
      return false;
    }
    return this.carryOut(run, step, plan, rec.taskId);
  }

  /** Follows a running step: finished → record it (false: go on); else index it and wait (true). */
  private async follow(run: RunDoc, step: Stage['steps'][number], rec: StepRec & { state: 'running' }): Promise<boolean> {
    const isMachineAction = 'action' in step && (step.action === 'deploy' || step.action === 'release');
    if (Date.parse(rec.deadline) <= Date.parse(this.now())) {
      if (rec.taskId) await this.o.tasks.cancel(rec.taskId).catch(() => undefined);
      await this.record(run, { type: 'step-failed', reason: `timed out after ${step.timeout}` });
      return false;
    }
    if (isMachineAction) {
      const m = this.o.store.get<Machine>(MACHINES, run.machine);
      const want = step.action === 'deploy' ? 'deployed' : 'ready';
      if (!m) {
        await this.record(run, { type: 'step-failed', reason: 'the machine was deleted' });
        return false;
      }
      if (m.state === want) {
        await this.record(run, { type: 'step-succeeded' });
        return false;
      }
      if (m.state === 'failed') {
        await this.record(run, { type: 'step-failed', reason: m.stateReason ?? `${step.action} failed` });
        return false;
      }
      this.byMachine.set(run.machine, run.id);
    } else if (rec.taskId) {
      const t = this.o.tasks.get(rec.taskId);
      if (!t) {
        await this.record(run, { type: 'step-failed', reason: `task ${rec.taskId} is gone` });
        return false;
      }
      if (TERMINAL.has(t.state)) {
        if (t.state === 'succeeded') await this.record(run, { type: 'step-succeeded', ...(t.output ? { output: t.output.slice(-MAX_OUTPUT) } : {}) });
        else await this.record(run, { type: 'step-failed', reason: `task ${t.kind} ${t.state}${t.reason ? `: ${t.reason}` : ''}${t.exitCode !== undefined ? ` (exit ${t.exitCode})` : ''}` });
        return false;
      }
      this.byTask.set(rec.taskId, run.id);
      this.taskOfRun.set(run.id, rec.taskId);
    }
    const ms = Math.min(Date.parse(rec.deadline) - Date.parse(this.now()), 2 ** 31 - 1);
    const timer = setTimeout(() => this.kick(run.id), Math.max(ms, 0) + 5);
    timer.unref();
    this.timers.set(run.id, timer);
    return true;
  }
}

/** A step's task lives as long as the step may take (tasks live at least 1 s). */
function taskTtl(timeout: string): string {
  return `${Math.max(1, Math.ceil(parseDuration(timeout) / 1000))}s`;
}
