import WebSocket from 'ws';
import type { Logger } from '../../shared/log/logger.js';
import { BATCH_FILL_BYTES, CentralToAgent, FEATURES, MAX_BATCH_ITEMS, MAX_MESSAGE_BYTES, parseMessage, PROTOCOL_VERSION, type AgentToCentral, type Feature, type ReportMsg } from '../../shared/protocol/messages.js';
import { AGENT_VERSION } from '../version.js';
import { backoffDelay } from '../../shared/util/backoff.js';
import { CentralUrls, parseCentralUrls } from './central-urls.js';
import type { Outbox } from './outbox.js';

export type LinkState = 'idle' | 'connecting' | 'handshaking' | 'ready' | 'backoff' | 'stopped';

export interface LinkOptions {
  /** One URL, or several central replicas' (comma-separated): tried in turn, see CentralUrls. */
  centralUrl: string;
  /** Read at every (re)connect: a certificate renewal replaces key and cert in this object. */
  tls: { key: string; cert: string; ca: string };
  outbox: Outbox;
  logger: Logger;
  /** Current desired-state version and last task sequence, sent in hello. */
  hello: () => { stateVersion: string | null; lastSeq: number };
  onMessage: (msg: CentralToAgent) => void | Promise<void>;
  heartbeatMs?: number;
  deadAfterMs?: number;
  backoff?: { baseMs?: number; maxMs?: number };
}

/**
 * The agent's one outbound link: a WebSocket over mutual TLS to the central, with an explicit state
 * machine (idle → connecting → handshaking → ready → backoff → connecting …, or stopped), heartbeats
 * both ways (a dead link is noticed within 30 s), reconnection with exponential backoff and jitter,
 * and the durable outbox drained in order on every (re)connect. With several central URLs (replicas), a
 * failed or lost link moves to the next URL; the backoff grows per pass over the list.
 */
export class Link {
  state: LinkState = 'idle';
  private ws: WebSocket | null = null;
  private readonly urls: CentralUrls;
  /** The next reconnect stays on the same URL (a deliberate reconnect, e.g. after a certificate renewal). */
  private stay = false;
  private timer: NodeJS.Timeout | null = null;
  private heartbeat: NodeJS.Timeout | null = null;
  private lastInbound = 0;
  private readonly listeners = new Set<(s: LinkState) => void>();
  /** Messages rejected as malformed. */
  rejected = 0;
  /** What the central announced in welcome (see Feature in shared/protocol/messages.ts). */
  private centralFeatures = new Set<Feature>();

  constructor(private readonly opts: LinkOptions) {
    this.urls = new CentralUrls(parseCentralUrls(opts.centralUrl));
    opts.outbox.onAdd = (m) => {
      if (this.state === 'ready') this.send(m);
    };
  }

  /** The central URL this link uses now (or dials next). */
  get centralUrl(): string {
    return this.urls.current;
  }

  onState(fn: (s: LinkState) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  private setState(s: LinkState): void {
    if (this.state === s) return;
    this.opts.logger.debug({ from: this.state, to: s }, 'link state');
    this.state = s;
    for (const l of this.listeners) l(s);
  }

  /** Whether the central announced `f` in its welcome (on this connection). */
  hasFeature(f: Feature): boolean {
    return this.state === 'ready' && this.centralFeatures.has(f);
  }

  /** Closes the connection and dials again at once (e.g. to present a renewed client certificate). */
  reconnect(reason: string): void {
    if (this.state === 'stopped' || !this.ws) return;
    this.opts.logger.info({ reason }, 'reconnecting');
    this.urls.succeeded();
    this.stay = true;
    this.ws.close(1000, reason);
  }

  start(): void {
    if (this.state !== 'idle' && this.state !== 'stopped') return;
    this.setState('idle');
    this.connect();
  }

  send(msg: AgentToCentral): boolean {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify(msg));
    return true;
  }

