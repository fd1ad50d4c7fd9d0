/**
 * Benchmark: workflow runs (issue 14). The central's own classes in one process (FileStore with its
 * fsync'd journal, TaskService signing every step's task, the lifecycle, the service registry, the run
 * engine); a simulated agent reports every task `succeeded` as soon as it is signed, in batches per
 * tick as the hub applies them. No TLS link or agent process: the agents benchmark
 * (scripts/bench/agents/run.ts) measures that part; this one measures what workflows add on top.
 *
 *   npx tsc -p . && node dist/scripts/bench/workflows/run.js [--machines 1000] [--steps 5] [--keep]
 *
 * Reported:
 *   1. N machines each running an S-step workflow: steps/s end to end (signed → reported → recorded →
 *      next step signed) and p50/p99 step latency (dispatch → succeeded recorded).
 *   2. N runs waiting at one service gate: the cost of one service change with N gates waiting (mean
 *      per change over N member heartbeats), and the time from the change that opens the gate until
 *      every run has signed its next step.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import sodium from 'libsodium-wrappers';
import { WorkflowCreate, type Workflow } from '../../../shared/api/workflows.js';
import { silentLogger } from '../../../shared/log/logger.js';
import { centralFeatures } from '../../../central/features.js';
import { Lifecycle } from '../../../central/lifecycle/lifecycle.js';
import { RunEngine } from '../../../central/runs/engine.js';
import { RUNS } from '../../../central/runs/resources.js';
import type { RunDoc } from '../../../central/runs/state-machine.js';
import { ServiceRegistry } from '../../../central/services/registry.js';
import { FileStore } from '../../../central/store/file-store.js';
import { TaskService, type TaskDoc } from '../../../central/tasks/service.js';

const { values: args } = parseArgs({ options: { machines: { type: 'string', default: '1000' }, steps: { type: 'string', default: '5' }, keep: { type: 'boolean', default: false } } });
const N = Number(args.machines);
const S = Number(args.steps);

await sodium.ready;
const dir = mkdtempSync(join(tmpdir(), 'bench-workflows-'));
const store = await FileStore.open({ dir, collections: centralFeatures().flatMap((f) => f.collections ?? []), logger: silentLogger });
const tasks = new TaskService(store, sodium.crypto_sign_keypair().privateKey, silentLogger);
const lifecycle = new Lifecycle({ store, changes: store.changes, logger: silentLogger, tasks: () => tasks });
const registry = new ServiceRegistry(store, { logger: silentLogger });
const engine = new RunEngine({ store, changes: store.changes, logger: silentLogger, tasks, registry, lifecycle });
tasks.onTaskFinished((t) => engine.onTaskFinished(t));
store.changes.on((c) => engine.onChange(c));

// The simulated agent: every signed task is reported succeeded, batched per tick.
let pending: TaskDoc[] = [];
let seq = 0;
tasks.onTask = (t) => {
  if (t.state !== 'queued') return;
  pending.push(t);
  if (pending.length === 1) {
    setImmediate(() => {
      const batch = pending;
      pending = [];
      const at = new Date().toISOString();
      void tasks.applyReports('agent-1', batch.map((x) => ({ type: 'report' as const, id: `r-${++seq}`, taskId: x.id, state: 'succeeded' as const, at })));
    });
  }
};

const now = new Date().toISOString();
await store.commit([
  { type: 'put', collection: 'sites', doc: { id: 'dc1', name: 'dc1', params: {}, createdAt: now, updatedAt: now } },
  { type: 'put', collection: 'agents', doc: { id: 'agent-1', site: 'dc1', name: 'agent-1', certFingerprint: 'fp', certSerial: '1', sealPublicKey: Buffer.alloc(32, 7).toString('base64'), agentVersion: 'bench', nextSeq: 1, createdAt: now, updatedAt: now } },
  ...Array.from({ length: N }, (_, i) => ({
    type: 'put' as const,
    collection: 'machines',
    doc: { id: `m-${i}`, name: `node-${i}`, site: 'dc1', macs: [], profiles: [], params: {}, facts: {}, bootenv: 'discovery', state: 'ready', netboot: true, address: `198.18.${Math.floor(i / 250)}.${(i % 250) + 1}`, servedBy: 'agent-1', createdAt: now, updatedAt: now },
  })),
]);
const machines = store.list<never>('machines').items;
const workflow = (body: unknown): Workflow => ({ id: `wf-${Math.random()}`, ...WorkflowCreate.parse(body), createdAt: now, updatedAt: now }) as Workflow;
const runsDone = (ids: Set<string>) => store.list<RunDoc>(RUNS).items.filter((r) => ids.has(r.id) && r.status.state === 'succeeded').length;
const waitFor = async (pred: () => boolean) => {
  while (!pred()) await new Promise((r) => setTimeout(r, 5));
};

// 1. N × S steps.
const steps = Array.from({ length: S }, (_, i) => ({ name: `s${i}`, task: 'run-script', payload: { script: `echo {{ machine.name }} step ${i}` } }));
const t0 = performance.now();
const runs = await engine.start(workflow({ name: 'bench', stages: [{ name: 'all', steps }] }), machines);
const ids = new Set(runs.map((r) => r.id));
await waitFor(() => runsDone(ids) === N);
const elapsed = (performance.now() - t0) / 1000;
const lat = store
  .list<RunDoc>(RUNS)
  .items.filter((r) => ids.has(r.id))
  .flatMap((r) => r.stages[0]!.steps.map((s) => Date.parse(s.finishedAt!) - Date.parse(s.startedAt!)))
  .sort((a, b) => a - b);
const pct = (p: number) => lat[Math.min(lat.length - 1, Math.floor((p / 100) * lat.length))];
console.log(`${N} machines × ${S} steps: ${N * S} steps in ${elapsed.toFixed(2)} s = ${((N * S) / elapsed).toFixed(0)} steps/s; step latency p50 ${pct(50)} ms, p99 ${pct(99)} ms`);

// 2. N runs waiting at one gate.
const gated = await engine.start(workflow({ name: 'gated', stages: [{ name: 'join', wait: { service: 'bench-svc', passing: N }, steps: [{ task: 'ping' }] }] }), machines);
const gatedIds = new Set(gated.map((r) => r.id));
await waitFor(() => store.list<RunDoc>(RUNS).items.filter((r) => gatedIds.has(r.id) && r.status.state === 'waiting').length === N);
await engine.idle();
const evalsBefore = engine.gateEvaluations;
const t1 = performance.now();
for (let i = 0; i < N - 1; i++) await registry.register('bench-svc', { id: `mem-${i}`, address: '198.18.0.1', port: 1000 + i, tags: [], meta: {}, status: 'passing' });
await engine.idle();
const perChange = (performance.now() - t1) / (N - 1);
const evals = engine.gateEvaluations - evalsBefore;
const t2 = performance.now();
const tasksBefore = store.count('tasks');
await registry.register('bench-svc', { id: `mem-${N - 1}`, address: '198.18.0.1', port: 1000 + N, tags: [], meta: {}, status: 'passing' });
await waitFor(() => store.count('tasks') - tasksBefore === N);
console.log(`${N} runs waiting at one service gate: ${perChange.toFixed(2)} ms per service change (a durable registry write + ${(evals / Math.max(1, N - 1)).toFixed(0)} gate checks); gate open → ${N} next steps signed in ${(performance.now() - t2).toFixed(0)} ms`);

await waitFor(() => runsDone(gatedIds) === N); // the simulated agent's last reports are in
await engine.idle();
engine.stop();
await registry.stop();
await store.close();
if (args.keep) console.log(`data kept in ${dir}`);
else rmSync(dir, { recursive: true, force: true });
