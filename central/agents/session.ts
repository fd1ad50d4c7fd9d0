import type { Duplex } from 'node:stream';
import type { WebSocket } from 'ws';
import type { Logger } from '../../shared/log/logger.js';
import { AgentToCentral, BATCH_FILL_BYTES, FEATURES, MAX_BATCH_ITEMS, parseMessage, PROTOCOL_VERSION, type CentralToAgent, type CertRenewAnswer, type CertRenewMsg, type EventMsg, type Feature, type ReportMsg } from '../../shared/protocol/messages.js';
import type { DesiredState } from '../../shared/protocol/desired-state.js';
import { heartbeatSettings } from '../../shared/protocol/heartbeat.js';
import { TurnBatcher } from '../../shared/util/turn-batcher.js';
import { guarded, type FailureSink } from '../../shared/util/guarded.js';
import type { DeliverableTask as TaskDoc, TaskQueue } from './task-queue.js';
import type { SignedTask } from '../../shared/envelope/envelope.js';
import type { AgentDoc } from './collections.js';

const HEARTBEAT = heartbeatSettings();
export const HEARTBEAT_INTERVAL_MS = HEARTBEAT.heartbeatMs;
export const DEAD_AFTER_MS = HEARTBEAT.deadAfterMs;
/**
 * How long an ack (of durably recorded reports or events) may wait for another frame to the same agent
 * before it goes alone: see AgentSession.holdAcks. The ack only frees the agent's outbox; the report is
 * already recorded, so waiting costs no durability, only the outbox's hold on a few reports.
 */
export const ACK_LINGER_MS = 500;

export type SessionState = 'awaiting-hello' | 'syncing' | 'ready' | 'closed';

export interface SessionHooks {
  tasks: TaskQueue;
  desiredState: (site: string) => DesiredState;
  onEvent: (agent: AgentDoc, ev: EventMsg) => Promise<void>;
  /** Answers a `cert-renew` (central/agents/cert-renewal.ts); never throws. */
  renewCert: (msg: CertRenewMsg) => Promise<CertRenewAnswer>;
  onClose: (s: AgentSession) => void;
  logger: Logger;
  onFailure?: FailureSink;
  /** See ACK_LINGER_MS (default); 0 sends acks at the end of their turn. */
  ackLingerMs?: number;
}

/** One connected agent: hello → welcome + state + pending tasks; then reports, events, heartbeats. */
export class AgentSession {
  state: SessionState = 'awaiting-hello';
  private lastInbound = Date.now();
  private heartbeat: NodeJS.Timeout;
  private sentStateVersion: string | null = null;
  readonly connectedAt = new Date().toISOString();
  agentVersion = '';
  /** What the agent announced in hello (see Feature in shared/protocol/messages.ts). */
  private features = new Set<Feature>();
  /** Messages rejected as malformed (for tests and metrics). */
  rejected = 0;
  /** Live tasks that arrived while the backlog was being read at hello. */
  private buffered: TaskDoc[] = [];
  /**
   * Reports that arrive in the same turn of the event loop (an agent draining its outbox, accepted +
   * succeeded back to back, a `reports` frame) are applied in one durable commit, then acknowledged.
   */
  private readonly reports = new TurnBatcher<ReportMsg>((batch) => this.applyReports(batch));
  /** Acks that become due in one turn (one group commit resolves many reports) are held together: holdAcks. */
  private readonly acks = new TurnBatcher<string>((ids) => this.holdAcks(ids));
  /** Acks waiting for the next frame to this agent, or for the linger timer (holdAcks). */
  private heldAcks: string[] = [];
  private ackTimer: NodeJS.Timeout | null = null;
  private readonly ackLingerMs: number;
  /** Tasks and cancellations due in one turn (one group commit resolves many creates): see sendOutbound. */
  private readonly outbound = new TurnBatcher<TaskDoc>((due) => this.sendOutbound(due));

  /** Whether the socket is corked until the next turn (see send). */
  private corked = false;

