import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConflictError } from '../../shared/errors/domain-errors.js';
import { RUNS } from './resources.js';
import { SERVICE_CAS } from '../service-pki/resources.js';
import { runsBench } from './runs.test-support.js';
import type { RunDoc } from './state-machine.js';

let b: Awaited<ReturnType<typeof runsBench>>;
beforeEach(async () => {
  b = await runsBench();
});
afterEach(async () => {
  await b.close();
});

const script = (t: { payload: unknown }) => Buffer.from((t.payload as { scriptB64: string }).scriptB64, 'base64').toString();
const run = (id: string) => b.store.get<RunDoc>(RUNS, id)!;

const CLUSTER = {
  name: 'demo-cluster',
  stages: [
    { name: 'register', steps: [{ action: 'register-service', with: { service: 'demo-etcd', port: 2379, ttl: '30s' } }] },
    {
      name: 'join',
      wait: { service: 'demo-etcd', passing: 3 },
      steps: [{ name: 'write-members', task: 'run-script', payload: { script: "{% for m in services['demo-etcd'].members %}{{ m.address }}\n{% endfor %}" } }],
    },
  ],
};

describe('run engine: cluster linking', () => {
  it('registers three members, holds every machine at the gate until all three pass (one stopped heartbeat keeps them waiting), then each step sees all three addresses', async () => {
    for (const i of [1, 2, 3]) await b.machine(i);
    const runs = await b.env.engine.start(await b.workflow(CLUSTER), b.machines('m-1', 'm-2', 'm-3'));
    await b.settle();
    // Stage 1: each machine got its member (critical until it heartbeats) and one heartbeat task.
    expect(b.env.registry.get('demo-etcd')!.members.map((m) => `${m.id}@${m.address}:${m.status}`)).toEqual(['node-1-2379@198.18.0.11:critical', 'node-2-2379@198.18.0.12:critical', 'node-3-2379@198.18.0.13:critical']);
    const hb = b.tasks();
    expect(hb.map((t) => t.kind)).toEqual(['run-script', 'run-script', 'run-script']);
    expect(script(hb[0]!)).toContain("svc='demo-etcd'; member='node-1-2379'");
    for (const t of hb) await b.finish(t, 'succeeded', 'heartbeat of demo-etcd started');
    await b.heartbeat('demo-etcd', 'node-1-2379');
    await b.heartbeat('demo-etcd', 'node-2-2379');
    await b.settle();
    for (const r of runs) expect(run(r.id).status).toMatchObject({ state: 'waiting', for: 'stage join: service demo-etcd to have 3 passing members' });
    expect(b.tasks()).toHaveLength(3); // nobody passed the gate early
    // node-2's heartbeat stops (critical) as node-3 starts passing: still two, everyone keeps waiting.
    await b.heartbeat('demo-etcd', 'node-2-2379', 'critical');
    await b.heartbeat('demo-etcd', 'node-3-2379');
    await b.settle();
    expect(b.tasks()).toHaveLength(3);
    expect(run(runs[0]!.id).stages[1]!.gate).toMatchObject({ state: 'waiting', waitingFor: 'service demo-etcd to have 3 passing members' });
    await b.heartbeat('demo-etcd', 'node-2-2379');
    await b.settle();
    const joins = b.tasks().slice(3);
    expect(joins).toHaveLength(3);
    for (const t of joins) expect(script(t).trim().split('\n')).toEqual(['198.18.0.11', '198.18.0.12', '198.18.0.13']);
    for (const t of joins) await b.finish(t, 'succeeded', script(t));
    await b.settle();
    for (const r of runs) {
      const done = run(r.id);
      expect(done.status.state).toBe('succeeded');
      expect(done.stages[1]!.steps[0]).toMatchObject({ state: 'succeeded', output: '198.18.0.11\n198.18.0.12\n198.18.0.13\n', attempts: 1 });
    }
  });

  it('a lapsed TTL (heartbeat stopped) closes the count again: the gate waits', async () => {
    for (const i of [1, 2, 3]) await b.machine(i);
    await b.env.registry.register('demo-etcd', { id: 'x', address: '198.18.0.99', port: 1, tags: [], meta: {}, status: 'passing', ttl: '10s' });
    await b.env.registry.register('demo-etcd', { id: 'y', address: '198.18.0.98', port: 1, tags: [], meta: {}, status: 'passing' });
    const wf = await b.workflow({ name: 'w', stages: [{ name: 'join', wait: { service: 'demo-etcd', passing: 3 }, steps: [{ task: 'ping', payload: {} }] }] });
    b.advance(11_000);
    await b.env.registry.sweep(); // x lapses: critical
    await b.env.registry.register('demo-etcd', { id: 'z', address: '198.18.0.97', port: 1, tags: [], meta: {}, status: 'passing' });
    const [r] = await b.env.engine.start(wf, b.machines('m-1'));
    await b.settle();
    expect(run(r!.id).status.state).toBe('waiting');
    await b.heartbeat('demo-etcd', 'x');
    await b.settle();
    expect(run(r!.id).stages[0]!.steps[0]!.state).toBe('running');
  });
});

