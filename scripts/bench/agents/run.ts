/**
 * Benchmark: many simulated site agents against one real central (spawned from the built CLI).
 *
 *   npx tsc -p . && node scripts/postbuild.mjs
 *   node dist/scripts/bench/agents/run.js [--agents 1000] [--tasks 20000] [--inflight 256] [--batch 1] [--profile DIR] [--keep]
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
 * Reported: connected agents (as the central's API sees them), signed tasks/s end to end
 * (create via the API → delivered → verified → reported → recorded), p50/p99 create→succeeded latency.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import sodium from 'libsodium-wrappers';
import WebSocket from 'ws';
import { makeCsr } from '../../../agent/join/join.js';
import { checkEnvelope, openTask } from '../../../shared/envelope/envelope.js';

const { values: args } = parseArgs({
  options: {
    agents: { type: 'string', default: '1000' },
    tasks: { type: 'string', default: '20000' },
    inflight: { type: 'string', default: '256' },
    /** Tasks per create request (1: POST /api/v1/tasks; more: POST /api/v1/tasks/batch). */
    batch: { type: 'string', default: '1' },
    /** Write a V8 CPU profile of the central to this directory (node --cpu-prof). */
    profile: { type: 'string' },
    keep: { type: 'boolean', default: false },
  },
});
const AGENTS = Number(args.agents);
const TASKS = Number(args.tasks);
const INFLIGHT = Number(args.inflight);
const BATCH = Math.max(1, Math.min(1000, Number(args.batch)));
const CLI = fileURLToPath(new URL('../../../shared/cli/underlay.js', import.meta.url));

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

interface Conn { url: string; ca: string; token: string }
const httpAgent = new Agent({ keepAlive: true, maxSockets: 64 });
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

// ---- the simulated agent
interface Sim { id: string; site: string; cert: string; ws?: WebSocket; ready: boolean; lastSeq: number }
const doneAt = new Map<string, number>();
const reportTask = new Map<string, string>();
let rejected = 0;
let verified = 0;
let pubKey: Uint8Array;

function connectSim(sim: Sim, url: string, key: string, ca: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url.replace('https', 'wss') + '/api/v1/agents/connect', { key, cert: sim.cert, ca, perMessageDeflate: false });
    sim.ws = ws;
    ws.on('open', () => ws.send(JSON.stringify({ type: 'hello', v: 1, agentVersion: 'bench', stateVersion: null, lastSeq: 0 })));
    ws.on('error', reject);
    ws.on('message', (data) => {
      const msg = JSON.parse(data.toString()) as { type: string; task?: unknown; ids?: string[]; t?: number };
      if (msg.type === 'welcome') {
        sim.ready = true;
        resolve();
      } else if (msg.type === 'task') void onTask(sim, msg.task);
      else if (msg.type === 'ack') {
        const now = performance.now();
        for (const id of msg.ids ?? []) {
          const t = reportTask.get(id);
          if (t) {
            reportTask.delete(id);
            doneAt.set(t, now);
          }
        }
      } else if (msg.type === 'ping') ws.send(JSON.stringify({ type: 'pong', t: msg.t }));
    });
  });
}

async function onTask(sim: Sim, signed: unknown): Promise<void> {
  const opened = await openTask(signed, pubKey);
  if (!opened.ok) return void rejected++;
  const env = opened.envelope;
  if (!checkEnvelope(env, { agent: sim.id, site: sim.site }).ok || env.seq <= sim.lastSeq) return void rejected++;
  sim.lastSeq = env.seq;
  verified++;
  const at = new Date().toISOString();
  const acceptedId = randomBytes(12).toString('hex');
  const succeededId = randomBytes(12).toString('hex');
  reportTask.set(succeededId, env.id);
  sim.ws!.send(JSON.stringify({ type: 'report', id: acceptedId, taskId: env.id, state: 'accepted', at }));
  sim.ws!.send(JSON.stringify({ type: 'report', id: succeededId, taskId: env.id, state: 'succeeded', output: 'pong', at }));
}

