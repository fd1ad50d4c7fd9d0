import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CentralToAgent } from '../../shared/protocol/messages.js';
import { startInProcessCentral, type InProcessCentral, type SimAgent } from '../central/in-process.js';
import { tempDir } from '../central/support.js';

/**
 * Issue 14 through the real API of an in-process central and a simulated agent on the mutual-TLS link
 * (its task reports and service-status events take the hub's own path): a workflow created from JSON
 * (hostile bodies refused), started by selector on three machines; stage 1 registers each as a member
 * of demo-etcd; stage 2 waits for 3 passing members. The central restarts while the runs wait at the
 * gate, and the agent's link is cut while the stage-2 tasks are out; every run completes, each machine
 * saw all three addresses, and no step was signed twice.
 */
let dir: string;
let central: InProcessCentral;
let agent: SimAgent;
const MACHINES = [1, 2, 3].map((i) => ({ name: `node-${i}`, address: `198.18.0.${10 + i}`, mac: `52:54:00:14:00:0${i}` }));
const machineIds = new Map<string, string>();

const WORKFLOW = {
  name: 'demo-cluster',
  description: 'register, then join once three members pass',
  stages: [
    { name: 'register', steps: [{ action: 'register-service', with: { service: 'demo-etcd', port: 2379, ttl: '5m' } }] },
    {
      name: 'join',
      wait: { service: 'demo-etcd', passing: 3 },
      steps: [{ name: 'write-members', task: 'run-script', payload: { script: "{% for m in services['demo-etcd'].members %}{{ m.address }}\n{% endfor %}" } }],
    },
  ],
};

const until = async <T>(f: () => Promise<T | undefined | false> | T | undefined | false, what: string, ms = 15_000): Promise<T> => {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v !== undefined && v !== null && v !== false) return v as T;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
};

interface Envelope {
  id: string;
  kind: string;
  machine: string;
  payload: { scriptB64?: string };
}
const tasksIn = (frames: CentralToAgent[]): Envelope[] =>
  frames.flatMap((f) => (f.type === 'task' ? [f.task] : f.type === 'tasks' ? f.tasks : [])).map((t) => JSON.parse(Buffer.from(t.canonical, 'base64').toString('utf8')) as Envelope);
const script = (t: Envelope) => Buffer.from(t.payload.scriptB64 ?? '', 'base64').toString();
const runs = async () => (await central.request('GET', '/api/v1/runs?workflow=demo-cluster')).json.items as { id: string; machineName: string; status: { state: string; for?: string }; stages: { gate: { state: string; waitingFor?: string; since?: string }; steps: { state: string; taskId?: string; output?: string; taskIds: string[] }[] }[] }[];
const heartbeat = (name: string) => agent.event('service-status', { service: 'demo-etcd', member: `${name}-2379`, status: 'passing', machineId: machineIds.get(name) });

