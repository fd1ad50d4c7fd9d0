import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import { WebSocketServer } from 'ws';
import { guarded, type FailureSink } from '../../shared/util/guarded.js';
import type { Logger } from '../../shared/log/logger.js';
import type { EventMsg } from '../../shared/protocol/messages.js';
import { MAX_MESSAGE_BYTES } from '../../shared/protocol/messages.js';
import type { DesiredState } from '../../shared/protocol/desired-state.js';
import type { ChangeFeed } from '../store/change-feed.js';
import type { Store } from '../store/types.js';
import { AGENTS, EVENTS, type AgentDoc } from './collections.js';
import type { EventHandler, StateContributor } from '../api/feature.js';
import { buildDesiredState } from './desired-state.js';
import type { TaskQueue } from './task-queue.js';
import { AgentSession } from './session.js';
import type { AgentCertRenewal } from './cert-renewal.js';
import { recordLastSeen } from './last-seen.js';

export const CONNECT_PATH = '/api/v1/agents/connect';

export type { EventHandler };

export interface HubOptions {
  store: Store;
  changes: ChangeFeed;
  tasks: TaskQueue;
  logger: Logger;
  contributors?: StateContributor[];
  /** Collections whose changes alter desired state (every feature's stateCollections). */
  stateCollections?: string[];
  eventHandlers?: Record<string, EventHandler>;
  /** Renews agents' client certificates over the link (feature `cert-renew`). */
  certRenewal?: AgentCertRenewal;
  /** Where failed timers and callbacks are reported (default: logged). */
  onFailure?: FailureSink;
}

/**
 * The agent hub: accepts agents' outbound WebSocket connections (mutual TLS: the client certificate
 * must be one our CA issued to a joined, unrevoked agent), pushes desired state and signed tasks,
 * receives reports and events.
 */
export class AgentHub {
  private readonly wss = new WebSocketServer({ noServer: true, maxPayload: MAX_MESSAGE_BYTES });
  readonly sessions = new Map<string, AgentSession>();
  private pushTimer: NodeJS.Timeout | null = null;
  private readonly stateCollections: Set<string>;
  private unsubscribe: () => void;

  constructor(private readonly opts: HubOptions) {
    this.stateCollections = new Set(opts.stateCollections ?? []);
    opts.tasks.onTask = (task) => void this.sessions.get(task.agent)?.deliver(task);
    this.unsubscribe = opts.changes.on((c) => {
      if (this.stateCollections.has(c.collection)) this.schedulePush();
      if (c.collection === AGENTS && c.doc && (c.doc as AgentDoc).revokedAt) this.disconnect(c.id, 'revoked');
    });
  }

  private get onFailure(): FailureSink {
    return this.opts.onFailure ?? ((where, err) => this.opts.logger.error({ err, where }, `${where} failed`));
  }

  /** One site's state that cannot be built (e.g. a bad document) fails its own push, never the others or the process. */
  private schedulePush(): void {
    if (this.pushTimer) return;
    this.pushTimer = setTimeout(() => {
      this.pushTimer = null;
      for (const s of this.sessions.values()) guarded(`desired-state push to agent ${s.agent.id}`, this.onFailure, () => s.pushState())();
    }, 50);
  }

  desiredState(site: string, agentId?: string): DesiredState {
    return buildDesiredState(this.opts.store, site, this.opts.contributors, agentId);
  }

