import type { TaskProgress } from '../../shared/protocol/task-progress.js';
import { randomUUID } from 'node:crypto';
import { checkSigningKey } from '../../shared/envelope/ed25519.js';
import { signTask, type SignedTask, type TaskEnvelope } from '../../shared/envelope/envelope.js';
import type { Logger } from '../../shared/log/logger.js';
import type { ReportMsg } from '../../shared/protocol/messages.js';
import { isTaskKind, TASK_KINDS } from '../../shared/protocol/task-kinds.js';
import { parseDuration } from '../../shared/util/duration.js';
import { ConflictError, DomainError, InvalidError, NotFoundError } from '../../shared/errors/domain-errors.js';
import { MACHINES } from '../machines/resources.js';
import { SITES } from '../sites/resources.js';
import type { Doc, Store, WriteOp } from '../store/types.js';
import { retryStale } from '../store/stale-write.js';
import { AGENTS, type AgentDoc } from '../agents/collections.js';
import { TASKS } from './collection.js';
import { TASK_EFFECTS } from './effects.js';
import { CANCELLABLE, canMove, TERMINAL, type TaskState } from './transitions.js';
import { slimmed } from './slim.js';

export { TERMINAL, type TaskState };

/** A task's time to live when the create names none (`ttl`, the duration grammar). */
const DEFAULT_TTL_MS = parseDuration('1h');

export interface TaskHistoryEntry {
  state: TaskState;
  at: string;
  reportId?: string;
  reason?: string;
  exitCode?: number;
}

export interface TaskDoc {
  [key: string]: unknown;
  id: string;
  site: string;
  agent: string;
  machine: string | null;
  kind: string;
  payload: unknown;
  seq: number;
  state: TaskState;
  createdAt: string;
  updatedAt: string;
  expiresAt: string;
  /** The signed envelope, kept only while the task may be (re)delivered (queued, delivered): central/tasks/slim.ts. */
  signed?: SignedTask;
  history: TaskHistoryEntry[];
  output?: string;
  exitCode?: number;
  reason?: string;
  secret?: boolean;
  /** Latest progress a running machine task reported (image-deploy: bytes written, rate). */
  progress?: TaskProgress;
}

export type ReportOutcome = 'applied' | 'duplicate' | 'ignored';

/** Called once when a task reaches a final state (after that state is durable); see TaskService.onTaskFinished. */
export type TaskFinishedListener = (task: TaskDoc) => Promise<void> | void;

export interface CreateTaskInput {
  site: string;
  machine?: string;
  kind: string;
  payload?: unknown;
  ttl?: string;
  /** Payload and output shown only to admins (central/tasks/redact.ts). */
  secret?: boolean;
  /**
   * The task's id, chosen by the caller so it can record the id before the task exists (a workflow step
   * commits it first: after a restart it looks the task up instead of signing another). Default: a new UUID.
   */
  id?: string;
}

/** Creates, signs, tracks and finishes tasks. Delivery is the hub's job; this is the bookkeeping. */
export class TaskService {
  /** Called after a task is durably created or cancelled, so the hub can push it. */
  onTask?: (task: TaskDoc) => void;
  private readonly finishedListeners = new Set<TaskFinishedListener>();
  /** Per agent, the next sequence number this central may hand out (see prepare). */
  private readonly claimedSeq = new Map<string, number>();

  /**
   * Subscribes to tasks reaching a final state (succeeded, failed, rejected, cancelled, expired), by a
   * report, a cancel or an expiry: called once per task, after the state is durable. Other features hang
   * their effects here (the machine lifecycle); a listener's failure is logged, never the report's.
   */
  onTaskFinished(listener: TaskFinishedListener): () => void {
    this.finishedListeners.add(listener);
    return () => this.finishedListeners.delete(listener);
  }

  constructor(
    private readonly store: Store,
    private readonly signingKey: Uint8Array,
    private readonly logger: Logger,
  ) {
    checkSigningKey(signingKey); // a broken key fails the start, not every task
  }

  /**
   * Agent ids by site (lower-cased, as the store's `where` matches). An agent's site never changes after
   * join, so the index only has to follow additions: it is rebuilt whenever the number of agents differs
   * from the one it was built at. This replaced a scan of every agent on every task create (a quarter of
   * the central's CPU with 1,000 agents).
   */
  private agentIndex: { count: number; bySite: Map<string, string[]> } | null = null;

