import type { WebSocket } from 'ws';
import type { Logger } from '../../shared/log/logger.js';
import { AgentToCentral, parseMessage, PROTOCOL_VERSION, type CentralToAgent, type EventMsg, type ReportMsg } from '../../shared/protocol/messages.js';
import type { DesiredState } from '../../shared/protocol/desired-state.js';
import { heartbeatSettings } from '../../shared/protocol/heartbeat.js';
import type { TaskDoc, TaskService } from '../tasks/service.js';
import type { AgentDoc } from './collections.js';

const HEARTBEAT = heartbeatSettings();
export const HEARTBEAT_INTERVAL_MS = HEARTBEAT.heartbeatMs;
export const DEAD_AFTER_MS = HEARTBEAT.deadAfterMs;

export type SessionState = 'awaiting-hello' | 'syncing' | 'ready' | 'closed';

export interface SessionHooks {
  tasks: TaskService;
  desiredState: (site: string) => DesiredState;
  onEvent: (agent: AgentDoc, ev: EventMsg) => Promise<void>;
  onClose: (s: AgentSession) => void;
  logger: Logger;
}

/** One connected agent: hello → welcome + state + pending tasks; then reports, events, heartbeats. */
export class AgentSession {
  state: SessionState = 'awaiting-hello';
  private lastInbound = Date.now();
  private heartbeat: NodeJS.Timeout;
  private sentStateVersion: string | null = null;
  readonly connectedAt = new Date().toISOString();
  agentVersion = '';
  /** Messages rejected as malformed (for tests and metrics). */
  rejected = 0;
  /** Live tasks that arrived while the backlog was being read at hello. */
  private buffered: TaskDoc[] = [];
  private pendingAcks: string[] = [];
  private ackTimer: NodeJS.Immediate | null = null;

  constructor(
    readonly agent: AgentDoc,
    private readonly ws: WebSocket,
    private readonly hooks: SessionHooks,
  ) {
    ws.on('message', (data, isBinary) => void this.onMessage(isBinary ? data : data.toString()));
    ws.on('pong', () => (this.lastInbound = Date.now()));
    ws.on('close', () => this.closed());
    ws.on('error', (e) => hooks.logger.warn({ agent: agent.id, err: e.message }, 'agent websocket error'));
    this.heartbeat = setInterval(() => {
      if (Date.now() - this.lastInbound > DEAD_AFTER_MS) {
        hooks.logger.warn({ agent: agent.id }, 'agent link dead (no traffic for the dead-after time); closing');
        ws.terminate();
        return;
      }
      this.send({ type: 'ping', t: Date.now() });
    }, HEARTBEAT_INTERVAL_MS);
    this.heartbeat.unref();
  }

  send(msg: CentralToAgent): void {
    if (this.ws.readyState === this.ws.OPEN) this.ws.send(JSON.stringify(msg));
  }

  close(code: number, reason: string): void {
    this.ws.close(code, reason);
    setTimeout(() => this.ws.terminate(), 2000).unref();
  }

  private closed(): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    clearInterval(this.heartbeat);
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
        // While the backlog is read, live tasks are buffered (not dropped, not sent ahead of older ones):
        // the agent rejects a sequence number below one it has seen as a replay, so order matters.
        this.state = 'syncing';
        this.send({ type: 'welcome', v: PROTOCOL_VERSION, agent: this.agent.id, site: this.agent.site, serverTime: new Date().toISOString() });
        this.sentStateVersion = msg.stateVersion;
        const pending = await this.hooks.tasks.pendingFor(this.agent.id);
        const byId = new Map<string, TaskDoc>();
        for (const t of [...pending, ...this.buffered]) byId.set(t.id, t);
        this.buffered = [];
        if (this.state !== 'syncing') return;
        this.state = 'ready';
        this.pushState();
        const backlog = [...byId.values()].sort((a, b) => a.seq - b.seq);
        for (const t of backlog) this.sendTask(t);
        await this.hooks.tasks.markDeliveredMany(backlog.filter((t) => t.state !== 'cancelled'));
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
        this.queueReport(msg);
      } else if (msg.type === 'event') {
        await this.hooks.onEvent(this.agent, msg);
        this.ack(msg.id);
      }
    } catch (e) {
      this.hooks.logger.error({ agent: this.agent.id, err: e }, 'error handling agent message');
    }
  }

  private reportQueue: ReportMsg[] = [];
  private reportTimer: NodeJS.Immediate | null = null;

  /**
   * Reports that arrive in the same turn of the event loop (an agent draining its outbox, or accepted +
   * succeeded back to back) are applied in one durable commit, then acknowledged together.
   */
  private queueReport(r: ReportMsg): void {
    this.reportQueue.push(r);
    if (this.reportTimer) return;
    this.reportTimer = setImmediate(() => {
      this.reportTimer = null;
      const batch = this.reportQueue.splice(0);
      this.hooks.tasks.applyReports(this.agent.id, batch).then(
        () => {
          for (const r of batch) this.ack(r.id);
        },
        (e: Error) => this.hooks.logger.error({ agent: this.agent.id, err: e }, 'could not record reports; the agent will resend them'),
      );
    });
  }

  private deliveredQueue: TaskDoc[] = [];
  private deliveredTimer: NodeJS.Immediate | null = null;

  /** Marks sent tasks delivered, batched per turn of the event loop. */
  private queueDelivered(t: TaskDoc): void {
    this.deliveredQueue.push(t);
    if (this.deliveredTimer) return;
    this.deliveredTimer = setImmediate(() => {
      this.deliveredTimer = null;
      const batch = this.deliveredQueue.splice(0);
      this.hooks.tasks.markDeliveredMany(batch).catch((e: Error) => this.hooks.logger.error({ agent: this.agent.id, err: e }, 'could not mark tasks delivered'));
    });
  }

  /**
   * Acknowledges a durably recorded report or event. Acks that become due in the same turn of the event
   * loop (one group commit resolves many reports at once) go out as one frame.
   */
  private ack(id: string): void {
    this.pendingAcks.push(id);
    if (this.ackTimer) return;
    this.ackTimer = setImmediate(() => {
      this.ackTimer = null;
      while (this.pendingAcks.length > 0) this.send({ type: 'ack', ids: this.pendingAcks.splice(0, 10_000) });
    });
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
    this.sendTask(task);
    if (task.state !== 'cancelled') this.queueDelivered(task);
  }

  private sendTask(task: TaskDoc): void {
    if (task.state === 'cancelled') this.send({ type: 'cancel', taskId: task.id });
    else this.send({ type: 'task', task: task.signed });
  }
}
