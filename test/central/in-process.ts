import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { WebSocket } from 'ws';
import { silentLogger, type Logger } from '../../shared/log/logger.js';
import { makeCsr } from '../../shared/pki/csr.js';
import { FEATURES, type CentralToAgent } from '../../shared/protocol/messages.js';
import { startCentral, type RunningCentral } from '../../central/server/serve.js';
import type { CentralOptions } from '../../central/server/options.js';
import { httpCall, tempDir, type HttpResult, type RequestOptions } from './support.js';

/**
 * A real central started in this test process (HTTPS on a loopback port, the production features), for
 * suites that need no built CLI: requests with any token, tokens per role and site, and simulated agents
 * that join with a CSR and hold the mutual-TLS WebSocket as `underlay agent run` does.
 */
export interface InProcessCentral {
  running: RunningCentral;
  dir: string;
  url: string;
  ca: string;
  adminToken: string;
  request(method: string, path: string, opts?: RequestOptions): Promise<HttpResult>;
  token(role: 'admin' | 'operator' | 'viewer' | 'agent-join', site?: string): Promise<string>;
  /** Joins through this central; `connectUrl`: hold the WebSocket to another replica sharing its store and CA. */
  joinAgent(site: string, name?: string, connectUrl?: string): Promise<SimAgent>;
  /** Opens a new link for an agent that joined before (this central or an earlier run of it), with its own certificate. */
  reconnectAgent(agent: SimAgent): Promise<SimAgent>;
  close(): Promise<void>;
}

export interface SimAgent {
  id: string;
  site: string;
  /** Every frame the central sent, parsed. */
  frames: CentralToAgent[];
  /** Sends an event as the agent's outbox would (resolves when the central acknowledged it). */
  event(kind: string, data: unknown): Promise<void>;
  /** Sends a task report as the agent would (resolves when the central acknowledged it, i.e. applied it durably). */
  report(taskId: string, state: 'accepted' | 'running' | 'succeeded' | 'failed' | 'rejected', reason?: string, extra?: { output?: string; exitCode?: number }): Promise<void>;
  close(): void;
  /** The agent's key and certificate (reconnectAgent). */
  keyPem: string;
  certificate: string;
}

/** `dir`: reuse a data directory (a restart); it is then left for the caller to remove. */
export async function startInProcessCentral(opts: { logger?: Logger; dir?: string; options?: Partial<CentralOptions> } = {}): Promise<InProcessCentral> {
  const dir = opts.dir ?? tempDir('underlay-inproc-');
  const running = await startCentral({ data: join(dir, 'data'), listen: '127.0.0.1:0', logger: opts.logger ?? silentLogger, ...opts.options });
  const ca = running.identity.ca.certPem;
  const adminToken = readFileSync(join(dir, 'data', 'admin.token'), 'utf8').trim();
  const request = (method: string, path: string, o: RequestOptions = {}) => httpCall(running.url, ca, method, path, { token: adminToken, ...o });
  const sims: SimAgent[] = [];

  const token = async (role: 'admin' | 'operator' | 'viewer' | 'agent-join', site?: string) => {
    const r = await request('POST', '/api/v1/tokens', { body: { role, ...(site ? { site } : {}) } });
    if (r.status !== 201) throw new Error(`token create: ${r.status} ${r.text}`);
    return role === 'agent-join' ? /^ulj1\.(ul_[^.]+)\.[0-9a-f]{64}$/.exec(r.json.token)![1] : (r.json.token as string);
  };

  const connect = async (id: string, site: string, keyPem: string, certificate: string, connectUrl = running.url): Promise<SimAgent> => {
    const frames: CentralToAgent[] = [];
    const acked = new Map<string, () => void>();
    const ws = new WebSocket(connectUrl.replace('https', 'wss') + '/api/v1/agents/connect', { key: keyPem, cert: certificate, ca, perMessageDeflate: false });
    await new Promise<void>((resolve, reject) => {
      ws.on('open', () => ws.send(JSON.stringify({ type: 'hello', v: 1, agentVersion: 'test', stateVersion: null, lastSeq: 0, features: FEATURES })));
      ws.on('error', reject);
      ws.on('message', (data) => {
        const msg = JSON.parse(String(data)) as CentralToAgent;
        frames.push(msg);
        if (msg.type === 'welcome') resolve();
        if (msg.type === 'ack') for (const id of msg.ids) acked.get(id)?.();
      });
    });
    const sim: SimAgent = {
      id,
      site,
      frames,
      keyPem,
      certificate,
      event: (kind, data) =>
        new Promise<void>((resolve) => {
          const id = crypto.randomUUID();
          acked.set(id, resolve);
          ws.send(JSON.stringify({ type: 'event', id, kind, data, at: new Date().toISOString() }));
        }),
      report: (taskId, state, reason, extra) =>
        new Promise<void>((resolve) => {
          const id = crypto.randomUUID();
          acked.set(id, resolve);
          ws.send(JSON.stringify({ type: 'report', id, taskId, state, ...(reason ? { reason } : {}), ...extra, at: new Date().toISOString() }));
        }),
      close: () => ws.terminate(),
    };
    sims.push(sim);
    return sim;
  };

  const joinAgent = async (site: string, name = `sim-${sims.length + 1}`, connectUrl = running.url): Promise<SimAgent> => {
    const { keyPem, csrPem } = makeCsr('agent-candidate:test');
    const join = await request('POST', '/api/v1/agents/join', { token: await token('agent-join', site), body: { csr: csrPem, sealPublicKey: Buffer.alloc(32, 7).toString('base64'), name, agentVersion: 'test' } });
    if (join.status !== 201) throw new Error(`join: ${join.status} ${join.text}`);
    return connect(join.json.agent.id, site, keyPem, join.json.certificate, connectUrl);
  };

  return {
    running,
    dir,
    url: running.url,
    ca,
    adminToken,
    request,
    token,
    joinAgent,
    reconnectAgent: (a) => connect(a.id, a.site, a.keyPem, a.certificate),
    close: async () => {
      for (const s of sims) s.close();
      await running.close();
      if (!opts.dir) rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Task ids among the frames an agent received. */
export function taskIdsIn(frames: CentralToAgent[]): string[] {
  return frames.flatMap((f) => (f.type === 'task' ? [f.task] : f.type === 'tasks' ? f.tasks : [])).map((t) => (JSON.parse(Buffer.from(t.canonical, 'base64').toString('utf8')) as { id: string }).id);
}
