/**
 * Benchmark: many simulated site agents against one real central (spawned from the built CLI).
 *
 *   npx tsc -p . && node scripts/postbuild.mjs
 *   node dist/scripts/bench/agents/run.js [--agents 1000] [--tasks 20000] [--inflight 256] [--batch 1] [--procs N] [--replicas 1] [--profile DIR] [--keep]
 *
 * --replicas N (issue 17): N central replicas on one throwaway PostgreSQL (root and PostgreSQL's binaries
 * needed; the cluster lives in a temp dir on loopback and is removed after). Agent i joins through and
 * links to replica i % N; the task for agent i is created through replica (i + 1) % N, so with 2 every
 * task crosses replicas (created on one, delivered by the other). Default 1: one central on its file store.
 *
 * --batch N creates tasks N at a time through POST /api/v1/tasks/batch (one request, one durable write).
 *
 * Each simulated agent has its own site and its own joined identity: a one-time agent-join token and a
 * POST /api/v1/agents/join with a CSR, exactly as `underlay agent join` does (bench shortcut: all
 * simulated agents share one RSA key and one CSR, so the bench does not spend minutes generating keys;
 * the central still issues each its own certificate, fingerprint and agent id). Each then holds one
 * mutual-TLS WebSocket, sends hello, and for every task verifies the Ed25519 signature over the exact
 * bytes, the addressee, the expiry and the sequence (as agent/tasks/executor.ts does) before reporting
 * `accepted` and `succeeded`. A task counts as done when the central acknowledges the `succeeded`
 * report (the ack is sent after the report is durably recorded).
 *
 * --procs N: the simulated agents live in N child processes (sim-agents.ts; agent i in process i % N),
 * so their signature checks do not queue behind this process's HTTP client and bookkeeping. Default: one
 * per core beyond the central's (1 on a 2-core machine, where 2 measured slower: three busy processes on
 * two cores). This
 * process does the setup and joins, creates the tasks and does the latency accounting; the children
 * report each acknowledged task (id + wall-clock time) over IPC.
 *
 * Reported: connected agents (as the central's API sees them), signed tasks/s end to end
 * (create via the API → delivered → verified → reported → recorded), p50/p99 create→succeeded latency.
 */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import sodium from 'libsodium-wrappers';
import { makeCsr } from '../../../shared/pki/csr.js';
import { freePort } from '../free-port.js';
import { cloneIdentity } from '../../../test/ha/replicas.js';
import { TestPostgres } from '../../../test/support/postgres.js';
import { nowMs, type ChildMsg, type ParentMsg, type SimIdentity } from './ipc.js';

const { values: args } = parseArgs({
  options: {
    agents: { type: 'string', default: '1000' },
    tasks: { type: 'string', default: '20000' },
    inflight: { type: 'string', default: '256' },
    /** Tasks per create request (1: POST /api/v1/tasks; more: POST /api/v1/tasks/batch). */
    batch: { type: 'string', default: '1' },
    /** Write V8 CPU profiles of the central to this directory, of the simulated-agent processes to DIR/sim-agents. */
    profile: { type: 'string' },
    /** Central replicas sharing one throwaway PostgreSQL (1: one central on the embedded file store). */
    replicas: { type: 'string', default: '1' },
    /** Processes hosting the simulated agents (agent i lives in process i % procs); default: one per core beyond the central's. */
    procs: { type: 'string', default: String(Math.max(1, availableParallelism() - 1)) },
    keep: { type: 'boolean', default: false },
  },
});
const AGENTS = Number(args.agents);
const TASKS = Number(args.tasks);
const INFLIGHT = Number(args.inflight);
const BATCH = Math.max(1, Math.min(1000, Number(args.batch)));
const PROCS = Math.max(1, Number(args.procs));
const REPLICAS = Math.max(1, Number(args.replicas));
const SIM_CHILD = fileURLToPath(new URL('./sim-agents.js', import.meta.url));
const CLI = fileURLToPath(new URL('../../../shared/cli/underlay.js', import.meta.url));