  private agentsAt(site: string): AgentDoc[] {
    const count = this.store.count(AGENTS);
    if (!this.agentIndex || this.agentIndex.count !== count) {
      const bySite = new Map<string, string[]>();
      for (const a of this.store.list<AgentDoc>(AGENTS).items) {
        const k = String(a.site).toLowerCase();
        bySite.set(k, [...(bySite.get(k) ?? []), a.id]);
      }
      this.agentIndex = { count, bySite };
    }
    return (this.agentIndex.bySite.get(site.toLowerCase()) ?? []).map((id) => this.store.get<AgentDoc>(AGENTS, id)).filter((a): a is AgentDoc => !!a);
  }

  /**
   * The agent a task goes to. A machine's task goes to the agent that serves the machine (`servedBy`: the
   * one that leased it, saw it boot or discovered it), never by recency; a machine no agent of a
   * multi-agent site has served yet is refused, and with a single agent that agent takes it
   * (docs/decisions.md). A site task (no machine) goes to the most recently seen agent.
   */
  private pickAgent(site: string, machine?: { id: string; name?: string; servedBy?: string }): AgentDoc {
    const agents = this.agentsAt(site).filter((a) => !a.revokedAt);
    if (agents.length === 0) throw new ConflictError(`site "${site}" has no joined agent; join one with "underlay agent join"`);
    if (machine) {
      const serving = agents.find((a) => a.id === machine.servedBy);
      if (serving) return serving;
      if (agents.length === 1) return agents[0];
      throw new ConflictError(
        `machine "${machine.name ?? machine.id}" has not been served by any of site "${site}"'s ${agents.length} agents yet (no lease, boot or discovery seen${machine.servedBy ? `; its last agent ${machine.servedBy} is gone` : ''}): boot it once so its agent is known`,
        [{ path: 'machine', message: 'no serving agent known' }],
      );
    }
    agents.sort((a, b) => String(b.lastSeenAt ?? b.createdAt).localeCompare(String(a.lastSeenAt ?? a.createdAt)));
    return agents[0];
  }

  async create(input: CreateTaskInput): Promise<TaskDoc> {
    return (await this.createMany([input]))[0];
  }

  /**
   * Creates several tasks in one durable commit (the batch API and the single create share this). All are
   * validated first: one invalid input fails the whole batch, naming its index. Sequence numbers are
   * claimed synchronously in memory, so concurrent creates never share one.
   */
  async createMany(inputs: CreateTaskInput[]): Promise<TaskDoc[]> {
    // Another central replica may claim the same agent's next sequence number first: build again on its claim.
    return retryStale(() => this.createManyOnce(inputs));
  }

  private async createManyOnce(inputs: CreateTaskInput[]): Promise<TaskDoc[]> {
    const agents = new Map<string, AgentDoc>();
    const tasks: TaskDoc[] = [];
    inputs.forEach((input, i) => {
      try {
        tasks.push(this.prepare(input, agents));
      } catch (e) {
        if (e instanceof DomainError && inputs.length > 1) {
          throw new (e.constructor as new (m: string, d?: DomainError['details']) => DomainError)(`tasks.${i}: ${e.message}`, e.details?.map((d) => ({ ...d, path: `tasks.${i}.${d.path}` })));
        }
        throw e;
      }
    });
    await this.store.commit([
      ...[...agents.values()].map((doc) => ({ type: 'put' as const, collection: AGENTS, doc })),
      ...tasks.map((doc) => ({ type: 'put' as const, collection: TASKS, doc })),
    ]);
    for (const task of tasks) {
      this.onTask?.(task);
    }
    return tasks;
  }