  private connect(): void {
    if (this.state === 'stopped') return;
    this.setState('connecting');
    const url = this.urls.current.replace(/^http/, 'ws') + '/api/v1/agents/connect';
    const ws = new WebSocket(url, {
      key: this.opts.tls.key,
      cert: this.opts.tls.cert,
      ca: this.opts.tls.ca,
      maxPayload: MAX_MESSAGE_BYTES,
      handshakeTimeout: 15_000,
    });
    this.ws = ws;
    ws.on('open', () => {
      this.setState('handshaking');
      this.lastInbound = Date.now();
      const h = this.opts.hello();
      this.send({ type: 'hello', v: PROTOCOL_VERSION, agentVersion: AGENT_VERSION, stateVersion: h.stateVersion, lastSeq: h.lastSeq, features: FEATURES });
      this.startHeartbeat();
    });
    ws.on('message', (data, isBinary) => void this.onFrame(isBinary ? data : data.toString()));
    ws.on('ping', () => (this.lastInbound = Date.now()));
    ws.on('pong', () => (this.lastInbound = Date.now()));
    ws.on('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (c: Buffer) => {
        if (body.length < 4096) body += c.toString().slice(0, 4096);
      });
      res.on('end', () => {
        this.opts.logger.error({ status: res.statusCode, reason: body.trim() }, 'the central refused the agent connection');
        // With an 'unexpected-response' listener, ws leaves aborting to us: without this the socket
        // stays CONNECTING forever, no 'close' comes and the link never retries.
        ws.terminate();
      });
      res.on('error', () => ws.terminate());
    });
    ws.on('error', (e) => this.opts.logger.warn({ err: e.message }, 'link error'));
    ws.on('close', (code, reason) => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.stopHeartbeat();
      if (this.state === 'stopped') return;
      this.opts.logger.info({ code, reason: reason.toString() }, 'link closed');
      this.scheduleReconnect();
    });
  }

  private scheduleReconnect(): void {
    this.setState('backoff');
    const round = this.urls.round;
    if (this.stay) this.stay = false;
    else this.urls.failed();
    const delay = backoffDelay(round, this.opts.backoff);
    this.timer = setTimeout(() => this.connect(), delay);
  }

  private startHeartbeat(): void {
    const every = this.opts.heartbeatMs ?? 10_000;
    const dead = this.opts.deadAfterMs ?? 30_000;
    this.heartbeat = setInterval(() => {
      if (Date.now() - this.lastInbound > dead) {
        this.opts.logger.warn({ deadAfterMs: dead }, 'no traffic from the central: link is dead, reconnecting');
        this.ws?.terminate();
        return;
      }
      this.send({ type: 'ping', t: Date.now() });
    }, every);
  }

  private stopHeartbeat(): void {
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.heartbeat = null;
  }

  private async onFrame(data: unknown): Promise<void> {
    this.lastInbound = Date.now();
    const parsed = parseMessage(CentralToAgent, data);
    if (!parsed.ok) {
      this.rejected++;
      this.opts.logger.warn({ reason: parsed.reason }, 'rejected a malformed message from the central');
      return;
    }
    const msg = parsed.msg;
    if (msg.type === 'ping') {
      this.send({ type: 'pong', t: msg.t });
      return;
    }
    if (msg.type === 'pong') return;
    if (msg.type === 'welcome') {
      this.urls.succeeded();
      this.centralFeatures = new Set(msg.features);
      this.setState('ready');
      this.opts.logger.info({ agent: msg.agent, site: msg.site, outbox: this.opts.outbox.size }, 'link ready');
      this.drainOutbox();
      return;
    }
    if (msg.type === 'ack') {
      // A full disk must not take the agent down: unrecorded acks only mean those messages are resent
      // (the central drops duplicates by id).
      await this.opts.outbox.ack(msg.ids).catch((e: Error) => this.opts.logger.warn({ err: e.message }, 'could not record acks from the central; the messages will be resent'));
      return;
    }
    if (msg.type === 'error') {
      this.opts.logger.warn({ code: msg.code, message: msg.message }, 'the central reported an error');
      return;
    }
    // Messages from the central are handled strictly in arrival order: a task must never be processed
    // before the desired state that came ahead of it has been stored (that write is async).
    const run = this.inbound.then(() => this.opts.onMessage(msg));
    this.inbound = run.catch((e: unknown) => this.opts.logger.error({ err: e }, 'error handling a message from the central'));
    await this.inbound;
  }

  private inbound: Promise<void> = Promise.resolve();

  /**
   * Sends every unacknowledged outbox message, in order. With a central that announced `batch`,
   * consecutive reports go out as `reports` frames (up to MAX_BATCH_ITEMS / about BATCH_FILL_BYTES each).
   */
  private drainOutbox(): void {
    const batch = this.centralFeatures.has('batch');
    let run: ReportMsg[] = [];
    let runBytes = 0;
    const flush = () => {
      if (run.length === 1) this.send(run[0]);
      else if (run.length > 1) this.send({ type: 'reports', items: run });
      run = [];
      runBytes = 0;
    };
    for (const m of this.opts.outbox.messages()) {
      if (!batch || m.type !== 'report') {
        flush();
        this.send(m);
        continue;
      }
      const bytes = (m.output?.length ?? 0) + 256;
      if (run.length >= MAX_BATCH_ITEMS || (run.length > 0 && runBytes + bytes > BATCH_FILL_BYTES)) flush();
      run.push(m);
      runBytes += bytes;
    }
    flush();
  }

  async stop(): Promise<void> {
    this.setState('stopped');
    if (this.timer) clearTimeout(this.timer);
    this.stopHeartbeat();
    const ws = this.ws;
    this.ws = null;
    if (ws) {
      await new Promise<void>((resolve) => {
        ws.once('close', () => resolve());
        ws.close(1000, 'agent stopping');
        setTimeout(() => {
          ws.terminate();
          resolve();
        }, 1000).unref();
      });
    }
  }
}