describe('run engine: durability', () => {
  const TWO = { name: 'two', stages: [{ name: 'a', steps: [{ name: 's1', task: 'run-script', payload: { script: 'echo 1' } }] }, { name: 'b', steps: [{ name: 's2', task: 'run-script', payload: { script: 'echo 2' } }] }] };

  it('a central restart mid-run resumes it; no step runs twice', async () => {
    await b.machine(1);
    const [r] = await b.env.engine.start(await b.workflow(TWO), b.machines('m-1'));
    await b.settle();
    const [t1] = b.tasks();
    expect(run(r!.id).stages[0]!.steps[0]).toMatchObject({ state: 'running', taskId: t1!.id });
    await b.restart();
    await b.settle();
    expect(b.tasks()).toHaveLength(1); // resuming signed nothing new
    await b.finish(t1!); // the agent reports after the restart (it kept the task through the outage)
    await b.settle();
    expect(b.tasks()).toHaveLength(2);
    await b.restart();
    await b.settle();
    await b.finish(b.tasks()[1]!);
    await b.settle();
    expect(run(r!.id).status.state).toBe('succeeded');
    expect(b.tasks().map((t) => script(t))).toEqual(['echo 1', 'echo 2']);
  });

  it('a crash between recording a step and signing its task: the recorded task id is signed once at resume; a signed one is adopted', async () => {
    await b.machine(1);
    await b.machine(2);
    const wf = await b.workflow(TWO);
    const [r1, r2] = await b.env.engine.start(wf, b.machines('m-1', 'm-2'));
    await b.settle();
    const [ta, tb] = b.tasks();
    // Rewind both runs to `dispatching` (the record written just before signing); delete r1's task as if the crash came first.
    for (const [r, t] of [[r1!, ta!], [r2!, tb!]] as const) {
      const doc = run(r.id);
      const step = doc.stages[0]!.steps[0]!;
      doc.stages[0]!.steps[0] = { ...step, state: 'dispatching', since: (step as { since: string }).since, deadline: (step as { deadline: string }).deadline, taskId: t.id } as never;
      await b.store.put(RUNS, doc);
    }
    await b.store.delete('tasks', ta!.id);
    await b.restart();
    await b.settle();
    const after = b.tasks();
    expect(after.map((t) => t.id).sort()).toEqual([ta!.id, tb!.id].sort());
    expect(run(r1!.id).stages[0]!.steps[0]).toMatchObject({ state: 'running', taskId: ta!.id, attempts: 1 });
    expect(run(r2!.id).stages[0]!.steps[0]).toMatchObject({ state: 'running', taskId: tb!.id, attempts: 1 });
  });

  it('a task that finished while the central was down is picked up at resume', async () => {
    await b.machine(1);
    const [r] = await b.env.engine.start(await b.workflow(TWO), b.machines('m-1'));
    await b.settle();
    b.env.engine.stop(); // the engine is gone; the report still lands
    await b.finish(b.tasks()[0]!);
    await b.restart();
    await b.settle();
    expect(run(r!.id).stages[0]!.steps[0]!.state).toBe('succeeded');
    expect(b.tasks()).toHaveLength(2);
  });
});