  /** Validates one input and builds its signed task; `agents` carries sequence claims within a batch. */
  private prepare(input: CreateTaskInput, agents: Map<string, AgentDoc>): TaskDoc {
    if (!isTaskKind(input.kind)) {
      throw new InvalidError(`unknown task kind "${input.kind}" (known: ${Object.keys(TASK_KINDS).join(', ')})`, [{ path: 'kind', message: 'unknown kind' }]);
    }
    const kind = TASK_KINDS[input.kind];
    const payload = kind.payload.safeParse(input.payload ?? {});
    if (!payload.success) {
      const details = payload.error.issues.map((i) => ({ path: ['payload', ...i.path].join('.'), message: i.message }));
      throw new InvalidError(`invalid payload for ${input.kind}: ${details.map((d) => `${d.path}: ${d.message}`).join('; ')}`, details);
    }
    if (!this.store.findUnique(SITES, 'name', input.site)) throw new InvalidError(`site "${input.site}" does not exist`, [{ path: 'site', message: 'unknown site' }]);
    let machineId: string | null = null;
    let machineDoc: { id: string; name?: string; servedBy?: string } | undefined;
    if (kind.machine) {
      if (!input.machine) throw new InvalidError(`task kind ${input.kind} needs a machine`, [{ path: 'machine', message: 'required' }]);
      const m = this.store.get<{ id: string; site: string; name?: string; servedBy?: string }>(MACHINES, input.machine) ?? this.store.findUnique<{ id: string; site: string; name?: string; servedBy?: string }>(MACHINES, 'name', input.machine);
      if (!m) throw new InvalidError(`machine "${input.machine}" does not exist`, [{ path: 'machine', message: 'unknown machine' }]);
      if (m.site !== input.site) throw new InvalidError(`machine "${input.machine}" is not at site "${input.site}"`, [{ path: 'machine', message: 'other site' }]);
      machineId = m.id;
      machineDoc = m;
    }
    if (input.id !== undefined && this.get(input.id)) throw new ConflictError(`task "${input.id}" already exists`, [{ path: 'id', message: 'exists' }]);
    const ttlMs = input.ttl === undefined ? DEFAULT_TTL_MS : parseDuration(input.ttl);
    if (ttlMs < 1000 || ttlMs > 30 * 86_400_000) throw new InvalidError('ttl must be between 1s and 30d', [{ path: 'ttl', message: 'out of range' }]);

    const picked = this.pickAgent(input.site, machineDoc);
    // One copy of the agent per batch (written with the tasks), its nextSeq moved on in place per task.
    let agent = agents.get(picked.id);
    if (!agent) agents.set(picked.id, (agent = { ...picked }));
    // Never below a number this central already handed out: a commit can wait before its claim reaches
    // the store (the file store used to pause writers while it compacted; a store may apply a commit only
    // once it is durable), and a create prepared meanwhile would read the old nextSeq. A number claimed by a write that then failed is a gap, which agents accept.
    const seq = Math.max(agent.nextSeq, this.claimedSeq.get(agent.id) ?? 0);
    agent.nextSeq = seq + 1;
    this.claimedSeq.set(agent.id, seq + 1);
    const now = new Date();
    const envelope: TaskEnvelope = {
      v: 1,
      id: input.id ?? randomUUID(),
      site: input.site,
      agent: agent.id,
      seq,
      kind: input.kind,
      machine: machineId,
      payload: payload.data,
      issuedAt: now.toISOString(),
      expiresAt: new Date(now.getTime() + ttlMs).toISOString(),
    };
    return slimmed({
      id: envelope.id,
      site: envelope.site,
      agent: envelope.agent,
      machine: envelope.machine,
      kind: envelope.kind,
      payload: envelope.payload,
      seq: envelope.seq,
      state: 'queued',
      createdAt: envelope.issuedAt,
      updatedAt: envelope.issuedAt,
      expiresAt: envelope.expiresAt,
      signed: signTask(envelope, this.signingKey),
      history: [{ state: 'queued', at: envelope.issuedAt }],
      ...(input.secret ? { secret: true } : {}),
    });
  }

  get(id: string): TaskDoc | undefined {
    return this.store.get<TaskDoc>(TASKS, id);
  }

  /** Tasks to (re)deliver to an agent, in sequence order; expired ones are marked expired instead. */
  async pendingFor(agentId: string): Promise<TaskDoc[]> {
    const now = Date.now();
    const out: TaskDoc[] = [];
    for (const state of ['queued', 'delivered'] as const) {
      for (const t of this.store.list<TaskDoc>(TASKS, { where: { agent: agentId, state } }).items) {
        if (Date.parse(t.expiresAt) <= now) await this.transition(t, { state: 'expired', at: new Date().toISOString(), reason: 'expired before delivery' });
        else out.push(t);
      }
    }
    return out.sort((a, b) => a.seq - b.seq);
  }