interface Conn { url: string; ca: string; token: string }
let httpAgent = new Agent({ keepAlive: true, maxSockets: 64 });
function call<T = any>(conn: Conn, method: string, path: string, body?: unknown, token = conn.token): Promise<{ status: number; json: T; text: string }> { // eslint-disable-line @typescript-eslint/no-explicit-any
  const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
  return new Promise((resolve, reject) => {
    const req = request(conn.url + path, {
      method, agent: httpAgent, ca: conn.ca,
      headers: { authorization: `Bearer ${token}`, accept: 'application/json', ...(payload ? { 'content-type': 'application/json', 'content-length': String(payload.length) } : {}) },
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json: T = undefined as T;
        try { json = JSON.parse(text) as T; } catch { /* not JSON */ }
        resolve({ status: res.statusCode ?? 0, json, text });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    if (payload) req.write(payload);
    req.end();
  });
}
async function ok<T = any>(p: Promise<{ status: number; json: T; text: string }>, what: string): Promise<T> { // eslint-disable-line @typescript-eslint/no-explicit-any
  const r = await p;
  if (r.status < 200 || r.status >= 300) throw new Error(`${what}: ${r.status} ${r.text}`);
  return r.json;
}
async function pool<T>(n: number, concurrency: number, fn: (i: number) => Promise<T>): Promise<T[]> {
  const out: T[] = new Array(n);
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(concurrency, n) }, async () => {
    while (next < n) {
      const i = next++;
      out[i] = await fn(i);
    }
  }));
  return out;
}
const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};

// ---- the simulated agents live in child processes (sim-agents.ts), PROCS of them
interface Child { proc: ChildProcess; messages: ChildMsg[]; waiters: ((m: ChildMsg) => void)[] }
const doneAt = new Map<string, number>();
const children: Child[] = [];