beforeAll(async () => {
  dir = tempDir('underlay-workflows-');
  central = await startInProcessCentral({ dir });
  expect((await central.request('POST', '/api/v1/sites', { body: { name: 'dc1' } })).status).toBe(201);
  agent = await central.joinAgent('dc1', 'rack-agent');
  for (const m of MACHINES) {
    const r = await central.request('POST', '/api/v1/machines', { body: { name: m.name, site: 'dc1', macs: [m.mac], address: m.address } });
    expect(r.status, r.text).toBe(201);
    machineIds.set(m.name, r.json.id);
  }
}, 60_000);
afterAll(async () => {
  await central?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('workflows over the API', () => {
  it('refuses hostile and invalid workflow bodies with a clear 4xx, storing nothing; the OpenAPI document has workflows and runs', async () => {
    const post = (body: unknown) => central.request('POST', '/api/v1/workflows', { body });
    const deep = JSON.parse('{"a":'.repeat(200) + '1' + '}'.repeat(200));
    const cases: [unknown, number, RegExp][] = [
      [{ ...WORKFLOW, extra: true }, 400, /extra|unrecognized/i],
      [{ ...WORKFLOW, stages: [{ ...WORKFLOW.stages[0], steps: [{ task: 'run-script', payload: deep }] }] }, 400, /./],
      [{ ...WORKFLOW, stages: [{ name: 'a', steps: [{ task: 'run-script', onFailure: 'goto nowhere' }] }] }, 400, /stages\.0\.steps\.0\.onFailure: no stage named \\"nowhere/],
      [{ ...WORKFLOW, stages: [] }, 400, /stages/],
      [{ ...WORKFLOW, description: 'x'.repeat(2_000_000) }, 413, /exceeds/],
    ];
    for (const [body, status, re] of cases) {
      const r = await post(body);
      expect(r.status, r.text.slice(0, 300)).toBe(status);
      expect(r.text).toMatch(re);
    }
    expect((await central.request('GET', '/api/v1/workflows')).json.total).toBe(0);
    const created = await post(WORKFLOW);
    expect(created.status, created.text).toBe(201);
    expect(created.json.stages[1].steps[0]).toMatchObject({ retries: 0, onFailure: 'stop', timeout: '1h' });
    expect((await post(WORKFLOW)).status).toBe(409);
    const paths = Object.keys((await central.request('GET', '/api/v1/openapi.json')).json.paths);
    expect(paths).toEqual(expect.arrayContaining(['/api/v1/workflows', '/api/v1/workflows/{ref}', '/api/v1/runs', '/api/v1/runs/{id}', '/api/v1/runs/{id}/continue', '/api/v1/runs/{id}/cancel', '/api/v1/runs/{id}/retry', '/api/v1/machines/{ref}/workflow']));
  });

  it('starts by selector; stage 1 registers three members; nobody passes the gate with two passing, across a central restart', async () => {
    expect((await central.request('POST', '/api/v1/runs', { body: { workflow: 'demo-cluster', selector: 'site=dc1,rack=none' } })).status).toBe(400);
    const started = await central.request('POST', '/api/v1/runs', { body: { workflow: 'demo-cluster', selector: 'site=dc1' } });
    expect(started.status, started.text).toBe(201);
    expect(started.json.items.map((r: { machineName: string }) => r.machineName).sort()).toEqual(['node-1', 'node-2', 'node-3']);
    expect((await central.request('POST', `/api/v1/machines/node-1/workflow`, { body: { workflow: 'demo-cluster' } })).status).toBe(409); // one run per machine
    const hb = await until(() => tasksIn(agent.frames).length === 3 && tasksIn(agent.frames), 'three heartbeat tasks');
    expect(hb.every((t) => t.kind === 'run-script' && script(t).includes("svc='demo-etcd'"))).toBe(true);
    for (const t of hb) await agent.report(t.id, 'succeeded', undefined, { output: 'heartbeat started', exitCode: 0 });
    await heartbeat('node-1');
    await heartbeat('node-2');
    const waiting = await until(async () => {
      const rs = await runs();
      return rs.every((r) => r.status.state === 'waiting') && rs;
    }, 'every run waiting at the gate');
    expect(waiting[0]!.stages[1]!.gate).toMatchObject({ state: 'waiting', waitingFor: 'service demo-etcd to have 3 passing members', since: expect.any(String) });
    const svc = (await central.request('GET', '/api/v1/services/demo-etcd')).json;
    expect(svc.members.map((m: { address: string; status: string }) => `${m.address}:${m.status}`)).toEqual(['198.18.0.11:passing', '198.18.0.12:passing', '198.18.0.13:critical']);

    // The central restarts while everyone waits; the agent comes back with its own certificate.
    agent.close();
    await central.close();
    central = await startInProcessCentral({ dir });
    agent = await central.reconnectAgent(agent);
    await new Promise((r) => setTimeout(r, 300));
    expect((await runs()).every((r) => r.status.state === 'waiting')).toBe(true);
    expect(tasksIn(agent.frames)).toHaveLength(0); // nothing re-signed, nothing redelivered: the heartbeat tasks were done
  });

  it('the third member opens the gate; the link is cut while the join tasks are out; every run completes, each saw all three addresses, no step ran twice', async () => {
    await heartbeat('node-3');
    const joins = await until(() => tasksIn(agent.frames).length === 3 && tasksIn(agent.frames), 'three join tasks');
    for (const t of joins) expect(script(t).trim().split('\n')).toEqual(['198.18.0.11', '198.18.0.12', '198.18.0.13']);
    // Cut the link before any report; the tasks are redelivered at reconnect and reported once.
    agent.close();
    agent = await central.reconnectAgent(agent);
    const again = await until(() => tasksIn(agent.frames).length === 3 && tasksIn(agent.frames), 'the join tasks redelivered');
    expect(again.map((t) => t.id).sort()).toEqual(joins.map((t) => t.id).sort());
    for (const t of joins) await agent.report(t.id, 'succeeded', undefined, { output: script(t), exitCode: 0 });
    const done = await until(async () => {
      const rs = await runs();
      return rs.every((r) => r.status.state === 'succeeded') && rs;
    }, 'every run succeeded');
    for (const r of done) {
      expect(r.stages[1]!.steps[0]).toMatchObject({ state: 'succeeded', output: '198.18.0.11\n198.18.0.12\n198.18.0.13\n' });
      expect(r.stages.flatMap((s) => s.steps.flatMap((x) => x.taskIds))).toHaveLength(2); // one task per step
    }
    const all = (await central.request('GET', '/api/v1/tasks?limit=100')).json.items as { id: string }[];
    expect(all).toHaveLength(6);
    const one = await central.request('GET', `/api/v1/runs/${done[0]!.id}`);
    expect(one.status).toBe(200);
    expect((await central.request('POST', `/api/v1/runs/${done[0]!.id}/cancel`)).status).toBe(409);
    expect((await central.request('GET', '/api/v1/runs/nope')).status).toBe(404);
  });
});
