/**
 * A child process of the agents and workflows benchmarks (forked by sim-fleet.ts): hosts a share of the simulated agents. Each holds one
 * mutual-TLS WebSocket to the central and, for every task, verifies the Ed25519 signature over the exact
 * bytes, the addressee, the expiry and the sequence, as agent/tasks/executor.ts does, before reporting
 * `accepted` and `succeeded` (a run-script with its output and exit code, as an agent relaying its machine's
 * runner would). When the central acknowledges a `succeeded` report the task is done: the
 * child tells the parent over IPC (task id + wall-clock time, batched per turn of the event loop).
 */
import { randomUUID } from 'node:crypto';
import WebSocket from 'ws';
import { checkEnvelope, openTask } from '../../../shared/envelope/envelope.js';
import { CentralToAgent, FEATURES, parseMessage, type ReportMsg } from '../../../shared/protocol/messages.js';
import { nowMs, type ChildMsg, type ParentMsg, type SimIdentity } from './ipc.js';

interface Sim extends SimIdentity { ws?: WebSocket; lastSeq: number; batch: boolean }

let pubKey: Uint8Array;
let verified = 0;
let rejected = 0;
/** Counts a refused frame or task; the first few reasons go to stderr (a bench run then says why). */
function reject(why: string): void {
  if (++rejected <= 3) console.error(`simulated agent refused: ${why}`);
}
const reportTask = new Map<string, string>();
let doneBatch: [string, number][] = [];
let doneScheduled = false;

function tell(msg: ChildMsg): void {
  process.send!(msg);
}

function flushDoneSoon(): void {
  if (doneScheduled) return;
  doneScheduled = true;
  setImmediate(() => {
    doneScheduled = false;
    const items = doneBatch;
    doneBatch = [];
    tell({ type: 'done', items });
  });
}

function connect(sim: Sim, url: string, key: string, ca: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url.replace('https', 'wss') + '/api/v1/agents/connect', { key, cert: sim.cert, ca, perMessageDeflate: false });
    sim.ws = ws;
    ws.on('open', () => ws.send(JSON.stringify({ type: 'hello', v: 1, agentVersion: 'bench', stateVersion: null, lastSeq: 0, features: FEATURES })));
    ws.on('error', reject);
    ws.on('message', (data) => {
      // Validated as the real agent's link does (the zod protocol union).
      const parsed = parseMessage(CentralToAgent, data);
      if (!parsed.ok) return void reject(`a frame that is not protocol: ${JSON.stringify(parsed).slice(0, 300)}`);
      const msg = parsed.msg;
      if (msg.type === 'welcome') {
        sim.batch = msg.features.includes('batch');
        resolve();
      } else if (msg.type === 'task') onTasks(sim, [msg.task]);
      else if (msg.type === 'tasks') onTasks(sim, msg.tasks);
      else if (msg.type === 'ack') {
        const now = nowMs();
        for (const id of msg.ids) {
          const t = reportTask.get(id);
          if (t) {
            reportTask.delete(id);
            doneBatch.push([t, now]);
            flushDoneSoon();
          }
        }
      } else if (msg.type === 'ping') ws.send(JSON.stringify({ type: 'pong', t: msg.t }));
    });
  });
}

/**
 * What the task's end reports: a ping's pong; a run-script's output and exit code as a real agent relays
 * them from the machine's runner (here the script itself stands for its output, so a bench can check what
 * was rendered into it).
 */
function outcome(kind: string, payload: unknown): { output: string; exitCode?: number } {
  if (kind !== 'run-script') return { output: 'pong' };
  return { output: Buffer.from((payload as { scriptB64: string }).scriptB64, 'base64').toString('utf8'), exitCode: 0 };
}

/** Verifies each task in order and reports `accepted` + `succeeded` for it (one `reports` frame with `batch`). */
function onTasks(sim: Sim, signed: unknown[]): void {
  const reports: ReportMsg[] = [];
  for (const one of signed) {
    const opened = openTask(one, pubKey);
    if (!opened.ok) {
      reject(`a task that does not open: ${JSON.stringify(opened).slice(0, 200)}`);
      continue;
    }
    const env = opened.envelope;
    const checked = checkEnvelope(env, { agent: sim.id, site: sim.site });
    if (!checked.ok || env.seq <= sim.lastSeq) {
      reject(`task ${env.id} seq ${env.seq} (last ${sim.lastSeq}): ${JSON.stringify(checked)}`);
      continue;
    }
    sim.lastSeq = env.seq;
    verified++;
    const at = new Date().toISOString();
    const succeededId = randomUUID();
    reportTask.set(succeededId, env.id);
    reports.push({ type: 'report', id: randomUUID(), taskId: env.id, state: 'accepted', at }, { type: 'report', id: succeededId, taskId: env.id, state: 'succeeded', ...outcome(env.kind, env.payload), at });
  }
  if (reports.length === 0) return;
  if (sim.batch) sim.ws!.send(JSON.stringify({ type: 'reports', items: reports }));
  else for (const r of reports) sim.ws!.send(JSON.stringify(r));
}

const sims: Sim[] = [];
process.on('message', (msg: ParentMsg) => {
  if (msg.type === 'start') {
    pubKey = new Uint8Array(Buffer.from(msg.publicKey, 'base64'));
    for (const s of msg.sims) sims.push({ ...s, lastSeq: 0, batch: false });
    const started = nowMs();
    let next = 0;
    const worker = async () => {
      while (next < sims.length) {
        const sim = sims[next++];
        await connect(sim, sim.url ?? msg.url, msg.key, msg.ca);
      }
    };
    Promise.all(Array.from({ length: 32 }, worker)).then(
      () => tell({ type: 'connected', count: sims.length, ms: nowMs() - started }),
      (e: Error) => tell({ type: 'failed', error: e.message }),
    );
  } else if (msg.type === 'stats') {
    tell({ type: 'stats', verified, rejected, cpuMs: process.cpuUsage().user / 1000 + process.cpuUsage().system / 1000 });
  } else if (msg.type === 'stop') {
    for (const s of sims) s.ws?.terminate();
    process.exit(0);
  }
});
// The bench process is gone (killed, crashed): nobody counts any more.
process.on('disconnect', () => process.exit(0));
tell({ type: 'ready' });
