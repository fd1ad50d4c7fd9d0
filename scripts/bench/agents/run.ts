/**
 * Benchmark: many simulated site agents against one real central (spawned from the built CLI).
 *
 *   npx tsc -p . && node scripts/postbuild.mjs
 *   node dist/scripts/bench/agents/run.js [--agents 1000] [--tasks 20000] [--inflight 256] [--batch 1] [--procs N] [--replicas 1] [--pg-stats] [--profile DIR] [--keep]
 *
 * --replicas N (issue 17): N central replicas on one throwaway PostgreSQL (root and PostgreSQL's binaries
 * needed; the cluster lives in a temp dir on loopback and is removed after). Agent i joins through and
 * links to replica i % N; the task for agent i is created through replica (i + 1) % N, so with 2 every
 * task crosses replicas (created on one, delivered by the other). Default 1: one central on its file store.
 *
 * --pg-stats (with --replicas > 1): PostgreSQL's own accounting of the task phase: pg_stat_statements
 * (preloaded in the throwaway cluster, nested statements of underlay_write tracked), per-function time
 * and per-table tuples written, per task (pg-stats.ts).
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
 * (create via the API → delivered → verified → reported → recorded), p50/p99 create→succeeded latency,
 * CPU per task (centrals, simulated agents, this process), the load average before and after, and the
 * verdict against issue 21's target (≥ 5,000/s; issue 17's with --replicas 2).
 *
 * Issue 21's command: node dist/scripts/bench/agents/run.js --agents 1000 --tasks 20000 --batch 100 --inflight 2000
 * (add --replicas 2 for issue 17's figure).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { Agent } from 'node:https';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { pct, spawnCentral, treeCpuMs, type BenchCentral } from '../central-process.js';
import { call, callRetrying, isConnectionFailure, isStaleKeepAlive, ok, pool, RetryCount } from '../https-call.js';
import { nowMs } from './ipc.js';
import { PG_STATS_SETTINGS, PgStats } from './pg-stats.js';
import { joinSims, SimProcesses } from './sim-fleet.js';
import { cloneIdentity } from '../../../test/ha/replicas.js';
import { TestPostgres } from '../../../test/support/postgres.js';

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
    /** With --replicas > 1: PostgreSQL's own figures for the task phase (pg_stat_statements, per function, per table). */
    'pg-stats': { type: 'boolean', default: false },
  },
});
const AGENTS = Number(args.agents);
const TASKS = Number(args.tasks);
const INFLIGHT = Number(args.inflight);
const BATCH = Math.max(1, Math.min(1000, Number(args.batch)));
const PROCS = Math.max(1, Number(args.procs));
const REPLICAS = Math.max(1, Number(args.replicas));
/** Signed tasks end to end per second, with 1,000 agents (issue 21 for one central, issue 17 for 2 replicas). */
const TARGET_PER_SEC = 5000;
const load = () => loadavg().map((l) => l.toFixed(2)).join(' ');

let httpAgent = new Agent({ keepAlive: true, maxSockets: 64 });