  constructor(
    readonly agent: AgentDoc,
    private readonly ws: WebSocket,
    private readonly hooks: SessionHooks,
    /** The WebSocket's own socket (the upgraded TLS connection): frames sent in one turn share its writes. */
    private readonly socket?: Duplex,
  ) {
    this.ackLingerMs = hooks.ackLingerMs ?? ACK_LINGER_MS;
    const sink: FailureSink = hooks.onFailure ?? ((where, err) => hooks.logger.error({ err, agent: agent.id, where }, `${where} failed`));
    ws.on('message', guarded('agent message', sink, (data: import('ws').RawData, isBinary: boolean) => this.onMessage(isBinary ? data : data.toString())));
    ws.on('pong', () => (this.lastInbound = Date.now()));
    ws.on('close', () => this.closed());
    ws.on('error', (e) => hooks.logger.warn({ agent: agent.id, err: e.message }, 'agent websocket error'));
    this.heartbeat = setInterval(guarded('agent heartbeat', sink, () => {
      if (Date.now() - this.lastInbound > DEAD_AFTER_MS) {
        hooks.logger.warn({ agent: agent.id }, 'agent link dead (no traffic for the dead-after time); closing');
        ws.terminate();
        return;
      }
      this.send({ type: 'ping', t: Date.now() });
    }), HEARTBEAT_INTERVAL_MS);
    this.heartbeat.unref();
  }

  /**
   * Sends one frame. The frames of one turn of the event loop (the acks of a group commit, the tasks of
   * another, a pong) leave in one socket write, one TLS record and one send on the wire, instead of one
   * each: the socket is corked at the first frame and uncorked at the next turn (setImmediate). Held acks
   * (holdAcks) go first, in the same write.
   */
  send(msg: CentralToAgent): void {
    if (this.ws.readyState !== this.ws.OPEN) return;
    const socket = this.socket;
    if (socket && !this.corked) {
      this.corked = true;
      socket.cork();
      setImmediate(() => {
        this.corked = false;
        socket.uncork();
      });
    }
    if (this.heldAcks.length > 0 && msg.type !== 'ack') this.flushAcks();
    this.ws.send(JSON.stringify(msg));
  }

  /**
   * Acks are held up to `ackLingerMs` so that they leave with the next frame to this agent (its next tasks,
   * a ping) in one socket write and TLS record, instead of a write of their own per report batch: with many
   * agents each with a task or two in flight, that halved the central's writes per task (one `tasks` frame,
   * one `ack` frame, each its own write before). Acks go at once when there are 10,000 or more.
   */
  private holdAcks(ids: string[]): void {
    for (const id of ids) this.heldAcks.push(id);
    if (this.ackLingerMs <= 0 || this.heldAcks.length >= 10_000) return this.flushAcks();
    if (this.ackTimer) return;
    this.ackTimer = setTimeout(() => {
      this.ackTimer = null;
      this.flushAcks();
    }, this.ackLingerMs);
    this.ackTimer.unref();
  }

  private flushAcks(): void {
    if (this.ackTimer) clearTimeout(this.ackTimer);
    this.ackTimer = null;
    const ids = this.heldAcks;
    this.heldAcks = [];
    while (ids.length > 0) this.send({ type: 'ack', ids: ids.splice(0, 10_000) });
  }

  close(code: number, reason: string): void {
    if (this.heldAcks.length > 0) this.flushAcks(); // recorded reports: spare the agent resending them
    this.ws.close(code, reason);
    setTimeout(() => this.ws.terminate(), 2000).unref();
  }

