import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { Agent, request as httpsRequest } from 'node:https';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../support/ports.js';
import { acquireDirLock, DirLockedError, type LockHolder } from '../../shared/fs/dir-lock.js';

/**
 * Test support for suites that run a real central: spawn the built CLI (`underlay central serve`) on a
 * free loopback port, wait until /healthz answers over HTTPS verified against DIR/ca.pem, read the admin
 * token and CA the first start wrote, talk to it, and kill it (by PID) afterwards.
 */
export const REPO = fileURLToPath(new URL('../..', import.meta.url));
export const CLI = join(REPO, 'dist/shared/cli/underlay.js');

export function requireBuild(): void {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run "npx tsc -p . && node scripts/postbuild.mjs" first`);
}

/**
 * For an agent run on the host (not in a namespace): its metrics listener on a port the kernel picks. The
 * default, 127.0.0.1:9464, is one port for the whole host, and test files run side by side
 * (test/support/lanes.ts): two host agents at once would collide. test/metrics/agent-metrics.test.ts keeps
 * the default, inside its own namespace.
 */
export const HOST_AGENT_ENV = { UNDERLAY_METRICS_LISTEN: '127.0.0.1:0' } as const;

/** An environment without UNDERLAY_* variables, so a test never picks up a developer's settings. */
export function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('UNDERLAY_')) env[k] = v;
  return { ...env, UNDERLAY_LOG_LEVEL: 'warn', ...extra };
}

/** Loopback ports for tests that must name one up front: see test/support/ports.ts. */
export { freePort };

export function tempDir(prefix = 'underlay-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export interface HttpResult {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  /** The parsed JSON body (undefined when the body is not JSON). */
  json: any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

export interface RequestOptions {
  token?: string | null;
  /** An object is sent as JSON; a string or Buffer is sent as is (set content-type yourself). */
  body?: unknown;
  headers?: Record<string, string>;
  agent?: Agent;
  /** Override the CA (null: trust nothing extra). */
  ca?: string | null;
  /** Abort with an error naming the request if no answer comes within this many ms (a hang guard). */
  timeoutMs?: number;
}

/** One HTTP(S) request; never throws for an HTTP status, only for transport errors. */
export function httpCall(baseUrl: string, ca: string | undefined, method: string, path: string, opts: RequestOptions = {}): Promise<HttpResult> {
  const u = new URL(baseUrl + path);
  const headers: Record<string, string> = { accept: 'application/json', ...opts.headers };
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  let payload: Buffer | undefined;
  if (opts.body !== undefined) {
    if (typeof opts.body === 'string' || Buffer.isBuffer(opts.body)) payload = Buffer.from(opts.body as string | Buffer);
    else {
      payload = Buffer.from(JSON.stringify(opts.body));
      headers['content-type'] ??= 'application/json';
    }
    headers['content-length'] = String(payload.length);
  }
  const send = u.protocol === 'https:' ? httpsRequest : httpRequest;
  const tls = u.protocol === 'https:' ? { ca: opts.ca === null ? undefined : (opts.ca ?? ca), ...(opts.agent ? { agent: opts.agent } : {}) } : {};
  return new Promise((resolve, reject) => {
    const req = send(u, { method, headers, ...tls }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json: unknown;
        if (String(res.headers['content-type'] ?? '').includes('json') && text) {
          try {
            json = JSON.parse(text);
          } catch {
            json = undefined;
          }
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
      });
    });
    req.on('error', reject);
    if (opts.timeoutMs) {
      req.setTimeout(opts.timeoutMs, () => req.destroy(new Error(`no answer to ${method} ${path} within ${opts.timeoutMs} ms`)));
    }
    if (payload) req.write(payload);
    req.end();
  });
}

export interface SpawnCentralOptions {
  /** Data directory; a fresh temp dir (removed by cleanup()) when omitted. */
  dataDir?: string;
  /** HOST:PORT; 127.0.0.1:<free port> when omitted. */
  listen?: string;
  /** Extra arguments after `central serve --data DIR --listen ADDR`. */
  args?: string[];
  env?: Record<string, string>;
  /** A command to run the central under, e.g. ['unshare', '--pid', '--fork', '--mount-proc']. */
  wrap?: string[];
  /** Resolve as soon as the process exits instead of waiting for it to listen (for refusal tests). */
  expectExit?: boolean;
}

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export class CentralProcess {
  url = '';
  port = 0;
  token = '';
  ca = '';
  private out = '';
  private err = '';
  readonly exited: Promise<ExitInfo>;
  exitInfo: ExitInfo | null = null;

  constructor(
    readonly proc: ChildProcess,
    readonly dataDir: string,
    /** A temp dir this helper created (removed by cleanup()). */
    private readonly removeOnCleanup?: string,
  ) {
    proc.stdout!.setEncoding('utf8').on('data', (d: string) => (this.out += d));
    proc.stderr!.setEncoding('utf8').on('data', (d: string) => (this.err += d));
    this.exited = new Promise((resolve) => proc.once('exit', (code, signal) => resolve((this.exitInfo = { code, signal }))));
  }

  get pid(): number {
    return this.proc.pid!;
  }
  get stdout(): string {
    return this.out;
  }
  get stderr(): string {
    return this.err;
  }
  get caPath(): string {
    return join(this.dataDir, 'ca.pem');
  }
  get running(): boolean {
    return this.exitInfo === null;
  }

  request(method: string, path: string, opts: RequestOptions = {}): Promise<HttpResult> {
    return httpCall(this.url, this.ca, method, path, { token: this.token, ...opts });
  }

  /** Sends a signal and waits for the exit. */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<ExitInfo> {
    if (this.running) {
      try {
        process.kill(this.pid, signal);
      } catch {
        /* already gone */
      }
    }
    return this.exited;
  }

  /** kill -9 and wait. */
  kill(): Promise<ExitInfo> {
    return this.stop('SIGKILL');
  }

  /** Kills the process if it still runs and removes the data dir if this helper created it. */
  async cleanup(): Promise<void> {
    await this.kill();
    if (this.removeOnCleanup) rmSync(this.removeOnCleanup, { recursive: true, force: true });
  }
}

const live = new Set<CentralProcess>();

/** Spawns `underlay central serve` as an operator would and waits until it answers /healthz over verified HTTPS. */
export async function spawnCentral(opts: SpawnCentralOptions = {}): Promise<CentralProcess> {
  requireBuild();
  const parent = opts.dataDir ? undefined : tempDir('underlay-central-');
  const dataDir = opts.dataDir ?? join(parent!, 'data');
  const listen = opts.listen ?? `127.0.0.1:${await freePort()}`;
  const argv = [process.execPath, CLI, 'central', 'serve', '--data', dataDir, '--listen', listen, ...(opts.args ?? [])];
  const [cmd, ...args] = [...(opts.wrap ?? []), ...argv];
  const proc = spawn(cmd, args, {
    cwd: REPO,
    env: cleanEnv(opts.env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const central = new CentralProcess(proc, dataDir, parent);
  live.add(central);
  central.exited.then(() => live.delete(central));
  if (opts.expectExit) {
    await central.exited;
    return central;
  }

  // Wait for "central listening on URL", then poll /healthz over HTTPS verified against the CA.
  const deadline = Date.now() + 180_000; // a hang guard, not a performance assertion (RSA keygen on a busy box)
  while (!/central listening on (\S+)/.test(central.stdout)) {
    if (!central.running) throw new Error(`central exited (${JSON.stringify(central.exitInfo)}) before listening:\n${central.stderr}`);
    if (Date.now() > deadline) {
      await central.cleanup();
      throw new Error(`central did not start:\n${central.stdout}\n${central.stderr}`);
    }
    await sleep(50);
  }
  central.url = /central listening on (\S+)/.exec(central.stdout)![1];
  central.port = Number(new URL(central.url).port);
  if (existsSync(central.caPath)) central.ca = readFileSync(central.caPath, 'utf8');
  const tokenFile = join(dataDir, 'admin.token');
  if (existsSync(tokenFile)) central.token = readFileSync(tokenFile, 'utf8').trim();
  for (;;) {
    try {
      const r = await httpCall(central.url, central.ca, 'GET', '/healthz');
      if (r.status === 200) break;
    } catch {
      /* not yet */
    }
    if (!central.running || Date.now() > deadline) {
      await central.cleanup();
      throw new Error(`central never answered /healthz:\n${central.stderr}`);
    }
    await sleep(50);
  }
  return central;
}

/** Kills every central this process spawned and has not stopped yet (use in afterAll as a safety net). */
export async function killAllCentrals(): Promise<void> {
  await Promise.all([...live].map((c) => c.kill()));
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the built `underlay` CLI as a user would, with a clean environment plus `env`. */
export function runCli(args: string[], opts: { env?: Record<string, string>; cwd?: string } = {}): Promise<CliResult> {
  requireBuild();
  return runProcess(process.execPath, [CLI, ...args], { cwd: opts.cwd ?? tmpdir(), env: cleanEnv(opts.env) });
}

/** Runs a program to its end and collects its exit code and output (no stdin). */
export function runProcess(cmd: string, args: string[], opts: { cwd: string; env: NodeJS.ProcessEnv }): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { cwd: opts.cwd, env: opts.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    p.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    p.once('error', reject);
    p.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Who holds the data-dir lock of `dir` (null: nobody), asked through the lock itself. */
export async function lockHolder(dir: string): Promise<LockHolder | null> {
  try {
    await (await acquireDirLock(dir, 'test')).release();
    return null;
  } catch (e) {
    if (e instanceof DirLockedError) return e.holder;
    throw e;
  }
}

/** The lock sockets in `dir` (a dead holder leaves its socket file behind). */
export function lockSockets(dir: string): string[] {
  return readdirSync(dir).filter((f) => /^lock\.\d+\.sock$/.test(f));
}