  /**
   * Tasks sent to their agent whose `delivered` mark is not written yet (task id → when it was sent).
   * `delivered` guarantees nothing (queued and delivered tasks are both redelivered at reconnect), so it
   * gets no durable write of its own on the hot path: it is folded into the task's next write, normally
   * the agent's first report a few milliseconds later, and only written by itself for tasks still
   * unreported after `deliveredFlushMs` (5 s; or at shutdown). This took one of four journal records per
   * task away (docs/decisions.md). A crash, or a failed commit, can lose a pending mark: the task then
   * reads `queued` until its first report, and is redelivered exactly as a `delivered` one would be.
   */
  private readonly unrecordedDeliveries = new Map<string, string>();
  private deliveredTimer: NodeJS.Timeout | null = null;
  deliveredFlushMs = 5000;

  /** Notes that tasks were sent; their `delivered` entry is written with their next change (see above). */
  async markDeliveredMany(tasks: TaskDoc[]): Promise<void> {
    const at = new Date().toISOString();
    for (const t of tasks) if (!this.unrecordedDeliveries.has(t.id)) this.unrecordedDeliveries.set(t.id, at);
    if (this.deliveredTimer || this.unrecordedDeliveries.size === 0) return;
    this.deliveredTimer = setTimeout(() => {
      this.deliveredTimer = null;
      this.flushDeliveries().catch((e: Error) => this.logger.error({ err: e }, 'could not record task deliveries'));
    }, this.deliveredFlushMs);
    this.deliveredTimer.unref();
  }

  /** Writes every pending `delivered` mark now (in one commit). */
  async flushDeliveries(): Promise<void> {
    if (this.deliveredTimer) clearTimeout(this.deliveredTimer);
    this.deliveredTimer = null;
    const changed: { before: TaskDoc; next: TaskDoc }[] = [];
    const now = new Date().toISOString();
    for (const id of [...this.unrecordedDeliveries.keys()]) {
      const before = this.get(id);
      const draft = before && this.deliveryDraft(before, now);
      if (draft) changed.push({ before, next: slimmed(draft) });
      else this.unrecordedDeliveries.delete(id);
    }
    await this.commitChanges(changed);
  }

  /**
   * A draft of the task with its pending `delivered` entry (taken off the pending list), or null when it
   * has none to add (none pending, or the task is past queued).
   */
  private deliveryDraft(t: TaskDoc, now: string): TaskDoc | null {
    const at = this.unrecordedDeliveries.get(t.id);
    if (at === undefined) return null;
    this.unrecordedDeliveries.delete(t.id);
    if (t.state !== 'queued') return null;
    const draft = draftOf(t);
    applyEntry(draft, { state: 'delivered', at }, now);
    return draft;
  }

  /**
   * Applies a batch of reports from one agent in one durable commit (reports for the same task apply in
   * order). Idempotent by report id (a redelivered report changes nothing); out-of-order or post-terminal
   * reports are recorded in history without moving the state backwards; unverified rejections are only
   * recorded.
   */
  async applyReports(agentId: string, reports: ReportMsg[]): Promise<ReportOutcome[]> {
    // Each task touched is copied once (a draft), however many of its reports the batch carries.
    const touched = new Map<string, { before: TaskDoc; next: TaskDoc; draft: boolean; effect: boolean }>();
    const outcomes: ReportOutcome[] = [];
    const now = new Date().toISOString();
    for (const r of reports) {
      let change = touched.get(r.taskId);
      if (!change) {
        const stored = this.get(r.taskId);
        if (!stored || stored.agent !== agentId) {
          this.logger.warn({ agent: agentId, task: r.taskId }, 'report for a task this agent does not own; ignored');
          outcomes.push('ignored');
          continue;
        }
        const delivered = this.deliveryDraft(stored, now);
        change = { before: stored, next: delivered ?? stored, draft: delivered !== null, effect: false };
        touched.set(r.taskId, change);
      }
      if (change.next.history.some((h) => h.reportId === r.id)) {
        outcomes.push('duplicate');
        continue;
      }
      outcomes.push('applied');
      if (!change.draft) {
        change.next = draftOf(change.next);
        change.draft = true;
      }
      const forward = applyEntry(change.next, this.entryOf(r), now, r.output, isUnverified(r), r.progress);
      change.effect ||= forward && r.state === 'succeeded';
    }
    const changed = [...touched.values()].filter((c) => c.draft);
    for (const c of changed) c.next = slimmed(c.next);
    await this.commitChanges(changed);
    return outcomes;
  }

