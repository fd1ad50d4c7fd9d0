/**
 * Simulated site agents for the benchmarks (agents, workflows): joined through the API one by one as
 * `underlay agent join` does, then hosted in child processes (sim-agents.ts) that each hold one mutual-TLS
 * WebSocket per agent, verify every task and report it (see sim-agents.ts).
 *
 * Bench shortcut: all simulated agents share one RSA key and one CSR, so the bench does not spend minutes
 * generating keys; the central still issues each its own certificate, fingerprint and agent id.
 */
import { fork, type ChildProcess } from 'node:child_process';
import type { Agent } from 'node:https';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import sodium from 'libsodium-wrappers';
import { makeCsr } from '../../../shared/pki/csr.js';
import { call, callRetrying, isConnectionFailure, ok, pool, RetryCount, type Conn } from '../https-call.js';
import type { ChildMsg, ParentMsg, SimIdentity } from './ipc.js';

const SIM_CHILD = fileURLToPath(new URL('./sim-agents.js', import.meta.url));

/**
 * `count` agents, agent i at site `siteOf(i)` (created here), each joined with its own one-time token.
 * `via`: one central, or agent i's replica (it joins through it and links to it: SimIdentity.url).
 * A connection reset by a loaded central is retried (counted in `retries`): the site create (a 409 on a
 * retry means the first try made it), the token create (a spare token is harmless), and the join with a
 * fresh token (the lost try's token may be spent).
 */
export async function joinSims(
  via: Conn | ((i: number) => Conn),
  http: Agent,
  count: number,
  siteOf: (i: number) => string,
  retries = new RetryCount(),
): Promise<{ sims: SimIdentity[]; keyPem: string }> {
  await sodium.ready;
  const { keyPem, csrPem } = makeCsr('agent-candidate:bench');
  const seal = Buffer.from(sodium.crypto_box_keypair().publicKey).toString('base64');
  const sims = await pool(count, 16, async (i): Promise<SimIdentity> => {
    const site = siteOf(i);
    const conn = typeof via === 'function' ? via(i) : via;
    const before = retries.n;
    const created = await callRetrying(retries, conn, http, 'POST', '/api/v1/sites', { name: site });
    if (!(created.status === 409 && retries.n > before)) await ok(Promise.resolve(created), 'create site');
    const joined = await retryJoin(retries, async () => {
      const tok = await ok<{ token: string }>(callRetrying(retries, conn, http, 'POST', '/api/v1/tokens', { role: 'agent-join', site }), 'create token');
      const bearer = tok.token.split('.')[1];
      return ok<{ agent: { id: string }; certificate: string }>(call(conn, http, 'POST', '/api/v1/agents/join', { csr: csrPem, sealPublicKey: seal, name: `sim-${i}`, agentVersion: 'bench' }, bearer), 'join');
    });
    return { id: joined.agent.id, site, cert: joined.certificate, ...(typeof via === 'function' ? { url: conn.url } : {}) };
  });
  return { sims, keyPem };
}

/** A join whose connection was reset is made again from a new token (up to 5 times; each retry counted). */
async function retryJoin<T>(retries: RetryCount, join: () => Promise<T>): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await join();
    } catch (e) {
      if (!isConnectionFailure(e) || i >= 5) throw e;
      retries.n++;
      await new Promise((r) => setTimeout(r, 100 * i));
    }
  }
}

interface Child {
  proc: ChildProcess;
  messages: ChildMsg[];
  waiters: ((m: ChildMsg) => void)[];
}

/**
 * The child processes hosting the simulated agents (agent i in process i % procs). `doneAt` holds every
 * task whose `succeeded` report the central acknowledged (task id → wall-clock ms, comparable to nowMs()).
 */
export class SimProcesses {
  readonly doneAt = new Map<string, number>();
  private readonly children: Child[] = [];

  /** Forks `procs` children (`profileDir`: a V8 CPU profile of each there). */
  constructor(procs: number, profileDir?: string) {
    for (let k = 0; k < procs; k++) this.children.push(this.fork(profileDir));
  }

  /** Connects every agent (link, hello, welcome); resolves when all are connected. */
  async connect(conn: Conn, keyPem: string, publicKey: string, sims: SimIdentity[]): Promise<void> {
    await Promise.all(this.children.map((c) => this.expect(c, 'ready')));
    const n = this.children.length;
    this.children.forEach((c, k) => c.proc.send({ type: 'start', url: conn.url, ca: conn.ca, key: keyPem, publicKey, sims: sims.filter((_, i) => i % n === k) } satisfies ParentMsg));
    await Promise.all(this.children.map((c) => this.expect(c, 'connected')));
  }

  stats(): Promise<Extract<ChildMsg, { type: 'stats' }>[]> {
    return Promise.all(
      this.children.map(async (c) => {
        c.proc.send({ type: 'stats' } satisfies ParentMsg);
        return this.expect(c, 'stats');
      }),
    );
  }

  /** Totals over the children: tasks verified and rejected, CPU time (ms). */
  async totals(): Promise<{ verified: number; rejected: number; cpuMs: number }> {
    const s = await this.stats();
    return { verified: s.reduce((a, x) => a + x.verified, 0), rejected: s.reduce((a, x) => a + x.rejected, 0), cpuMs: s.reduce((a, x) => a + x.cpuMs, 0) };
  }

  /** 'stop' lets a child exit on its own (so --cpu-prof writes its profile); a stuck one is killed. */
  async stop(): Promise<void> {
    await Promise.all(
      this.children
        .filter((c) => c.proc.exitCode === null)
        .map(
          (c) =>
            new Promise<void>((resolve) => {
              const timer = setTimeout(() => c.proc.kill(), 10_000);
              c.proc.once('exit', () => (clearTimeout(timer), resolve()));
              c.proc.send({ type: 'stop' } satisfies ParentMsg);
            }),
        ),
    );
  }

  private fork(profileDir?: string): Child {
    const execArgv = profileDir ? ['--cpu-prof', `--cpu-prof-dir=${join(profileDir, 'sim-agents')}`] : [];
    const proc = fork(SIM_CHILD, [], { execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const child: Child = { proc, messages: [], waiters: [] };
    proc.on('exit', (code) => {
      for (const w of child.waiters.splice(0)) w({ type: 'failed', error: `simulated-agent process exited (${code})` });
    });
    proc.on('message', (m: ChildMsg) => {
      if (m.type === 'done') for (const [id, t] of m.items) this.doneAt.set(id, t);
      else {
        const w = child.waiters.shift();
        if (w) w(m);
        else child.messages.push(m);
      }
    });
    return child;
  }

  private next(c: Child): Promise<ChildMsg> {
    const m = c.messages.shift();
    if (m) return Promise.resolve(m);
    if (c.proc.exitCode !== null) return Promise.resolve({ type: 'failed', error: `simulated-agent process exited (${c.proc.exitCode})` });
    return new Promise((resolve) => c.waiters.push(resolve));
  }

  private async expect<T extends ChildMsg['type']>(c: Child, type: T): Promise<Extract<ChildMsg, { type: T }>> {
    const m = await this.next(c);
    if (m.type === 'failed') throw new Error(`simulated agents: ${m.error}`);
    if (m.type !== type) throw new Error(`simulated agents: expected ${type}, got ${m.type}`);
    return m as Extract<ChildMsg, { type: T }>;
  }
}
