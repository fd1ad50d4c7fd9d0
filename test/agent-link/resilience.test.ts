import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../central/support.js';
import {
  allTasks, api, createSite, createTask, getTask, isConnected, joinAgent, killAllAgents, readJsonl, removeDir, sleep, spawnAgent, spawnCentral, tempDir, waitFor,
  type AgentProcess, type CentralProcess, type TaskView,
} from './support.js';

/**
 * Pull, not push; crashes on either side with work in flight; the central away for a minute. Real
 * central and agent processes on loopback; the central restarts on the same address and data dir.
 */
let dir: string;
let dataDir: string;
let listen: string;
let central: CentralProcess;
let agent: AgentProcess;
let state: string;
let agentId: string;
let machines: Record<string, string>;
const site = 'rack-r';

const startCentral = async () => (central = await spawnCentral({ dataDir, listen }));
const startAgent = () => (agent = spawnAgent(state));
const connected = (what: string) => waitFor(what, () => isConnected(central, agentId), 90_000);
const desiredStateOnDisk = () => JSON.parse(readFileSync(join(state, 'desired-state.json'), 'utf8')) as { version: string; machines: { id: string; name: string; netboot: boolean }[] };

async function createMany(n: number, concurrency = 32, onCreated?: (t: TaskView) => void): Promise<TaskView[]> {
  const out: TaskView[] = [];
  let next = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < n) {
      next++;
      const t = await createTask(central, { site, kind: 'ping', payload: { message: `m${next}` } });
      out.push(t);
      onCreated?.(t);
    }
  }));
  return out;
}

function assertExactlyOnce(tasks: TaskView[]) {
  const ids = new Set<string>();
  for (const t of tasks) {
    const reportIds = t.history.filter((h) => h.reportId).map((h) => h.reportId!);
    expect(new Set(reportIds).size, `duplicate report ids in ${t.id}`).toBe(reportIds.length);
    for (const r of reportIds) {
      expect(ids.has(r), `report ${r} recorded on two tasks`).toBe(false);
      ids.add(r);
    }
    expect(t.state).toBe('succeeded');
  }
  return ids;
}
/** The agent executed each task once: one 'succeeded' record per id in its task log. */
function executedOnce(taskIds: string[]) {
  const log = readJsonl<{ id: string; state: string }>(join(state, 'tasks.jsonl'));
  const succeeded = new Map<string, number>();
  for (const r of log) if (r.state === 'succeeded') succeeded.set(r.id, (succeeded.get(r.id) ?? 0) + 1);
  for (const id of taskIds) expect(succeeded.get(id), `task ${id} executions`).toBe(1);
}

beforeAll(async () => {
  dir = tempDir('underlay-resilience-');
  dataDir = join(dir, 'central');
  state = join(dir, 'agent');
  listen = `127.0.0.1:${await freePort()}`;
  await startCentral();
  machines = await createSite(central, site, [{ name: 'node1', mac: '52:54:00:bb:00:01' }, { name: 'node2', mac: '52:54:00:bb:00:02' }]);
  agentId = await joinAgent(central, site, state);
  startAgent();
  await connected('agent connected');
});
afterEach((ctx) => {
  if (ctx.task.result?.state === 'fail') console.error(`agent log tail:\n${agent?.stderr.slice(-6000)}\ncentral log tail:\n${central?.stderr.slice(-4000)}`);
});
afterAll(async () => {
  await killAllAgents();
  if (central?.running) {
    try {
      process.kill(central.pid, 'SIGCONT');
    } catch {
      /* gone */
    }
  }
  await central?.cleanup();
  removeDir(dir);
});

describe('pull, not push', () => {
  it('a task created while the agent is offline is delivered when it reconnects; set-netboot flips netboot in the central', async () => {
    await agent.stop();
    await waitFor('agent disconnected', async () => !(await isConnected(central, agentId)));
    expect((await api(central, 'GET', `/api/v1/machines/${machines.node1}`)).netboot).toBe(true);

    const t = await createTask(central, { site, kind: 'set-netboot', machine: 'node1', payload: { netboot: false } });
    const ping = await createTask(central, { site, kind: 'ping', payload: { message: 'offline' } });
    await sleep(500);
    expect((await getTask(central, t.id)).state).toBe('queued'); // nobody to deliver to: nothing pushed anywhere

    startAgent();
    const done = await waitFor('set-netboot succeeded', async () => {
      const cur = await getTask(central, t.id);
      return cur.state === 'succeeded' ? cur : undefined;
    });
    expect(done.history.map((h) => h.state)).toEqual(['queued', 'delivered', 'accepted', 'succeeded']);
    expect((await api(central, 'GET', `/api/v1/machines/${machines.node1}`)).netboot).toBe(false);
    expect((await getTask(central, ping.id)).output).toBe('pong: offline');
    // the central's new desired state (netboot false) reaches the agent's disk
    await waitFor('desired state on disk shows netboot false', () => desiredStateOnDisk().machines.find((m) => m.id === machines.node1)?.netboot === false);
  });
});