  private entryOf(r: ReportMsg): TaskHistoryEntry {
    return { state: r.state, at: r.at, reportId: r.id, ...(r.reason ? { reason: r.reason } : {}), ...(r.exitCode !== undefined ? { exitCode: r.exitCode } : {}) };
  }

  private async commitChanges(changed: { before: TaskDoc; next: TaskDoc; effect?: boolean }[]): Promise<void> {
    if (changed.length === 0) return;
    const ops: WriteOp[] = changed.map((c) => ({ type: 'put' as const, collection: TASKS, doc: c.next }));
    let pending: Map<string, Doc> | undefined; // documents changed by earlier effects of this commit
    for (const c of changed) if (c.effect) ops.push(...this.effectOps(c.next, (pending ??= new Map())));
    await this.store.commit(ops);
    for (const c of changed) {
      if (TERMINAL.has(c.next.state) && !TERMINAL.has(c.before.state)) await this.announceFinished(c.next);
    }
  }

  private async announceFinished(t: TaskDoc): Promise<void> {
    for (const listener of this.finishedListeners) {
      try {
        await listener(t);
      } catch (e) {
        this.logger.error({ err: e as Error, task: t.id, kind: t.kind }, 'a task-finished listener failed');
      }
    }
  }

  /** Applies one report; see applyReports. */
  async applyReport(agentId: string, r: ReportMsg): Promise<ReportOutcome> {
    return (await this.applyReports(agentId, [r]))[0]!;
  }

  async cancel(id: string): Promise<TaskDoc> {
    const t = this.get(id);
    if (!t) throw new NotFoundError(`task "${id}" not found`);
    if (TERMINAL.has(t.state)) throw new ConflictError(`task ${id} is already ${t.state}`);
    if (!CANCELLABLE.has(t.state)) throw new ConflictError(`task ${id} is already running`);
    const next = await this.transition(t, { state: 'cancelled', at: new Date().toISOString(), reason: 'cancelled by operator' });
    this.onTask?.(next);
    return next;
  }

  private async transition(t: TaskDoc, entry: TaskHistoryEntry, output?: string, historyOnly = false): Promise<TaskDoc> {
    const now = new Date().toISOString();
    const draft = this.deliveryDraft(t, now) ?? draftOf(t);
    const forward = applyEntry(draft, entry, now, output, historyOnly);
    const next = slimmed(draft);
    await this.commitChanges([{ before: t, next, effect: forward && entry.state === 'succeeded' }]);
    return next;
  }

  /** What a succeeded task means for the inventory (central/tasks/effects.ts, one entry per kind), as writes of its commit. */
  private effectOps(t: TaskDoc, pending: Map<string, Doc>): WriteOp[] {
    const effect = isTaskKind(t.kind) ? TASK_EFFECTS[t.kind] : null;
    return effect ? effect(this.store, t, pending) : [];
  }


}

/** A copy of a stored task that a write may change in place (its own history array). */
function draftOf(t: TaskDoc): TaskDoc {
  return { ...t, history: [...t.history] };
}

/**
 * Adds one history entry to a draft (draftOf) in place: the state never moves backwards nor past a final
 * state. Returns whether it moved (forward). The caller slims the draft once it is complete (slim.ts).
 */
function applyEntry(draft: TaskDoc, entry: TaskHistoryEntry, now: string, output?: string, historyOnly = false, progress?: TaskProgress): boolean {
  const forward = !historyOnly && canMove(draft.state, entry.state);
  draft.history.push(entry);
  draft.updatedAt = now;
  if (!forward) return false;
  draft.state = entry.state;
  if (entry.reason) draft.reason = entry.reason;
  if (entry.exitCode !== undefined) draft.exitCode = entry.exitCode;
  if (output !== undefined) draft.output = output;
  if (progress) draft.progress = progress;
  return true;
}

/**
 * A rejection for a bad signature names an id the agent could not verify: whoever forged the envelope
 * chose it. It is recorded, but it cannot finish a genuine task that is still on its way.
 */
function isUnverified(r: ReportMsg): boolean {
  return r.state === 'rejected' && (r.reason === 'bad-signature' || r.reason === 'malformed');
}