describe('run engine: steps', () => {
  it('retries a failed task step as a new task, then stops with the reason; retry restarts it; a machine runs one workflow at a time', async () => {
    await b.machine(1);
    const wf = await b.workflow({ name: 'r', stages: [{ name: 'a', steps: [{ name: 'flaky', task: 'run-script', payload: { script: 'false' }, retries: 1 }] }] });
    const raced = await Promise.allSettled([b.env.engine.start(wf, b.machines('m-1')), b.env.engine.start(wf, b.machines('m-1'))]);
    expect(raced.map((x) => x.status).sort()).toEqual(['fulfilled', 'rejected']);
    expect((raced.find((x) => x.status === 'rejected') as PromiseRejectedResult).reason).toBeInstanceOf(ConflictError);
    const [r] = (raced.find((x) => x.status === 'fulfilled') as PromiseFulfilledResult<RunDoc[]>).value;
    await b.settle();
    await b.finish(b.tasks()[0]!, 'failed');
    await b.settle();
    expect(b.tasks()).toHaveLength(2);
    await b.finish(b.tasks()[1]!, 'failed');
    await b.settle();
    expect(run(r!.id).status).toMatchObject({ state: 'failed', reason: expect.stringContaining('task run-script failed') });
    expect(run(r!.id).stages[0]!.steps[0]).toMatchObject({ attempts: 2, taskIds: b.tasks().map((t) => t.id) });
    await b.env.engine.retry(r!.id);
    await b.settle();
    expect(b.tasks()).toHaveLength(3);
    await b.finish(b.tasks()[2]!);
    await b.settle();
    expect(run(r!.id).status.state).toBe('succeeded');
  });

  it('a step past its timeout fails (its queued task withdrawn); a template error fails the step without signing anything', async () => {
    await b.machine(1);
    await b.machine(2);
    const slow = await b.workflow({ name: 'slow', stages: [{ name: 'a', steps: [{ task: 'run-script', payload: { script: 'sleep 9' }, timeout: '1s' }] }] });
    const [r] = await b.env.engine.start(slow, b.machines('m-1'));
    await b.settle();
    await new Promise((res) => setTimeout(res, 1200));
    await b.settle();
    expect(run(r!.id).status).toMatchObject({ state: 'failed', reason: expect.stringContaining('timed out after 1s') });
    expect(b.tasks()[0]!.state).toBe('cancelled');
    const broken = await b.workflow({ name: 'broken', stages: [{ name: 'a', steps: [{ task: 'run-script', payload: { script: '{{ params.missing }}' } }] }] });
    const [r2] = await b.env.engine.start(broken, b.machines('m-2'));
    await b.settle();
    expect(run(r2!.id).status).toMatchObject({ state: 'failed', reason: expect.stringContaining('payload.script') });
    expect(b.tasks()).toHaveLength(1);
  });

  it('built-in actions: set-bootenv and reboot are signed tasks; deploy goes through the lifecycle and succeeds when the machine is deployed', async () => {
    await b.machine(1);
    const wf = await b.workflow({ name: 'd', stages: [{ name: 'a', steps: [{ action: 'deploy', with: { image: 'debian-12' } }, { action: 'reboot' }] }] });
    const [r] = await b.env.engine.start(wf, b.machines('m-1'));
    await b.settle();
    const m = b.machines('m-1')[0]!;
    expect(m).toMatchObject({ state: 'deploying', deployment: { action: 'deploy' } });
    expect(run(r!.id).stages[0]!.steps[0]).toMatchObject({ state: 'running', taskId: (m.deployment as { taskId: string }).taskId });
    await b.finish(b.tasks()[0]!); // the image is written; the machine is not deployed yet
    await b.settle();
    expect(run(r!.id).stages[0]!.steps[0]!.state).toBe('running');
    await b.env.lc.fire(b.machines('m-1')[0]!, 'os-reported', { kind: 'agent' } as never);
    await b.settle();
    expect(run(r!.id).stages[0]!.steps[0]!.state).toBe('succeeded');
    expect(b.tasks().map((t) => t.kind)).toEqual(['image-deploy', 'reboot']);
  });

  it('cert-request is a signed machine task; step templates see `pki` (the machine’s certificate paths, each CA’s PEM, the service bundle)', async () => {
    await b.machine(1);
    await b.machine(2, { state: 'deployed' } as never);
    const at = new Date().toISOString();
    const pem = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
    await b.store.put(SERVICE_CAS, { id: 'ca-1', name: 'demo', service: 'demo', keyType: 'ec-p256', certificate: pem, fingerprint: 'f', notAfter: at, maxCertTtl: '30d', sealedKey: { alg: 'aes-256-gcm', iv: '', tag: '', data: 'SEALED' }, createdAt: at, updatedAt: at });
    const wf = await b.workflow({
      name: 'tls',
      stages: [{ name: 'a', steps: [{ action: 'cert-request', with: { ca: 'demo', ttl: '{{ params.cert_ttl | default: "7d" }}' } }, { task: 'run-script', payload: { script: 'cp {{ pki.cas.demo.cert }} /etc/app/\nprintf %s {{ pki.bundles.demo | shell_quote }} >/etc/app/ca.pem' } }] }],
    });
    for (const id of ['m-1', 'm-2']) {
      const [r] = await b.env.engine.start(wf, b.machines(id));
      await b.settle();
      const [req] = b.tasksOf(id);
      expect(req).toMatchObject({ kind: 'cert-request', payload: { ca: 'demo', ttl: '7d' } });
      await b.finish(req!);
      await b.settle();
      const [, sh] = b.tasksOf(id);
      const dir = id === 'm-2' ? '/etc/underlay/certs' : '/run/underlay/certs'; // installed OS or discovery
      expect(script(sh!)).toBe(`cp ${dir}/demo/cert.pem /etc/app/\nprintf %s '${pem}' >/etc/app/ca.pem`);
      await b.finish(sh!);
      await b.settle();
      expect(run(r!.id).status.state).toBe('succeeded');
    }
  });

  it('approval, param and machines gates open on continue and on store changes; cancel withdraws the queued task', async () => {
    await b.machine(1);
    await b.machine(2, { rack: 'r9', state: 'ready' });
    const wf = await b.workflow({
      name: 'g',
      stages: [
        { name: 'ok', approval: true, steps: [] },
        { name: 'p', wait: { param: 'role' }, steps: [] },
        { name: 'm', wait: { machines: 'rack=r9', state: 'deployed' }, steps: [{ task: 'ping' }] },
      ],
    });
    const [r] = await b.env.engine.start(wf, b.machines('m-1'));
    await b.settle();
    expect(run(r!.id).status).toMatchObject({ state: 'waiting', for: 'stage ok: an approval (underlay runs continue RUN)' });
    await b.env.engine.approve(r!.id);
    await b.settle();
    expect(run(r!.id).status).toMatchObject({ state: 'waiting', for: 'stage p: param role to be set' });
    await b.store.put('machines', { ...b.machines('m-1')[0]!, params: { role: 'etcd' } });
    await b.settle();
    expect(run(r!.id).status).toMatchObject({ state: 'waiting', for: 'stage m: every machine matching rack=r9 to be deployed' });
    await b.store.put('machines', { ...b.machines('m-2')[0]!, state: 'deployed' });
    await b.settle();
    const [t] = b.tasks();
    expect(t).toMatchObject({ kind: 'ping', state: 'queued' });
    await b.env.engine.cancel(r!.id);
    expect(run(r!.id).status.state).toBe('cancelled');
    expect(b.tasks()[0]!.state).toBe('cancelled');
    await expect(b.env.engine.approve(r!.id)).rejects.toThrow(ConflictError);
  });
});

describe('run engine: shutdown', () => {
  it('resolves only once no drive is under way: nothing is written after it, so the store can close', async () => {
    for (let i = 1; i <= 9; i++) await b.machine(i);
    const wf = await b.workflow({ name: 'w', stages: [{ name: 's', steps: [{ task: 'ping', payload: {} }, { task: 'ping', payload: {} }] }] });
    await b.env.engine.start(wf, b.machines(...Array.from({ length: 9 }, (_, i) => `m-${i + 1}`)));
    await b.env.engine.shutdown();
    const after: string[] = [];
    const off = b.store.changes.on((c) => after.push(`${c.collection}/${c.id}`));
    await new Promise((r) => setTimeout(r, 100));
    off();
    expect(after).toEqual([]);
  });
});