  private closed(): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    clearInterval(this.heartbeat);
    if (this.ackTimer) clearTimeout(this.ackTimer); // unsent acks: the agent resends those reports, recorded as duplicates
    this.hooks.onClose(this);
  }

  private async onMessage(data: unknown): Promise<void> {
    this.lastInbound = Date.now();
    const parsed = parseMessage(AgentToCentral, data);
    if (!parsed.ok) {
      this.rejected++;
      this.hooks.logger.warn({ agent: this.agent.id, reason: parsed.reason }, 'rejected a malformed message from agent');
      this.send({ type: 'error', code: 'malformed', message: parsed.reason });
      return;
    }
    const msg = parsed.msg;
    try {
      if (msg.type === 'ping') return this.send({ type: 'pong', t: msg.t });
      if (msg.type === 'pong') return;
      if (msg.type === 'hello') {
        if (this.state !== 'awaiting-hello') return;
        this.agentVersion = msg.agentVersion;
        this.features = new Set(msg.features);
        // While the backlog is read, live tasks are buffered (not dropped, not sent ahead of older ones):
        // the agent rejects a sequence number below one it has seen as a replay, so order matters.
        this.state = 'syncing';
        this.send({ type: 'welcome', v: PROTOCOL_VERSION, agent: this.agent.id, site: this.agent.site, serverTime: new Date().toISOString(), features: FEATURES });
        this.sentStateVersion = msg.stateVersion;
        const pending = await this.hooks.tasks.pendingFor(this.agent.id);
        const byId = new Map<string, TaskDoc>();
        for (const t of [...pending, ...this.buffered]) byId.set(t.id, t);
        this.buffered = [];
        if (this.state !== 'syncing') return;
        this.state = 'ready';
        this.pushState();
        const backlog = [...byId.values()].sort((a, b) => a.seq - b.seq);
        for (const t of backlog) this.outbound.add(t);
        return;
      }
      if (this.state === 'awaiting-hello') {
        this.send({ type: 'error', code: 'no-hello', message: 'send hello first' });
        return;
      }
      if (msg.type === 'state-request') {
        this.sentStateVersion = null;
        this.pushState();
      } else if (msg.type === 'report') {
        this.reports.add(msg);
      } else if (msg.type === 'reports') {
        for (const r of msg.items) this.reports.add(r);
      } else if (msg.type === 'cert-renew') {
        this.send(await this.hooks.renewCert(msg));
      } else if (msg.type === 'event') {
        await this.hooks.onEvent(this.agent, msg);
        this.ack(msg.id);
      }
    } catch (e) {
      this.hooks.logger.error({ agent: this.agent.id, err: e }, 'error handling agent message');
    }
  }

  private applyReports(batch: ReportMsg[]): void {
    this.hooks.tasks.applyReports(this.agent.id, batch).then(
      () => {
        for (const r of batch) this.ack(r.id);
      },
      (e: Error) => this.hooks.logger.error({ agent: this.agent.id, err: e }, 'could not record reports; the agent will resend them'),
    );
  }

  /** Acknowledges a durably recorded report or event. */
  private ack(id: string): void {
    this.acks.add(id);
  }

  /** Sends the site's desired state if it differs from what the agent has. */
  pushState(): void {
    if (this.state !== 'ready') return;
    const state = this.hooks.desiredState(this.agent.site);
    if (state.version === this.sentStateVersion) return;
    this.sentStateVersion = state.version;
    this.send({ type: 'state', state });
  }

  async deliver(task: TaskDoc): Promise<void> {
    if (this.state === 'syncing') {
      this.buffered.push(task);
      return;
    }
    if (this.state !== 'ready') return;
    this.outbound.add(task);
  }

  /**
   * Sends due tasks in the order queued; consecutive tasks go out as one `tasks` frame when the agent
   * announced `batch`, a cancellation as its own frame between them. Sent tasks are then marked
   * delivered in one commit.
   */
  private sendOutbound(due: TaskDoc[]): void {
    if (this.state !== 'ready') return;
    let run: SignedTask[] = [];
    let runBytes = 0;
    const flush = () => {
      if (run.length === 1) this.send({ type: 'task', task: run[0]! });
      else if (run.length > 1) this.send({ type: 'tasks', tasks: run });
      run = [];
      runBytes = 0;
    };
    const batch = this.features.has('batch');
    for (const t of due) {
      if (t.state === 'cancelled') {
        flush();
        this.send({ type: 'cancel', taskId: t.id });
        continue;
      }
      // Only queued and delivered tasks keep their envelope (central/tasks/slim.ts); one already reported on is not resent.
      const signed = t.signed;
      if (!signed) continue;
      const bytes = signed.canonical.length + signed.signature.length;
      if (run.length > 0 && (!batch || run.length >= MAX_BATCH_ITEMS || runBytes + bytes > BATCH_FILL_BYTES)) flush();
      run.push(signed);
      runBytes += bytes;
    }
    flush();
    const sent = due.filter((t) => t.state !== 'cancelled' && t.signed);
    if (sent.length > 0) this.hooks.tasks.markDeliveredMany(sent).catch((e: Error) => this.hooks.logger.error({ agent: this.agent.id, err: e }, 'could not mark tasks delivered'));
  }
}