  attach(server: Server): () => Promise<void> {
    const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      const url = new URL(req.url ?? '/', 'https://x');
      if (url.pathname !== CONNECT_PATH) {
        socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\n');
        return;
      }
      const agent = this.authenticate(req.socket as TLSSocket);
      if (!agent.ok) {
        this.opts.logger.warn({ reason: agent.reason, remote: req.socket.remoteAddress }, 'refused an agent connection');
        socket.end(`HTTP/1.1 ${agent.status} ${agent.status === 401 ? 'Unauthorized' : 'Forbidden'}\r\nConnection: close\r\nContent-Type: text/plain\r\n\r\n${agent.reason}\n`);
        return;
      }
      this.wss.handleUpgrade(req, socket, head, (ws) => this.accept(agent.doc, ws, agent.fingerprint, socket));
    };
    server.on('upgrade', onUpgrade);
    return async () => {
      server.off('upgrade', onUpgrade);
      this.unsubscribe();
      for (const s of this.sessions.values()) s.close(1001, 'central shutting down');
      this.wss.close();
    };
  }

  private authenticate(socket: TLSSocket): { ok: true; doc: AgentDoc; fingerprint: string } | { ok: false; status: number; reason: string } {
    if (typeof socket.getPeerCertificate !== 'function') return { ok: false, status: 401, reason: 'agents connect over TLS with their client certificate' };
    const cert = socket.getPeerCertificate();
    if (!cert || !cert.fingerprint256) return { ok: false, status: 401, reason: 'no client certificate presented' };
    if (!socket.authorized) return { ok: false, status: 401, reason: `client certificate not issued by this central's CA (${socket.authorizationError})` };
    const fp = cert.fingerprint256.replace(/:/g, '').toLowerCase();
    const doc = this.opts.store.findUnique<AgentDoc>(AGENTS, 'certFingerprint', fp);
    if (!doc) return { ok: false, status: 403, reason: 'unknown agent certificate' };
    if (doc.revokedAt) return { ok: false, status: 403, reason: `agent ${doc.id} was revoked at ${doc.revokedAt}` };
    return { ok: true, doc, fingerprint: fp };
  }

  private accept(agent: AgentDoc, ws: import('ws').WebSocket, fingerprint: string, socket: Duplex): void {
    const prev = this.sessions.get(agent.id);
    if (prev) prev.close(4000, 'replaced by a newer connection');
    const session = new AgentSession(agent, ws, {
      tasks: this.opts.tasks,
      desiredState: (site) => this.desiredState(site, agent.id),
      onEvent: (a, ev) => this.onEvent(a, ev),
      renewCert: (msg) => this.opts.certRenewal?.answer(agent.id, fingerprint, msg) ?? Promise.resolve({ type: 'cert-renew-refused', id: msg.id, code: 'unavailable', message: 'this central does not renew certificates' }),
      onClose: (s) => {
        if (this.sessions.get(agent.id) === s) this.sessions.delete(agent.id);
        void this.touch(agent.id);
        this.opts.logger.info({ agent: agent.id, site: agent.site }, 'agent disconnected');
      },
      logger: this.opts.logger,
      onFailure: this.onFailure,
    }, socket);
    this.sessions.set(agent.id, session);
    void this.touch(agent.id, fingerprint);
    this.opts.logger.info({ agent: agent.id, site: agent.site }, 'agent connected');
  }

  /** Records when the agent was last seen (see recordLastSeen); a failed write (store closed, disk full) is logged, never thrown. */
  private async touch(agentId: string, connectedWith?: string): Promise<void> {
    try {
      await recordLastSeen(this.opts.store, agentId, new Date().toISOString(), connectedWith);
    } catch (e) {
      this.opts.logger.warn({ agent: agentId, err: (e as Error).message }, 'could not record when the agent was last seen');
    }
  }

  /** Events are stored by id (a redelivery overwrites the same record), then handed to their feature. */
  private async onEvent(agent: AgentDoc, ev: EventMsg): Promise<void> {
    const handler = this.opts.eventHandlers?.[ev.kind];
    const seen = this.opts.store.get(EVENTS, ev.id);
    if (!seen) {
      if (handler) await handler(agent, ev);
      await this.opts.store.put(EVENTS, { id: ev.id, agent: agent.id, site: agent.site, kind: ev.kind, data: ev.data, at: ev.at, receivedAt: new Date().toISOString() });
    }
  }

  disconnect(agentId: string, reason: string): void {
    this.sessions.get(agentId)?.close(4003, reason);
  }

  isConnected(agentId: string): boolean {
    return this.sessions.has(agentId);
  }
}
