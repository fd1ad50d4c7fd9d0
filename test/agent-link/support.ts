import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { cleanEnv, CLI, HOST_AGENT_ENV, REPO, requireBuild, runCli, sleep, spawnCentral, tempDir, type CentralProcess, type CliResult } from '../central/support.js';

export { cleanEnv, CLI, REPO, runCli, sleep, spawnCentral, tempDir, type CentralProcess, type CliResult };

/**
 * Support for the agent-link suites: real `underlay agent run` processes (spawned from the built CLI,
 * killed by PID), join helpers, and polling. Centrals come from test/central/support.ts.
 */

/** Polls `fn` until it returns a truthy value; throws after `timeoutMs` (a hang guard, not a performance bound). */
export async function waitFor<T>(what: string, fn: () => T | Promise<T>, timeoutMs = 60_000, everyMs = 100): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v as NonNullable<T>;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? ` (last error: ${(last as Error).message})` : ''}`);
    await sleep(everyMs);
  }
}

export interface LogLine {
  level: number;
  time: number;
  msg: string;
  [k: string]: unknown;
}

export class AgentProcess {
  private out = '';
  private err = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  exitInfo: { code: number | null; signal: NodeJS.Signals | null } | null = null;

  constructor(
    readonly proc: ChildProcess,
    readonly stateDir: string,
  ) {
    proc.stdout!.setEncoding('utf8').on('data', (d: string) => (this.out += d));
    proc.stderr!.setEncoding('utf8').on('data', (d: string) => (this.err += d));
    this.exited = new Promise((resolve) => proc.once('exit', (code, signal) => resolve((this.exitInfo = { code, signal }))));
  }
  get pid(): number {
    return this.proc.pid!;
  }
  get running(): boolean {
    return this.exitInfo === null;
  }
  get stderr(): string {
    return this.err;
  }
  /** The agent's structured (pino) log lines. */
  logs(): LogLine[] {
    return this.err
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => {
        try {
          return JSON.parse(l) as LogLine;
        } catch {
          return null;
        }
      })
      .filter((l): l is LogLine => l !== null);
  }
  count(msg: string | RegExp): number {
    return this.logs().filter((l) => (typeof msg === 'string' ? l.msg === msg : msg.test(l.msg))).length;
  }
  waitLog(msg: string | RegExp, atLeast = 1, timeoutMs = 60_000): Promise<LogLine> {
    return waitFor(`agent log "${msg}" ×${atLeast}\n${this.err.slice(-3000)}`, () => {
      if (!this.running && this.count(msg) < atLeast) throw new Error(`agent exited ${JSON.stringify(this.exitInfo)}: ${this.err.slice(-2000)}`);
      const hits = this.logs().filter((l) => (typeof msg === 'string' ? l.msg === msg : msg.test(l.msg)));
      return hits.length >= atLeast ? hits[atLeast - 1] : undefined;
    }, timeoutMs);
  }
  signal(sig: NodeJS.Signals): void {
    if (this.running) process.kill(this.pid, sig);
  }
  async stop(sig: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    if (this.running) {
      try {
        process.kill(this.pid, sig);
      } catch {
        /* gone */
      }
    }
    await this.exited;
  }
  kill(): Promise<void> {
    return this.stop('SIGKILL');
  }
}

const liveAgents = new Set<AgentProcess>();

/** `underlay agent run --state DIR` (info-level logs, so tests can follow the link's states). */
export function spawnAgent(stateDir: string, opts: { central?: string; env?: Record<string, string> } = {}): AgentProcess {
  requireBuild();
  const args = [CLI, 'agent', 'run', '--state', stateDir, ...(opts.central ? ['--central', opts.central] : [])];
  const proc = spawn(process.execPath, args, { cwd: REPO, env: cleanEnv({ UNDERLAY_LOG_LEVEL: 'info', ...HOST_AGENT_ENV, ...opts.env }), stdio: ['ignore', 'pipe', 'pipe'] });
  const a = new AgentProcess(proc, stateDir);
  liveAgents.add(a);
  a.exited.then(() => liveAgents.delete(a));
  return a;
}

export async function killAllAgents(): Promise<void> {
  await Promise.all([...liveAgents].map((a) => {
    try {
      process.kill(a.pid, 'SIGCONT');
    } catch {
      /* gone */
    }
    return a.kill();
  }));
}

/** A 2xx answer's JSON, or an error naming the call. */
export async function api<T = any>(central: CentralProcess, method: string, path: string, body?: unknown): Promise<T> { // eslint-disable-line @typescript-eslint/no-explicit-any
  const r = await central.request(method, path, body === undefined ? {} : { body });
  if (r.status < 200 || r.status >= 300) throw new Error(`${method} ${path} → ${r.status} ${r.text}`);
  return r.json as T;
}

export async function createSite(central: CentralProcess, site: string, machines: { name: string; mac: string }[] = []): Promise<Record<string, string>> {
  await api(central, 'POST', '/api/v1/sites', { name: site });
  const ids: Record<string, string> = {};
  for (const m of machines) ids[m.name] = (await api<{ id: string }>(central, 'POST', '/api/v1/machines', { name: m.name, site, macs: [m.mac] })).id;
  return ids;
}

export async function joinToken(central: CentralProcess, site: string, ttl?: string): Promise<{ token: string; id: string; expiresAt?: string }> {
  return api(central, 'POST', '/api/v1/tokens', { role: 'agent-join', site, ...(ttl ? { ttl } : {}) });
}

export function agentJoin(centralUrl: string, token: string, stateDir: string, name: string): Promise<CliResult> {
  return runCli(['agent', 'join', '--central', centralUrl, '--token', token, '--state', stateDir, '--name', name]);
}

/** Joins a fresh agent for `site` into `stateDir`; returns its id. */
export async function joinAgent(central: CentralProcess, site: string, stateDir: string, name = 'agent-' + site): Promise<string> {
  const { token } = await joinToken(central, site);
  const r = await agentJoin(central.url, token, stateDir, name);
  if (r.code !== 0) throw new Error(`agent join failed: ${r.stderr}`);
  return (JSON.parse(readFileSync(join(stateDir, 'agent.json'), 'utf8')) as { agentId: string }).agentId;
}

export async function isConnected(central: CentralProcess, agentId: string): Promise<boolean> {
  const a = await api<{ connected: boolean }>(central, 'GET', `/api/v1/agents/${agentId}`);
  return a.connected;
}

export interface TaskView {
  id: string;
  state: string;
  seq: number;
  reason?: string;
  output?: string;
  history: { state: string; at: string; reportId?: string; reason?: string }[];
}

export const getTask = (central: CentralProcess, id: string) => api<TaskView>(central, 'GET', `/api/v1/tasks/${id}`);
export const createTask = (central: CentralProcess, body: Record<string, unknown>) => api<TaskView>(central, 'POST', '/api/v1/tasks', body);
export async function allTasks(central: CentralProcess, site: string): Promise<TaskView[]> {
  return (await api<{ items: TaskView[] }>(central, 'GET', `/api/v1/tasks?site=${site}&limit=10000`)).items;
}

/** Reads a JSONL file of the agent's state dir (complete lines only). */
export function readJsonl<T = any>(path: string): T[] { // eslint-disable-line @typescript-eslint/no-explicit-any
  if (!existsSync(path)) return [];
  const out: T[] = [];
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    if (!line) continue;
    try {
      out.push(JSON.parse(line) as T);
    } catch {
      /* torn tail */
    }
  }
  return out;
}

export function removeDir(dir: string | undefined): void {
  if (dir) rmSync(dir, { recursive: true, force: true });
}
