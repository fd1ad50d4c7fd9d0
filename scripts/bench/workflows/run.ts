/**
 * Benchmark: workflow runs (issue 14) end to end. A real central spawned from the built CLI, simulated
 * site agents holding real mutual-TLS WebSockets (the agents benchmark's, scripts/bench/agents/sim-fleet.ts:
 * every task's signature, addressee, expiry and sequence verified, `accepted` then `succeeded` reported
 * with the run-script's output, as an agent relaying its machine's runner would).
 *
 *   npm run build
 *   node dist/scripts/bench/workflows/run.js [--machines 1000] [--agents 100] [--steps 5] [--changes 200] [--procs N] [--profile DIR] [--keep]
 *
 * Machine i is created through the API at site bench-(i % agents), the site of simulated agent i % agents.
 *
 * 1. Steps: every machine runs one workflow of `--steps` run-script steps (`echo {{ machine.name }} step k`),
 *    all started with one POST /api/v1/runs. Printed: steps/s end to end (run start → each step's task
 *    signed, delivered, verified, reported, recorded, the next step signed … → the last run succeeded),
 *    p50/p99 step latency (step dispatched → succeeded, as the run records it), run wall time, central CPU
 *    per step.
 * 2. Gates: `--changes` service changes that do not open a gate (one member flapping warning ↔ critical,
 *    one request at a time), first with no run waiting, then with every machine's run waiting at
 *    `wait: {service: bench-gate, passing: 1}`: latency and central CPU per change, both ways. Then the
 *    change that opens the gate (the member passes): time until every run's next step was reported
 *    succeeded, and until every run succeeded.
 *
 * The load average (1 min) is printed next to each figure: the figures mean little on a busy machine.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { Agent } from 'node:https';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { nowMs } from '../agents/ipc.js';
import { joinSims, SimProcesses } from '../agents/sim-fleet.js';
import { pct, spawnCentral, type BenchCentral } from '../central-process.js';
import { call, ok, pool, type Conn } from '../https-call.js';

const { values: args } = parseArgs({
  options: {
    machines: { type: 'string', default: '1000' },
    agents: { type: 'string', default: '100' },
    steps: { type: 'string', default: '5' },
    /** Service changes per gate measurement (each way: 0 and N runs waiting). */
    changes: { type: 'string', default: '200' },
    procs: { type: 'string', default: String(Math.max(1, availableParallelism() - 1)) },
    profile: { type: 'string' },
    keep: { type: 'boolean', default: false },
  },
});
const N = Number(args.machines);
const AGENTS = Math.min(Number(args.agents), N);
const STEPS = Number(args.steps);
const CHANGES = Number(args.changes);
const PROCS = Math.max(1, Number(args.procs));
const SERVICE = 'bench-gate';

interface StepView {
  state: string;
  startedAt?: string;
  finishedAt?: string;
  output?: string;
}
interface RunView {
  id: string;
  machineName: string;
  createdAt: string;
  updatedAt: string;
  status: { state: string };
  stages: { steps: StepView[] }[];
}