function forkChild(): Child {
  const execArgv = args.profile ? ['--cpu-prof', `--cpu-prof-dir=${join(args.profile, 'sim-agents')}`] : [];
  const proc = fork(SIM_CHILD, [], { execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const child: Child = { proc, messages: [], waiters: [] };
  proc.on('exit', (code) => {
    for (const w of child.waiters.splice(0)) w({ type: 'failed', error: `simulated-agent process exited (${code})` });
  });
  proc.on('message', (m: ChildMsg) => {
    if (m.type === 'done') for (const [id, t] of m.items) doneAt.set(id, t);
    else {
      const w = child.waiters.shift();
      if (w) w(m);
      else child.messages.push(m);
    }
  });
  return child;
}
function nextMessage(c: Child): Promise<ChildMsg> {
  const m = c.messages.shift();
  if (m) return Promise.resolve(m);
  if (c.proc.exitCode !== null) return Promise.resolve({ type: 'failed', error: `simulated-agent process exited (${c.proc.exitCode})` });
  return new Promise((resolve) => c.waiters.push(resolve));
}
async function expect<T extends ChildMsg['type']>(c: Child, type: T): Promise<Extract<ChildMsg, { type: T }>> {
  const m = await nextMessage(c);
  if (m.type === 'failed') throw new Error(`simulated agents: ${m.error}`);
  if (m.type !== type) throw new Error(`simulated agents: expected ${type}, got ${m.type}`);
  return m as Extract<ChildMsg, { type: T }>;
}

function childStats(): Promise<Extract<ChildMsg, { type: 'stats' }>[]> {
  return Promise.all(children.map(async (c) => {
    c.proc.send({ type: 'stats' } satisfies ParentMsg);
    return expect(c, 'stats');
  }));
}
const simCpuMs = async () => (await childStats()).reduce((a, s) => a + s.cpuMs, 0);
/** User + system CPU time of a process, from /proc (clock ticks of 10 ms). */
function cpuMsOf(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/** One central process (`underlay central serve` from the built CLI) and how to call it. */
interface CentralProc { proc: ChildProcess; conn: Conn; dataDir: string }

async function spawnCentral(dataDir: string, nodeArgs: string[], extra: string[]): Promise<CentralProc> {
  const port = await freePort();
  const proc = spawn(process.execPath, [...nodeArgs, CLI, 'central', 'serve', '--data', dataDir, '--listen', `127.0.0.1:${port}`, ...extra], {
    env: { ...process.env, UNDERLAY_LOG_LEVEL: 'warn' }, stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  while (!/central listening on (\S+)/.test(out)) {
    if (proc.exitCode !== null) throw new Error('central exited');
    await sleep(50);
  }
  return { proc, dataDir, conn: { url: /central listening on (\S+)/.exec(out)![1], ca: readFileSync(join(dataDir, 'ca.pem'), 'utf8'), token: readFileSync(join(dataDir, 'admin.token'), 'utf8').trim() } };
}

async function main(): Promise<void> {
  await sodium.ready;
  const dir = mkdtempSync(join(tmpdir(), 'underlay-bench-agents-'));
  const nodeArgs = args.profile ? ['--cpu-prof', `--cpu-prof-dir=${args.profile}`] : [];
  if (args.profile) mkdirSync(args.profile, { recursive: true });
  const centrals: CentralProc[] = [];
  const replicaDirs: string[] = [];
  let cluster: TestPostgres | undefined;
  try {
    // REPLICAS > 1: the first replica creates the identity (CA, signing key, admin token) the others copy (docs/ha.md).
    const store = REPLICAS > 1 ? ['--store', await (cluster = await TestPostgres.start()).createDatabase('bench')] : [];
    centrals.push(await spawnCentral(join(dir, 'data'), nodeArgs, store));
    for (let r = 1; r < REPLICAS; r++) {
      const d = cloneIdentity(join(dir, 'data'));
      replicaDirs.push(d);
      centrals.push(await spawnCentral(join(d, 'data'), nodeArgs, store));
    }
    const conn = centrals[0].conn;
    const via = (i: number) => centrals[i % REPLICAS].conn;
    const central = centrals[0].proc;
    const cpuOfCentrals = () => centrals.reduce((a, c) => a + cpuMsOf(c.proc.pid!), 0);

    // 1. sites, join tokens and joins (through the API, with a CSR)
    let t0 = performance.now();
    const { keyPem, csrPem } = makeCsr('agent-candidate:bench');
    const seal = Buffer.from(sodium.crypto_box_keypair().publicKey).toString('base64');
    const sims = await pool(AGENTS, 16, async (i): Promise<SimIdentity> => {
      const site = `bench-${i}`;
      await ok(call(via(i), 'POST', '/api/v1/sites', { name: site }), 'create site');
      const tok = await ok<{ token: string }>(call(via(i), 'POST', '/api/v1/tokens', { role: 'agent-join', site }), 'create token');
      const bearer = tok.token.split('.')[1];
      const joined = await ok<{ agent: { id: string }; certificate: string }>(call(via(i), 'POST', '/api/v1/agents/join', { csr: csrPem, sealPublicKey: seal, name: `sim-${i}`, agentVersion: 'bench' }, bearer), 'join');
      return { id: joined.agent.id, site, cert: joined.certificate, url: via(i).url };
    });
    const joinSec = (performance.now() - t0) / 1000;
    console.log(`joined ${AGENTS} agents in ${joinSec.toFixed(1)} s (${(AGENTS / joinSec).toFixed(0)} joins/s incl. site + token)`);

    // 2. connect them all, from PROCS child processes (agent i lives in child i % PROCS)
    t0 = performance.now();
    for (let k = 0; k < PROCS; k++) children.push(forkChild());
    await Promise.all(children.map((c) => expect(c, 'ready')));
    const publicKey = JSON.parse(readFileSync(join(dir, 'data', 'signing.key'), 'utf8')).publicKey as string;
    children.forEach((c, k) => c.proc.send({ type: 'start', url: conn.url, ca: conn.ca, key: keyPem, publicKey, sims: sims.filter((_, i) => i % PROCS === k) } satisfies ParentMsg));
    await Promise.all(children.map((c) => expect(c, 'connected')));
    const connectSec = (performance.now() - t0) / 1000;
    await sleep(500);
    let connected = 0; // each replica lists as connected the agents linked to it
    for (const c of centrals) connected += (await ok<{ items: { connected: boolean }[] }>(call(c.conn, 'GET', '/api/v1/agents?limit=10000'), 'list agents')).items.filter((a) => a.connected).length;
    console.log(`connected: ${connected} agents (the centrals' view) in ${connectSec.toFixed(1)} s from ${PROCS} processes, over ${REPLICAS} central replica(s)`);

    // 3. tasks: create through the API, round-robin over the sites, INFLIGHT creates outstanding
    const createdAt = new Map<string, number>();
    let failures = 0;
    // Fresh connections for the task phase: a keep-alive socket idle since the joins can be closed by the
    // server (keepAliveTimeout, 5 s) just as a create is sent on it ("socket hang up").
    httpAgent.destroy();
    httpAgent = new Agent({ keepAlive: true, maxSockets: 64 });
    const centralCpu0 = cpuOfCentrals();
    const simCpu0 = await simCpuMs();
    const parentCpu0 = process.cpuUsage();
    const tasks0 = nowMs();
    if (BATCH === 1) {
      await pool(TASKS, INFLIGHT, async (i) => {
        const start = nowMs();
        const r = await call<{ id: string }>(via((i % AGENTS) + 1), 'POST', '/api/v1/tasks', { site: sims[i % AGENTS].site, kind: 'ping', payload: {} });
        if (r.status !== 201) return void failures++;
        createdAt.set(r.json.id, start);
      });
    } else {
      await pool(Math.ceil(TASKS / BATCH), Math.max(1, Math.ceil(INFLIGHT / BATCH)), async (b) => {
        const start = nowMs();
        const n = Math.min(BATCH, TASKS - b * BATCH);
        const tasks = Array.from({ length: n }, (_, j) => ({ site: sims[(b * BATCH + j) % AGENTS].site, kind: 'ping', payload: {} }));
        const r = await call<{ items: { id: string }[] }>(via(b + 1), 'POST', '/api/v1/tasks/batch', { tasks });
        if (r.status !== 201) return void (failures += n);
        for (const t of r.json.items) createdAt.set(t.id, start);
      });
    }
    const createSec = (nowMs() - tasks0) / 1000;
    const deadline = Date.now() + 300_000;
    while (doneAt.size < createdAt.size && Date.now() < deadline) await sleep(20);
    const end = Math.max(...doneAt.values());
    const totalSec = (end - tasks0) / 1000;
    const centralCpuPerTask = (cpuOfCentrals() - centralCpu0) / TASKS;
    const parentCpu = process.cpuUsage(parentCpu0);
    const parentCpuPerTask = (parentCpu.user + parentCpu.system) / 1000 / TASKS;
    const stats = await childStats();
    const simCpuPerTask = (stats.reduce((a, s) => a + s.cpuMs, 0) - simCpu0) / TASKS;
    const verified = stats.reduce((a, s) => a + s.verified, 0);
    const rejected = stats.reduce((a, s) => a + s.rejected, 0);

    const lat = [...createdAt].filter(([id]) => doneAt.has(id)).map(([id, s]) => doneAt.get(id)! - s);
    const succeeded = await ok<{ total: number }>(call(conn, 'GET', '/api/v1/tasks?state=succeeded&limit=1'), 'count');
    const rss = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${central.pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;
    const summary = {
      agents: AGENTS, procs: PROCS, replicas: REPLICAS, connected, tasks: TASKS, createFailures: failures, verified, rejectedBySims: rejected,
      recordedSucceeded: succeeded.total, done: doneAt.size,
      createPerSec: Math.round(TASKS / createSec), endToEndPerSec: Math.round(doneAt.size / totalSec),
      p50ms: Number(pct(lat, 50).toFixed(1)), p99ms: Number(pct(lat, 99).toFixed(1)), centralRssMiB: Math.round(rss),
      centralCpuMsPerTask: Number(centralCpuPerTask.toFixed(3)), simCpuMsPerTask: Number(simCpuPerTask.toFixed(3)), benchCpuMsPerTask: Number(parentCpuPerTask.toFixed(3)),
    };
    console.log(`signed tasks end to end: ${summary.endToEndPerSec}/s (${doneAt.size} in ${totalSec.toFixed(1)} s; creates ${summary.createPerSec}/s); create→succeeded p50 ${summary.p50ms} ms, p99 ${summary.p99ms} ms`);
    console.log(JSON.stringify(summary));
  } finally {
    // 'stop' lets a child exit on its own (so --cpu-prof writes its profile); a stuck one is killed.
    await Promise.all(children.filter((c) => c.proc.exitCode === null).map((c) => new Promise<void>((resolve) => {
      const timer = setTimeout(() => c.proc.kill(), 10_000);
      c.proc.once('exit', () => (clearTimeout(timer), resolve()));
      c.proc.send({ type: 'stop' } satisfies ParentMsg);
    })));
    for (const { proc } of centrals) {
      if (proc.exitCode !== null || proc.signalCode !== null) continue;
      proc.kill('SIGTERM'); // SIGTERM so --cpu-prof writes its profile
      await new Promise((r) => proc.once('exit', r));
    }
    httpAgent.destroy();
    cluster?.stop();
    for (const d of replicaDirs) rmSync(d, { recursive: true, force: true });
    if (!args.keep) rmSync(dir, { recursive: true, force: true });
    else console.log(`kept ${dir}`);
  }
  process.exit(0);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