async function main(): Promise<void> {
  const load0 = load();
  console.log(`# signed tasks: ${AGENTS} agents, ${TASKS} tasks, --batch ${BATCH} --inflight ${INFLIGHT}, ${REPLICAS} central(s)${REPLICAS > 1 ? ' on PostgreSQL' : ' on the file store'}; load average ${load0}`);
  const dir = mkdtempSync(join(tmpdir(), 'underlay-bench-agents-'));
  const centrals: BenchCentral[] = [];
  const replicaDirs: string[] = [];
  let cluster: TestPostgres | undefined;
  let fleet: SimProcesses | undefined;
  let pgStats: PgStats | undefined;
  try {
    // REPLICAS > 1: the first replica creates the identity (CA, signing key, admin token) the others copy (docs/ha.md).
    const dbUrl = REPLICAS > 1 ? await (cluster = await TestPostgres.start(args['pg-stats'] ? PG_STATS_SETTINGS : [])).createDatabase('bench') : undefined;
    const store = dbUrl ? ['--store', dbUrl] : [];
    centrals.push(await spawnCentral(join(dir, 'data'), { profileDir: args.profile, args: store }));
    for (let r = 1; r < REPLICAS; r++) {
      const d = cloneIdentity(join(dir, 'data'));
      replicaDirs.push(d);
      centrals.push(await spawnCentral(join(d, 'data'), { profileDir: args.profile, args: store }));
    }
    const central = centrals[0]!;
    const conn = central.conn;
    const via = (i: number) => centrals[i % REPLICAS]!.conn;
    const cpuOfCentrals = () => centrals.reduce((a, c) => a + c.cpuMs(), 0);

    // 1. sites, join tokens and joins (through the API, with a CSR); agent i through (and linked to) replica i % REPLICAS
    let t0 = performance.now();
    const retries = new RetryCount(); // calls retried after a connection reset (a loaded central under --inflight)
    const { sims, keyPem } = await joinSims(via, httpAgent, AGENTS, (i) => `bench-${i}`, retries);
    const joinSec = (performance.now() - t0) / 1000;
    console.log(`joined ${AGENTS} agents in ${joinSec.toFixed(1)} s (${(AGENTS / joinSec).toFixed(0)} joins/s incl. site + token)`);

    // 2. connect them all, from PROCS child processes (agent i lives in child i % PROCS)
    t0 = performance.now();
    fleet = new SimProcesses(PROCS, args.profile);
    await fleet.connect(conn, keyPem, central.publicKey, sims);
    const doneAt = fleet.doneAt;
    const connectSec = (performance.now() - t0) / 1000;
    await sleep(500);
    let connected = 0; // each replica lists as connected the agents linked to it
    for (const c of centrals) connected += (await ok<{ items: { connected: boolean }[] }>(callRetrying(retries, c.conn, httpAgent, 'GET', '/api/v1/agents?limit=10000'), 'list agents')).items.filter((a) => a.connected).length;
    console.log(`connected: ${connected} agents (the centrals' view) in ${connectSec.toFixed(1)} s from ${PROCS} processes, over ${REPLICAS} central replica(s)`);

    // 3. tasks: create through the API, round-robin over the sites, INFLIGHT creates outstanding
    const createdAt = new Map<string, number>();
    let failures = 0;
    // A create reset on a kept-alive connection (the server closed it before reading the request) is sent
    // again, counted in `retries`; any other reset is not (the task may have been made: a retry could make
    // it twice): its tasks count as create failures and the run goes on. A duplicate would show as more
    // succeeded tasks recorded than created.
    let createResets = 0;
    const created = async <T>(send: () => Promise<T>, n: number): Promise<T | undefined> => {
      for (let attempt = 1; ; attempt++) {
        try {
          return await send();
        } catch (e) {
          if (isStaleKeepAlive(e) && attempt < 3) {
            retries.n++;
            continue;
          }
          if (!isConnectionFailure(e)) throw e;
          createResets++;
          failures += n;
          return undefined;
        }
      }
    };
    // Fresh connections for the task phase: a keep-alive socket idle since the joins can be closed by the
    // server (keepAliveTimeout, 5 s) just as a create is sent on it ("socket hang up").
    httpAgent.destroy();
    httpAgent = new Agent({ keepAlive: true, maxSockets: 64 });
    const cpuOfDatabase = () => (cluster ? treeCpuMs(cluster.pid()) : 0);
    if (args['pg-stats'] && dbUrl) await (pgStats = await PgStats.open(dbUrl)).begin();
    const centralCpu0 = cpuOfCentrals();
    const dbCpu0 = cpuOfDatabase();
    const simCpu0 = (await fleet.totals()).cpuMs;
    const parentCpu0 = process.cpuUsage();
    const tasks0 = nowMs();
    if (BATCH === 1) {
      await pool(TASKS, INFLIGHT, async (i) => {
        const start = nowMs();
        const r = await created(() => call<{ id: string }>(via((i % AGENTS) + 1), httpAgent, 'POST', '/api/v1/tasks', { site: sims[i % AGENTS]!.site, kind: 'ping', payload: {} }), 1);
        if (!r) return;
        if (r.status !== 201) return void failures++;
        createdAt.set(r.json.id, start);
      });
    } else {
      await pool(Math.ceil(TASKS / BATCH), Math.max(1, Math.ceil(INFLIGHT / BATCH)), async (b) => {
        const start = nowMs();
        const n = Math.min(BATCH, TASKS - b * BATCH);
        const tasks = Array.from({ length: n }, (_, j) => ({ site: sims[(b * BATCH + j) % AGENTS].site, kind: 'ping', payload: {} }));
        const r = await created(() => call<{ items: { id: string }[] }>(via(b + 1), httpAgent, 'POST', '/api/v1/tasks/batch', { tasks }), n);
        if (!r) return;
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
    const dbCpuPerTask = (cpuOfDatabase() - dbCpu0) / TASKS;
    const parentCpu = process.cpuUsage(parentCpu0);
    const parentCpuPerTask = (parentCpu.user + parentCpu.system) / 1000 / TASKS;
    const { verified, rejected, cpuMs: simCpu } = await fleet.totals();
    if (pgStats) for (const line of await pgStats.report(TASKS)) console.log(line);
    const simCpuPerTask = (simCpu - simCpu0) / TASKS;

    const lat = [...createdAt].filter(([id]) => doneAt.has(id)).map(([id, s]) => doneAt.get(id)! - s);
    const succeeded = await ok<{ total: number }>(callRetrying(retries, conn, httpAgent, 'GET', '/api/v1/tasks?state=succeeded&limit=1'), 'count');
    const rss = central.rssMiB();
    const summary = {
      agents: AGENTS, procs: PROCS, replicas: REPLICAS, connected, tasks: TASKS, createFailures: failures, createResets, retriedCalls: retries.n, verified, rejectedBySims: rejected,
      recordedSucceeded: succeeded.total, done: doneAt.size,
      createPerSec: Math.round(TASKS / createSec), endToEndPerSec: Math.round(doneAt.size / totalSec),
      p50ms: Number(pct(lat, 50).toFixed(1)), p99ms: Number(pct(lat, 99).toFixed(1)), centralRssMiB: Math.round(rss),
      centralCpuMsPerTask: Number(centralCpuPerTask.toFixed(3)), postgresCpuMsPerTask: Number(dbCpuPerTask.toFixed(3)), simCpuMsPerTask: Number(simCpuPerTask.toFixed(3)), benchCpuMsPerTask: Number(parentCpuPerTask.toFixed(3)),
    };
    console.log(`signed tasks end to end: ${summary.endToEndPerSec}/s (${doneAt.size} in ${totalSec.toFixed(1)} s; creates ${summary.createPerSec}/s); create→succeeded p50 ${summary.p50ms} ms, p99 ${summary.p99ms} ms`);
    console.log(`connection resets: ${retries.n} calls retried (reads, joins, creates on a closed kept-alive connection), ${createResets} task creates lost to a reset (${createResets > 0 ? 'counted as create failures' : 'none'})`);
    console.log(`CPU per task: centrals ${summary.centralCpuMsPerTask} ms, ${cluster ? `PostgreSQL ${summary.postgresCpuMsPerTask} ms, ` : ''}simulated agents ${summary.simCpuMsPerTask} ms, bench ${summary.benchCpuMsPerTask} ms; central RSS ${summary.centralRssMiB} MiB`);
    const complete = summary.done === TASKS && summary.recordedSucceeded === TASKS && failures === 0 && rejected === 0;
    console.log(`target ≥ ${TARGET_PER_SEC}/s with ${AGENTS} agents over ${REPLICAS} central(s): ${summary.endToEndPerSec >= TARGET_PER_SEC && complete ? 'met' : 'MISSED'}${complete ? '' : ' (not every task completed exactly once: see the counts)'}; load average before ${load0}, after ${load()}`);
    console.log(JSON.stringify({ ...summary, loadBefore: load0, loadAfter: load() }));
  } finally {
    await pgStats?.close();
    await fleet?.stop();
    for (const c of centrals) await c.stop();
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