const http = new Agent({ keepAlive: true, maxSockets: 32 });
const load = () => `load ${loadavg()[0].toFixed(2)}`;
const ms = (x: number) => `${x.toFixed(1)} ms`;

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'underlay-bench-workflows-'));
  let central: BenchCentral | undefined;
  let fleet: SimProcesses | undefined;
  const cleanup = async () => {
    await fleet?.stop();
    await central?.stop();
    http.destroy();
    if (!args.keep) rmSync(dir, { recursive: true, force: true });
    else console.log(`kept ${dir}`);
  };
  // Stopped from outside (Ctrl-C, a test's timeout): the central and the simulated agents go too.
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => void cleanup().finally(() => process.exit(130)));
  try {
    central = await spawnCentral(join(dir, 'data'), { profileDir: args.profile });
    const conn = central.conn;
    const { sims, keyPem } = await joinSims(conn, http, AGENTS, (i) => `bench-${i}`);
    fleet = new SimProcesses(PROCS, args.profile);
    await fleet.connect(conn, keyPem, central.publicKey, sims);
    await pool(N, 32, (i) => ok(call(conn, http, 'POST', '/api/v1/machines', { name: `node-${i}`, site: sims[i % AGENTS]!.site, rack: 'bench', macs: [mac(i)] }), 'create machine'));
    console.log(`${AGENTS} simulated agents connected, ${N} machines (${load()})`);
    const steps = Array.from({ length: STEPS }, (_, k) => ({ name: `s${k}`, task: 'run-script', payload: { script: `echo {{ machine.name }} step ${k}` } }));
    await ok(call(conn, http, 'POST', '/api/v1/workflows', { name: 'bench-steps', stages: [{ name: 'all', steps }] }), 'create workflow');
    await ok(call(conn, http, 'POST', '/api/v1/workflows', { name: 'bench-gated', stages: [{ name: 'join', wait: { service: SERVICE, passing: 1 }, steps: [steps[0]] }] }), 'create workflow');

    const summary = { machines: N, agents: AGENTS, steps: STEPS, changes: CHANGES, ...(await stepsPhase(conn, central)), ...(await gatePhase(conn, central, fleet)) };
    const { rejected } = await fleet.totals();
    if (rejected > 0) throw new Error(`the simulated agents rejected ${rejected} tasks or frames`);
    console.log(JSON.stringify({ ...summary, centralRssMiB: Math.round(central.rssMiB()) }));
  } finally {
    await cleanup();
  }
  process.exit(0);
}

/** Every machine runs the STEPS-step workflow; figures from the runs' own records. */
async function stepsPhase(conn: Conn, central: BenchCentral) {
  const cpu0 = central.cpuMs();
  const t0 = nowMs();
  const started = await ok<{ total: number }>(call(conn, http, 'POST', '/api/v1/runs', { workflow: 'bench-steps', selector: 'rack=bench' }), 'start runs');
  if (started.total !== N) throw new Error(`started ${started.total} runs, expected ${N}`);
  await until(async () => (await count(conn, 'bench-steps', 'succeeded')) + (await count(conn, 'bench-steps', 'failed')) === N, `${N} bench-steps runs finished`);
  const cpu = central.cpuMs() - cpu0;
  const runs = await ok<{ items: RunView[] }>(call(conn, http, 'GET', `/api/v1/runs?workflow=bench-steps&limit=${N}`), 'list runs');
  const failed = runs.items.filter((r) => r.status.state !== 'succeeded');
  if (failed.length > 0) throw new Error(`${failed.length} runs did not succeed, e.g. ${JSON.stringify(failed[0])}`);
  // The simulated runner reports the rendered script as its output: each step saw its own machine.
  for (const r of runs.items) {
    r.stages[0]!.steps.forEach((s, k) => {
      if (s.output !== `echo ${r.machineName} step ${k}`) throw new Error(`run ${r.id} step ${k}: output ${JSON.stringify(s.output)}`);
    });
  }
  const stepMs = runs.items.flatMap((r) => r.stages[0]!.steps.map((s) => Date.parse(s.finishedAt!) - Date.parse(s.startedAt!)));
  const runMs = runs.items.map((r) => Date.parse(r.updatedAt) - Date.parse(r.createdAt));
  const wallSec = (Math.max(...runs.items.map((r) => Date.parse(r.updatedAt))) - t0) / 1000;
  const out = {
    stepsPerSec: Math.round((N * STEPS) / wallSec),
    wallSec: Number(wallSec.toFixed(2)),
    stepP50ms: pct(stepMs, 50),
    stepP99ms: pct(stepMs, 99),
    runP50ms: pct(runMs, 50),
    runP99ms: pct(runMs, 99),
    centralCpuMsPerStep: Number((cpu / (N * STEPS)).toFixed(3)),
  };
  console.log(`${N} runs × ${STEPS} steps: ${out.stepsPerSec} steps/s end to end, all runs succeeded in ${out.wallSec} s (${load()})`);
  console.log(`  step dispatched → succeeded: p50 ${out.stepP50ms} ms, p99 ${out.stepP99ms} ms; run wall time p50 ${out.runP50ms} ms, p99 ${out.runP99ms} ms; central CPU ${out.centralCpuMsPerStep} ms/step (${load()})`);
  return out;
}