describe('crashes with work in flight', () => {
  it('the central kill -9\'d and restarted with tasks in flight: every acknowledged task succeeds, reports recorded once', async () => {
    await connected('agent connected');
    const acknowledged: TaskView[] = [];
    let killed = false;
    const creating = createMany(300, 16, (t) => {
      acknowledged.push(t);
      if (acknowledged.length === 150 && !killed) {
        killed = true;
        void central.kill();
      }
    }).catch(() => undefined); // creates in flight when the central dies fail: that is the point
    await waitFor('central killed', () => killed && !central.running);
    await creating;
    expect(acknowledged.length).toBeGreaterThanOrEqual(150);
    await startCentral();

    const ids = acknowledged.map((t) => t.id);
    // Every acknowledged task, and every create that raced the kill but made it to disk, ends succeeded.
    const final = await waitFor('every task the central holds succeeded', async () => {
      const all = await allTasks(central, site);
      return all.every((t) => t.state === 'succeeded') ? all : undefined;
    }, 120_000);
    const held = new Set(final.map((t) => t.id));
    for (const id of ids) expect(held.has(id), `acknowledged task ${id} survived the kill`).toBe(true);
    assertExactlyOnce(final);
    executedOnce(ids);
  });

  it('the agent kill -9\'d with 1,000 unsent reports: each arrives exactly once after both restart', async () => {
    await connected('agent connected');
    const before = new Set((await allTasks(central, site)).map((t) => t.id));
    // 1. freeze the agent, then create 1,000 tasks: the central delivers them into the link.
    agent.signal('SIGSTOP');
    const created = await createMany(1000, 32);
    const ids = created.map((t) => t.id);
    await waitFor('all 1,000 delivered', async () => (await api(central, 'GET', `/api/v1/tasks?site=${site}&state=queued&limit=1`)).total === 0);
    // 2. freeze the central, let the agent execute: its reports go to its durable outbox and to a link
    //    nobody reads.
    central.proc.kill('SIGSTOP');
    agent.signal('SIGCONT');
    const outboxPath = join(state, 'outbox.jsonl');
    const pendingSucceeded = () => {
      const pending = new Map<string, { id: string; taskId: string; state: string }>();
      for (const r of readJsonl<{ t: string; m?: { id: string; taskId: string; state: string }; ids?: string[] }>(outboxPath)) {
        if (r.t === 'add') pending.set(r.m!.id, r.m!);
        else for (const id of r.ids ?? []) pending.delete(id);
      }
      return [...pending.values()].filter((m) => m.state === 'succeeded' && ids.includes(m.taskId));
    };
    await waitFor('1,000 succeeded reports in the agent outbox', () => pendingSucceeded().length === 1000, 120_000, 250);
    // 3. kill -9 both: the reports exist only in the agent's outbox.
    await agent.kill();
    const unsent = pendingSucceeded().map((m) => m.id);
    expect(unsent).toHaveLength(1000);
    await central.kill();
    const atCentral = (await (async () => {
      await startCentral();
      return allTasks(central, site);
    })()).filter((t) => ids.includes(t.id));
    expect(atCentral.filter((t) => t.state === 'succeeded')).toHaveLength(0); // none had arrived
    // 4. restart the agent: the outbox drains, the central dedups by report id.
    startAgent();
    const final = await waitFor('all 1,000 succeeded', async () => {
      const all = await allTasks(central, site);
      const mine = all.filter((t) => ids.includes(t.id));
      return mine.length === 1000 && mine.every((t) => t.state === 'succeeded') ? all : undefined;
    }, 180_000, 500);
    const recorded = assertExactlyOnce(final.filter((t) => !before.has(t.id)));
    for (const r of unsent) expect(recorded.has(r), `outbox report ${r} recorded`).toBe(true);
    executedOnce(ids);
    await waitFor('agent outbox drained', () => agent.logs().length > 0 && pendingSucceeded().length === 0, 60_000, 250);
  });
});

describe('the central away', () => {
  it('down for 60 s: the agent restarts from its cached desired state and catches up when the central returns', async () => {
    await connected('agent connected');
    await waitFor('agent has a desired state on disk', () => desiredStateOnDisk().version);
    const v1 = desiredStateOnDisk();
    await agent.stop();
    // a change made while the agent is away
    await api(central, 'POST', '/api/v1/machines', { name: 'node3', site, macs: ['52:54:00:bb:00:03'] });
    await central.stop('SIGKILL');
    const downAt = Date.now();

    startAgent(); // restarted while the central is down
    const loaded = await agent.waitLog('loaded cached desired state');
    expect(loaded.version).toBe(v1.version);
    expect(loaded.machines).toBe(v1.machines.length);
    await agent.waitLog('link closed', 2); // it keeps dialling (with backoff) and failing
    await waitFor('the central down for 60 s', () => Date.now() - downAt >= 60_000, 70_000, 500);
    expect(agent.running).toBe(true);
    expect(desiredStateOnDisk().version).toBe(v1.version); // the cache is kept, not dropped
    expect(agent.count('link ready')).toBe(0);

    await startCentral();
    await agent.waitLog('link ready', 1, 90_000);
    const caught = await waitFor('the change made while away arrives', () => {
      const s = desiredStateOnDisk();
      return s.machines.some((m) => m.name === 'node3') ? s : undefined;
    });
    expect(caught.version).not.toBe(v1.version);
    expect(await isConnected(central, agentId)).toBe(true);
  });
});