async function main(): Promise<void> {
  await sodium.ready;
  const dir = mkdtempSync(join(tmpdir(), 'underlay-bench-agents-'));
  const port = await freePort();
  const nodeArgs = args.profile ? ['--cpu-prof', `--cpu-prof-dir=${args.profile}`] : [];
  if (args.profile) mkdirSync(args.profile, { recursive: true });
  let central: ChildProcess | undefined;
  try {
    central = spawn(process.execPath, [...nodeArgs, CLI, 'central', 'serve', '--data', join(dir, 'data'), '--listen', `127.0.0.1:${port}`], {
      env: { ...process.env, UNDERLAY_LOG_LEVEL: 'warn' }, stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    central.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    while (!/central listening on (\S+)/.test(out)) {
      if (central.exitCode !== null) throw new Error('central exited');
      await sleep(50);
    }
    const conn: Conn = { url: /central listening on (\S+)/.exec(out)![1], ca: readFileSync(join(dir, 'data', 'ca.pem'), 'utf8'), token: readFileSync(join(dir, 'data', 'admin.token'), 'utf8').trim() };
    pubKey = new Uint8Array(Buffer.from(JSON.parse(readFileSync(join(dir, 'data', 'signing.key'), 'utf8')).publicKey, 'base64'));

    // 1. sites, join tokens and joins (through the API, with a CSR)
    let t0 = performance.now();
    const { keyPem, csrPem } = makeCsr('agent-candidate:bench');
    const seal = Buffer.from(sodium.crypto_box_keypair().publicKey).toString('base64');
    const sims = await pool(AGENTS, 16, async (i): Promise<Sim> => {
      const site = `bench-${i}`;
      await ok(call(conn, 'POST', '/api/v1/sites', { name: site }), 'create site');
      const tok = await ok<{ token: string }>(call(conn, 'POST', '/api/v1/tokens', { role: 'agent-join', site }), 'create token');
      const bearer = tok.token.split('.')[1];
      const joined = await ok<{ agent: { id: string }; certificate: string }>(call(conn, 'POST', '/api/v1/agents/join', { csr: csrPem, sealPublicKey: seal, name: `sim-${i}`, agentVersion: 'bench' }, bearer), 'join');
      return { id: joined.agent.id, site, cert: joined.certificate, ready: false, lastSeq: 0 };
    });
    const joinSec = (performance.now() - t0) / 1000;
    console.log(`joined ${AGENTS} agents in ${joinSec.toFixed(1)} s (${(AGENTS / joinSec).toFixed(0)} joins/s incl. site + token)`);

    // 2. connect them all
    t0 = performance.now();
    await pool(AGENTS, 64, (i) => connectSim(sims[i], conn.url, keyPem, conn.ca));
    const connectSec = (performance.now() - t0) / 1000;
    await sleep(500);
    const listed = await ok<{ items: { connected: boolean }[] }>(call(conn, 'GET', '/api/v1/agents?limit=10000'), 'list agents');
    const connected = listed.items.filter((a) => a.connected).length;
    console.log(`connected: ${connected} agents (central's view) in ${connectSec.toFixed(1)} s`);

    // 3. tasks: create through the API, round-robin over the sites, INFLIGHT creates outstanding
    const createdAt = new Map<string, number>();
    let failures = 0;
    t0 = performance.now();
    if (BATCH === 1) {
      await pool(TASKS, INFLIGHT, async (i) => {
        const start = performance.now();
        const r = await call<{ id: string }>(conn, 'POST', '/api/v1/tasks', { site: sims[i % AGENTS].site, kind: 'ping', payload: {} });
        if (r.status !== 201) return void failures++;
        createdAt.set(r.json.id, start);
      });
    } else {
      await pool(Math.ceil(TASKS / BATCH), Math.max(1, Math.ceil(INFLIGHT / BATCH)), async (b) => {
        const start = performance.now();
        const n = Math.min(BATCH, TASKS - b * BATCH);
        const tasks = Array.from({ length: n }, (_, j) => ({ site: sims[(b * BATCH + j) % AGENTS].site, kind: 'ping', payload: {} }));
        const r = await call<{ items: { id: string }[] }>(conn, 'POST', '/api/v1/tasks/batch', { tasks });
        if (r.status !== 201) return void (failures += n);
        for (const t of r.json.items) createdAt.set(t.id, start);
      });
    }
    const createSec = (performance.now() - t0) / 1000;
    const deadline = Date.now() + 300_000;
    while (doneAt.size < createdAt.size && Date.now() < deadline) await sleep(20);
    const end = Math.max(...doneAt.values());
    const totalSec = (end - t0) / 1000;
    const lat = [...createdAt].filter(([id]) => doneAt.has(id)).map(([id, s]) => doneAt.get(id)! - s);
    const succeeded = await ok<{ total: number }>(call(conn, 'GET', '/api/v1/tasks?state=succeeded&limit=1'), 'count');
    const rss = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${central.pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;
    const summary = {
      agents: AGENTS, connected, tasks: TASKS, createFailures: failures, verified, rejectedBySims: rejected,
      recordedSucceeded: succeeded.total, done: doneAt.size,
      createPerSec: Math.round(TASKS / createSec), endToEndPerSec: Math.round(doneAt.size / totalSec),
      p50ms: Number(pct(lat, 50).toFixed(1)), p99ms: Number(pct(lat, 99).toFixed(1)), centralRssMiB: Math.round(rss),
    };
    console.log(`signed tasks end to end: ${summary.endToEndPerSec}/s (${doneAt.size} in ${totalSec.toFixed(1)} s; creates ${summary.createPerSec}/s); create→succeeded p50 ${summary.p50ms} ms, p99 ${summary.p99ms} ms`);
    console.log(JSON.stringify(summary));
  } finally {
    for (const s of [] as Sim[]) s.ws?.terminate();
    if (central && central.exitCode === null) {
      central.kill('SIGTERM'); // SIGTERM so --cpu-prof writes its profile
      await new Promise((r) => central!.once('exit', r));
    }
    httpAgent.destroy();
    if (!args.keep) rmSync(dir, { recursive: true, force: true });
    else console.log(`kept ${dir}`);
  }
  process.exit(0);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
