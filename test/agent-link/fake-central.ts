import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import sodium from 'libsodium-wrappers';
import { WebSocketServer, type WebSocket } from 'ws';
import { signTask, type SignedTask, type TaskEnvelope } from '../../shared/envelope/envelope.js';
import type { DesiredState } from '../../shared/protocol/desired-state.js';

/**
 * A stand-in for the central's agent endpoint, for injecting what a real central never sends (forged,
 * tampered, expired, replayed, misaddressed tasks; malformed frames). It is what an attacker on the path
 * or a compromised relay could be: it holds a server certificate the agent trusts (the real central's,
 * from its data dir), so TLS succeeds, and it verifies the agent's client certificate against the real
 * CA, as the central does. Whether a task is genuine is then down to the Ed25519 signature alone: the
 * "genuine" cases sign with the real central's DIR/signing.key, forgeries with a fresh key.
 */
export interface AgentFrame {
  type: string;
  [k: string]: unknown;
}

export class FakeCentral {
  readonly frames: AgentFrame[] = [];
  /** Connections that completed hello. */
  hellos = 0;
  connections = 0;
  closes: { code: number; reason: string }[] = [];
  current: WebSocket | null = null;
  signingKey!: Uint8Array;
  url = '';
  private server!: Server;
  private wss!: WebSocketServer;

  constructor(
    private readonly dataDir: string,
    private readonly identity: { agent: string; site: string },
    private readonly state?: DesiredState,
  ) {}

  async start(): Promise<void> {
    await sodium.ready;
    const key = JSON.parse(readFileSync(join(this.dataDir, 'signing.key'), 'utf8')) as { privateKey: string };
    this.signingKey = new Uint8Array(Buffer.from(key.privateKey, 'base64'));
    const ca = readFileSync(join(this.dataDir, 'ca.pem'), 'utf8');
    this.server = createServer({
      key: readFileSync(join(this.dataDir, 'server.key')),
      cert: readFileSync(join(this.dataDir, 'server.pem'), 'utf8') + ca,
      ca,
      requestCert: true,
      rejectUnauthorized: true,
    });
    this.wss = new WebSocketServer({ server: this.server, maxPayload: 64 * 1024 * 1024 });
    this.wss.on('connection', (ws, req) => {
      if (!(req.socket as TLSSocket).authorized) return ws.close(4001, 'no client certificate');
      this.connections++;
      this.current = ws;
      ws.on('close', (code, reason) => this.closes.push({ code, reason: reason.toString() }));
      ws.on('error', () => undefined);
      ws.on('message', (data) => {
        let m: AgentFrame;
        try {
          m = JSON.parse(data.toString()) as AgentFrame;
        } catch {
          return;
        }
        this.frames.push(m);
        if (m.type === 'hello') {
          this.hellos++;
          ws.send(JSON.stringify({ type: 'welcome', v: 1, agent: this.identity.agent, site: this.identity.site, serverTime: new Date().toISOString() }));
          if (this.state) ws.send(JSON.stringify({ type: 'state', state: this.state }));
        } else if (m.type === 'report' || m.type === 'event') {
          ws.send(JSON.stringify({ type: 'ack', ids: [m.id] }));
        } else if (m.type === 'ping') {
          ws.send(JSON.stringify({ type: 'pong', t: m.t }));
        }
      });
    });
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `https://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  envelope(seq: number, over: Partial<TaskEnvelope> = {}): TaskEnvelope {
    const now = Date.now();
    return {
      v: 1,
      id: `fake-${seq}-${Math.random().toString(36).slice(2, 10)}`,
      site: this.identity.site,
      agent: this.identity.agent,
      seq,
      kind: 'ping',
      machine: null,
      payload: {},
      issuedAt: new Date(now).toISOString(),
      expiresAt: new Date(now + 600_000).toISOString(),
      ...over,
    };
  }

  sign(env: TaskEnvelope, key = this.signingKey): SignedTask {
    return signTask(env, key);
  }

  sendTask(task: SignedTask | unknown): void {
    this.send(JSON.stringify({ type: 'task', task }));
  }

  send(data: string | Buffer): void {
    if (!this.current || this.current.readyState !== this.current.OPEN) throw new Error('no agent connected to the fake central');
    this.current.send(data);
  }

  reports(taskId?: string): AgentFrame[] {
    return this.frames.filter((f) => f.type === 'report' && (!taskId || f.taskId === taskId));
  }

  async close(): Promise<void> {
    for (const c of this.wss?.clients ?? []) c.terminate();
    this.wss?.close();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}