/** Service changes with 0 and N runs waiting at a gate on that service, then the change that opens it. */
async function gatePhase(conn: Conn, central: BenchCentral, fleet: SimProcesses) {
  await ok(call(conn, http, 'POST', `/api/v1/services/${SERVICE}/members`, { id: 'flap', address: '198.18.0.1', port: 1, status: 'critical' }), 'register member');
  const idle = await serviceChanges(conn, central);
  console.log(`${CHANGES} service changes, no run waiting: ${ms(idle.latencyMs)} per change, central CPU ${ms(idle.cpuMs)} per change (${load()})`);

  await ok(call(conn, http, 'POST', '/api/v1/runs', { workflow: 'bench-gated', selector: 'rack=bench' }), 'start gated runs');
  await until(async () => (await count(conn, 'bench-gated', 'waiting')) === N, `${N} bench-gated runs waiting`);
  const busy = await serviceChanges(conn, central);
  console.log(`${CHANGES} service changes, ${N} runs waiting at a gate on that service: ${ms(busy.latencyMs)} per change, central CPU ${ms(busy.cpuMs)} per change (${load()})`);
  if ((await count(conn, 'bench-gated', 'waiting')) !== N) throw new Error('a run passed the gate before it opened');

  const doneBefore = fleet.doneAt.size;
  const tOpen = nowMs();
  await ok(call(conn, http, 'PUT', `/api/v1/services/${SERVICE}/members/flap/pass`, {}), 'open the gate');
  await until(async () => fleet.doneAt.size - doneBefore >= N, `${N} gated steps reported`);
  const movedOnMs = Math.max(...[...fleet.doneAt.values()].filter((t) => t >= tOpen)) - tOpen;
  await until(async () => (await count(conn, 'bench-gated', 'succeeded')) === N, `${N} bench-gated runs succeeded`);
  const allDoneMs = nowMs() - tOpen;
  console.log(`gate open → ${N} runs' next step signed, delivered and reported succeeded in ${movedOnMs.toFixed(0)} ms; every run succeeded (as polled) in ${allDoneMs.toFixed(0)} ms (${load()})`);
  return {
    changeIdleLatencyMs: Number(idle.latencyMs.toFixed(2)),
    changeIdleCpuMs: Number(idle.cpuMs.toFixed(3)),
    changeWaitingLatencyMs: Number(busy.latencyMs.toFixed(2)),
    changeWaitingCpuMs: Number(busy.cpuMs.toFixed(3)),
    gateOpenToStepsDoneMs: Math.round(movedOnMs),
    gateOpenToRunsSucceededMs: Math.round(allDoneMs),
  };
}

/** CHANGES status flips (warning ↔ critical: stored each time, never passing), one request at a time. */
async function serviceChanges(conn: Conn, central: BenchCentral): Promise<{ latencyMs: number; cpuMs: number }> {
  const cpu0 = central.cpuMs();
  const t0 = nowMs();
  for (let i = 0; i < CHANGES; i++) await ok(call(conn, http, 'PUT', `/api/v1/services/${SERVICE}/members/flap/${i % 2 === 0 ? 'warn' : 'fail'}`, {}), 'service change');
  return { latencyMs: (nowMs() - t0) / CHANGES, cpuMs: (central.cpuMs() - cpu0) / CHANGES };
}

async function count(conn: Conn, workflow: string, state: string): Promise<number> {
  return (await ok<{ total: number }>(call(conn, http, 'GET', `/api/v1/runs?workflow=${workflow}&state=${state}&limit=1`), 'count runs')).total;
}

async function until(cond: () => Promise<boolean>, what: string, timeoutMs = 600_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

function mac(i: number): string {
  return ['52', '54', '01', ...[(i >> 16) & 0xff, (i >> 8) & 0xff, i & 0xff].map((b) => b.toString(16).padStart(2, '0'))].join(':');
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
