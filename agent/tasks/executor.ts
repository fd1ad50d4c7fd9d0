import { randomUUID } from 'node:crypto';
import { checkEnvelope, openTask, type RejectReason, type SignedTask, type TaskEnvelope } from '../../shared/envelope/envelope.js';
import type { Logger } from '../../shared/log/logger.js';
import type { ReportState } from '../../shared/protocol/messages.js';
import type { TaskProgress } from '../../shared/protocol/task-progress.js';
import { type AgentTaskKind, isTaskKind, TASK_KINDS, type TaskKind } from '../../shared/protocol/task-kinds.js';
import type { BmcAccess } from '../bmc/connect.js';
import type { KindHandler, KindOutcome } from './kinds/handler.js';
import { AGENT_KIND_HANDLERS } from './kinds/index.js';
import type { Outbox } from '../link/outbox.js';
import type { DesiredStateCache } from '../state/desired-state-cache.js';
import type { RecordLog } from '../state/record-log.js';
import type { MachineQueue } from './machine-queue.js';
import type { TaskLog, TaskRecord } from './task-log.js';

export interface ExecutorDeps {
  me: { agent: string; site: string };
  signingPublicKey: Uint8Array;
  taskLog: TaskLog;
  outbox: Outbox;
  machineQueue: MachineQueue;
  desiredState: DesiredStateCache;
  rejections: RecordLog<{ at: string; reason: RejectReason; detail: string; id?: string; seq?: number }>;
  requestState: () => void;
  /** Sends an event to the central through the durable outbox (handlers report what they read). */
  emitEvent: (kind: string, data: unknown) => Promise<void>;
  /** The site's BMCs (power and boot-device tasks). */
  bmc?: BmcAccess;
  logger: Logger;
}

/**
 * Verifies and runs tasks. Order of checks: signature (over the exact bytes) → addressee → expiry →
 * kind → sequence (replay). A task is recorded as accepted on disk before anything runs, so neither a
 * redelivery nor a replay after a restart runs it twice. Every outcome is reported through the
 * durable outbox; every rejection is also recorded locally with its reason.
 */
export class TaskExecutor {
  private chain: Promise<void> = Promise.resolve();

  constructor(private readonly d: ExecutorDeps) {}

  /** Tasks are handled one at a time in arrival order (sequence checks depend on it). */
  handle(signed: unknown): Promise<void> {
    const run = this.chain.then(() => this.process(signed));
    this.chain = run.catch(() => undefined);
    return run;
  }

  async report(taskId: string, state: ReportState, extra: { reason?: string; output?: string; exitCode?: number; progress?: TaskProgress } = {}): Promise<void> {
    await this.d.outbox.add({ type: 'report', id: randomUUID(), taskId, state, ...extra, at: new Date().toISOString() });
  }

  private async reject(reason: RejectReason, detail: string, env?: Partial<TaskEnvelope>): Promise<void> {
    this.d.logger.warn({ reason, detail, task: env?.id, seq: env?.seq }, 'rejected a task');
    await this.d.rejections.append({ at: new Date().toISOString(), reason, detail, ...(env?.id ? { id: env.id } : {}), ...(env?.seq ? { seq: env.seq } : {}) });
    // A task that names us (its id parsed) gets a rejected report; the central ignores ids it never issued.
    if (env?.id) await this.report(env.id, 'rejected', { reason, output: detail });
    // Also in the central's event stream (`underlay events list --kind task-rejected`), also when no id parsed.
    await this.d
      .emitEvent('task-rejected', { reason, detail: detail.slice(0, 1024), ...(env?.id ? { taskId: env.id } : {}), ...(env?.kind ? { taskKind: env.kind } : {}), ...(env?.machine ? { machineId: env.machine } : {}), ...(env?.seq ? { seq: env.seq } : {}) })
      .catch((e: Error) => this.d.logger.warn({ err: e.message }, 'could not queue a task-rejected event'));
  }

  private async process(signed: unknown): Promise<void> {
    const opened = openTask(signed, this.d.signingPublicKey);
    if (!opened.ok) return this.reject(opened.reason, opened.detail, opened.id ? { id: opened.id } : undefined);
    const env = opened.envelope;
    const addressed = checkEnvelope(env, this.d.me);
    if (!addressed.ok) return this.reject(addressed.reason, addressed.detail, env);
    if (!isTaskKind(env.kind)) return this.reject('unknown-kind', `this agent does not know task kind "${env.kind}"`, env);

    const known = this.d.taskLog.get(env.id);
    if (known) {
      // Redelivery (at-least-once): answer with what we know, never run again.
      this.d.logger.debug({ task: env.id, state: known.state }, 'duplicate delivery of a known task');
      if (known.state !== 'accepted' && known.state !== 'running') await this.report(env.id, known.state === 'cancelled' ? 'failed' : known.state, { reason: 'duplicate-delivery' });
      return;
    }
    if (env.seq <= this.d.taskLog.lastSeq) return this.reject('replay', `sequence ${env.seq} is not above the last seen ${this.d.taskLog.lastSeq}`, env);

    const payload = TASK_KINDS[env.kind].payload.safeParse(env.payload);
    const rec: TaskRecord = { id: env.id, seq: env.seq, kind: env.kind, machine: env.machine, state: 'accepted', at: new Date().toISOString() };
    if (!payload.success) {
      await this.d.taskLog.record({ ...rec, state: 'rejected' });
      return this.reject('malformed', `payload: ${payload.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`, env);
    }
    await this.d.taskLog.record(rec);
    await this.report(env.id, 'accepted');
    await this.execute(env, rec, signed as SignedTask);
  }

  private async finish(rec: TaskRecord, state: 'succeeded' | 'failed', extra: { output?: string; exitCode?: number; reason?: string } = {}): Promise<void> {
    await this.d.taskLog.record({ ...rec, state, at: new Date().toISOString() });
    await this.report(rec.id, state, extra);
  }

  private async execute(env: TaskEnvelope, rec: TaskRecord, signed: SignedTask): Promise<void> {
    const kind = env.kind as TaskKind;
    if (TASK_KINDS[kind].target === 'machine') {
      // Machine-runner kinds: queued for the machine, which verifies the signature itself.
      await this.d.machineQueue.add({ id: env.id, machine: env.machine!, kind: env.kind, signed: { canonical: signed.canonical, signature: signed.signature }, expiresAt: env.expiresAt });
      return;
    }
    const handler = AGENT_KIND_HANDLERS[kind as AgentTaskKind] as KindHandler<AgentTaskKind>;
    const payload = TASK_KINDS[kind].payload.parse(env.payload) as never;
    const ctx = { desiredState: this.d.desiredState, requestState: this.d.requestState, ...(this.d.bmc ? { bmc: this.d.bmc } : {}), emitEvent: this.d.emitEvent, logger: this.d.logger };
    const outcome = await handler(env, payload, ctx).catch((e: Error): KindOutcome => ({ state: 'failed', reason: 'handler-error', output: e.message }));
    return this.finish(rec, outcome.state, { ...(outcome.output !== undefined ? { output: outcome.output } : {}), ...(outcome.reason ? { reason: outcome.reason } : {}) });
  }

  async cancel(taskId: string): Promise<void> {
    const rec = this.d.taskLog.get(taskId);
    const queued = this.d.machineQueue.get(taskId);
    if (queued) await this.d.machineQueue.done(taskId);
    if (rec && (rec.state === 'accepted' || rec.state === 'running')) await this.d.taskLog.record({ ...rec, state: 'cancelled', at: new Date().toISOString() });
  }
}
