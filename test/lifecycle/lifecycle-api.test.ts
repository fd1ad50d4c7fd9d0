import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openTask } from '../../shared/envelope/envelope.js';
import type { SignedTask } from '../../shared/envelope/envelope.js';
import { startInProcessCentral, type InProcessCentral, type SimAgent } from '../central/in-process.js';
import { tempDir } from '../central/support.js';

/**
 * Issue 12, the machine lifecycle through the real API of an in-process central and a simulated agent
 * on the mutual-TLS link (its events and task reports take the hub's own path): discover → ready →
 * deploy (a signed image-deploy task) → the task fails → failed → redeploy → the installed OS reports →
 * deployed with addresses → release → the wipe succeeds → discovery → ready; illegal transitions 409,
 * the state refused in PATCH and create, the events in order with their causes, wait, and a restart.
 */
const MAC = '52:54:00:c0:00:01';
const SHA = 'ab'.repeat(32);
const RAW = 'cd'.repeat(32);

let dir: string;
let central: InProcessCentral;
let agent: SimAgent;
let machineId: string;

const until = async <T>(f: () => Promise<T | undefined> | T | undefined, what: string, ms = 10_000): Promise<T> => {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v !== undefined && v !== null && v !== false) return v as T;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
};

function taskFrame(id: string): SignedTask | undefined {
  for (const f of agent.frames) {
    const list = f.type === 'task' ? [f.task] : f.type === 'tasks' ? f.tasks : [];
    for (const t of list) if ((JSON.parse(Buffer.from(t.canonical, 'base64').toString('utf8')) as { id: string }).id === id) return t;
  }
  return undefined;
}

const discovery = (facts: object) => agent.event('discovery', { machineId: 'proposed-1', mac: MAC, facts });
const machine = async () => (await central.request('GET', `/api/v1/machines/${machineId}`)).json;

beforeAll(async () => {
  dir = tempDir('underlay-lifecycle-');
  central = await startInProcessCentral({ dir });
  expect((await central.request('POST', '/api/v1/sites', { body: { name: 'dc1' } })).status).toBe(201);
  agent = await central.joinAgent('dc1', 'rack-agent');
  const env = await central.request('POST', '/api/v1/bootenvs', { body: { name: 'debian-cloud', os: { family: 'debian' }, kernel: { url: 'http://x/k' }, bootParams: '', templates: [] } });
  expect(env.status, env.text).toBe(201);
  // An image artifact as `images push` stores it (another part adds the command): the doc with its image description.
  await central.running.deps.store.put('artifacts', { id: SHA, sha256: SHA, size: 4096, urls: [], name: 'debian-12', createdAt: new Date().toISOString(), image: { format: 'zstd', rawSha256: RAW, rawSize: 1 << 20 } });
}, 60_000);
afterAll(async () => {
  await central?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('machine lifecycle over the API', () => {
  it('discovery with facts makes the machine ready, with its discovered address as ansible_host', async () => {
    await discovery({ cpu: { cores: 2 }, nics: [{ name: 'eno1', mac: MAC, addresses: ['198.18.0.31/24'] }] });
    const page = (await central.request('GET', `/api/v1/machines?mac=${MAC}`)).json;
    machineId = page.items[0].id;
    expect(page.items[0]).toMatchObject({ id: 'proposed-1', state: 'ready', addresses: [{ source: 'discovery', address: '198.18.0.31', interface: 'eno1' }] });
    const inv = (await central.request('GET', '/api/v1/inventory')).json;
    expect(inv._meta.hostvars[page.items[0].name]).toMatchObject({ ansible_host: '198.18.0.31', underlay_state: 'ready' });
    expect(inv.state_ready.hosts).toContain(page.items[0].name);
  });

  it('the state can never be set by PATCH or create: 400 naming the actions', async () => {
    for (const body of [{ state: 'deployed' }, { bootState: 'installed' }, { stateReason: 'x' }]) {
      const r = await central.request('PATCH', `/api/v1/machines/${machineId}`, { body });
      expect(r.status).toBe(400);
      expect(r.json.error.message).toMatch(/read-only: it changes through actions \(POST \/api\/v1\/machines\/\{id\}\/deploy, \/release, \/rescue/);
    }
    const create = await central.request('POST', '/api/v1/machines', { body: { name: 'forced', site: 'dc1', state: 'deployed' } });
    expect(create.status).toBe(400);
    expect(create.json.error.details[0]).toMatchObject({ path: 'state' });
    expect((await machine()).state).toBe('ready');
    const plain = await central.request('POST', '/api/v1/machines', { body: { name: 'by-hand', site: 'dc1' } });
    expect(plain.json.state).toBe('discovered');
  });

  it('illegal transitions are 409 with a clear message; an unknown image 400; viewers 403', async () => {
    const rel = await central.request('POST', `/api/v1/machines/${machineId}/release`, { body: { wipe: 'quick' } });
    expect(rel.status).toBe(409);
    expect(rel.json.error.message).toMatch(/is ready: release needs a machine that is deployed or failed or rescue/);
    const bad = await central.request('POST', `/api/v1/machines/${machineId}/deploy`, { body: { image: 'no-such-image' } });
    expect(bad.status).toBe(400);
    expect(bad.json.error.message).toMatch(/image "no-such-image" is not known/);
    const viewer = await central.token('viewer');
    expect((await central.request('POST', `/api/v1/machines/${machineId}/deploy`, { token: viewer, body: { image: 'debian-12' } })).status).toBe(403);
    const hostile = await central.request('POST', `/api/v1/machines/${machineId}/deploy`, { body: { image: 'debian-12', disk: '/dev/vda; rm -rf /', extra: 1 } });
    expect(hostile.status).toBe(400);
    expect((await machine()).state).toBe('ready');
    expect((await central.request('GET', '/api/v1/tasks')).json.items.filter((t: { kind: string }) => t.kind === 'image-deploy')).toEqual([]);
  });

  let deployTask: string;
  it('deploy signs an image-deploy task with the resolved image → deploying; a second deploy is 409', async () => {
    const r = await central.request('POST', `/api/v1/machines/${machineId}/deploy`, { body: { image: 'debian-12', disk: '/dev/vda', params: { motd: 'hello' } } });
    expect(r.status, r.text).toBe(202);
    expect(r.json).toMatchObject({ machine: { state: 'deploying', bootenv: 'debian-cloud', netboot: true, params: { motd: 'hello' } }, task: { kind: 'image-deploy' } });
    deployTask = r.json.task.id;
    const signed = await until(() => taskFrame(deployTask), 'the signed task at the agent');
    const opened = await openTask(signed, central.running.identity.signing.publicKey);
    expect(opened).toMatchObject({
      ok: true,
      envelope: { kind: 'image-deploy', machine: machineId, agent: agent.id, site: 'dc1', payload: { image: { name: 'debian-12', sha256: SHA, size: 4096, format: 'zstd', rawSha256: RAW, rawSize: 1 << 20 }, disk: '/dev/vda', config: 'cloud-init' } },
    });
    const again = await central.request('POST', `/api/v1/machines/${machineId}/deploy`, { body: { image: 'debian-12' } });
    expect(again.status).toBe(409);
    expect(again.json.error.message).toMatch(/is deploying: deploy needs a machine that is ready or failed/);
  });

  it('wait times out cleanly (408 with the current state), and answers at once when the machine fails', async () => {
    const t = await central.request('GET', `/api/v1/machines/${machineId}/wait?state=deployed&timeout=200ms`);
    expect(t.status).toBe(408);
    expect(t.json.error).toMatchObject({ code: 'wait_timeout', details: { state: 'deploying', wanted: 'deployed' } });
    const waiting = central.request('GET', `/api/v1/machines/${machineId}/wait?state=deployed&timeout=60s`);
    await agent.report(deployTask, 'running');
    await agent.report(deployTask, 'failed', 'sha256 mismatch');
    const started = Date.now();
    const w = await waiting;
    expect(Date.now() - started).toBeLessThan(5000);
    expect(w.status).toBe(409);
    expect(w.json.error).toMatchObject({ code: 'machine_failed', details: { state: 'failed', reason: 'image-deploy task failed: sha256 mismatch' } });
    expect(await machine()).toMatchObject({ state: 'failed', stateReason: 'image-deploy task failed: sha256 mismatch' });
  });

  it('redeploy, the image is written, the installed OS reports: wait returns deployed, addresses recorded, ansible_host from the OS', async () => {
    const r = await central.request('POST', `/api/v1/machines/${machineId}/deploy`, { body: { image: 'debian-12' } });
    expect(r.status, r.text).toBe(202);
    const task = r.json.task.id as string;
    const waiting = central.request('GET', `/api/v1/machines/${machineId}/wait?state=deployed&timeout=60s`);
    await agent.report(task, 'succeeded');
    expect((await machine()).state).toBe('deploying'); // it reboots into its disk first
    await agent.event('machine-os', { machineId, deployTaskId: task, os: { id: 'debian', versionId: '12', prettyName: 'Debian GNU/Linux 12 (bookworm)' }, kernel: '6.1.0-18-amd64', hostname: 'web-1', addresses: [{ interface: 'ens3', mac: MAC, address: '198.18.0.77/24' }] });
    const w = await waiting;
    expect(w.status, w.text).toBe(200);
    expect(w.json).toMatchObject({ state: 'deployed', os: { id: 'debian', kernel: '6.1.0-18-amd64' } });
    expect(w.json.addresses.map((a: { source: string; address: string }) => `${a.source}:${a.address}`)).toEqual(['discovery:198.18.0.31', 'os:198.18.0.77']);
    const inv = (await central.request('GET', `/api/v1/inventory/hosts/${w.json.name}`)).json;
    expect(inv).toMatchObject({ ansible_host: '198.18.0.77', underlay_state: 'deployed' });
    // A malformed report changes nothing and the link stays up.
    await agent.event('machine-os', { machineId, os: 'nope' });
    expect((await machine()).state).toBe('deployed');
  });

  it('release → a release task; its success keeps releasing; the next discovery → ready', async () => {
    const r = await central.request('POST', `/api/v1/machines/${machineId}/release`, { body: { wipe: 'secure' } });
    expect(r.status, r.text).toBe(202);
    expect(r.json).toMatchObject({ machine: { state: 'releasing', bootenv: 'discovery', netboot: true }, task: { kind: 'release' } });
    const opened = await openTask(await until(() => taskFrame(r.json.task.id), 'the release task'), central.running.identity.signing.publicKey);
    expect(opened).toMatchObject({ ok: true, envelope: { kind: 'release', payload: { wipe: 'secure' } } });
    await agent.report(r.json.task.id, 'succeeded');
    expect((await machine()).state).toBe('releasing');
    await discovery({ cpu: { cores: 2 }, nics: [{ name: 'eno1', mac: MAC, addresses: ['198.18.0.32/24'] }] });
    expect((await central.request('GET', `/api/v1/machines/${machineId}/wait?state=ready&timeout=5s`)).status).toBe(200);
  });

  const expected = [
    ['discovered', 'ready', 'agent-event:discovery'],
    ['ready', 'deploying', 'action:deploy'],
    ['deploying', 'failed', 'task:image-deploy:failed'],
    ['failed', 'deploying', 'action:deploy'],
    ['deploying', 'deployed', 'agent-event:machine-os'],
    ['deployed', 'releasing', 'action:release'],
    ['releasing', 'ready', 'agent-event:discovery'],
  ];
  const summary = (items: { from: string; to: string; cause: { kind: string; event?: string; action?: string; taskKind?: string; taskState?: string } }[]) =>
    items.map((e) => [e.from, e.to, [e.cause.kind, e.cause.event ?? e.cause.action ?? e.cause.taskKind, e.cause.taskState].filter(Boolean).join(':')]);

  it('the events are listed in order with their causes (token ids for actions, task ids for task results)', async () => {
    const r = await central.request('GET', `/api/v1/machines/${machineId}/events`);
    expect(r.status).toBe(200);
    expect(summary(r.json.items)).toEqual(expected);
    expect(r.json.items.map((e: { seq: number }) => e.seq)).toEqual([1, 2, 3, 4, 5, 6, 7]);
    const actions = r.json.items.filter((e: { cause: { kind: string } }) => e.cause.kind === 'action');
    expect(actions.every((e: { cause: { tokenId?: string; taskId?: string } }) => /^[0-9a-f]{16}$/.test(e.cause.tokenId ?? '') && !!e.cause.taskId)).toBe(true);
    expect(r.json.items[2]).toMatchObject({ cause: { taskId: deployTask }, reason: 'image-deploy task failed: sha256 mismatch' });
    const page = await central.request('GET', `/api/v1/machines/${machineId}/events?limit=2&offset=5`);
    expect(summary(page.json.items)).toEqual(expected.slice(5));
  });

  it('state and events survive a restart of the central', async () => {
    await central.close();
    central = await startInProcessCentral({ dir });
    expect(await machine()).toMatchObject({ state: 'ready' });
    expect(summary((await central.request('GET', `/api/v1/machines/${machineId}/events`)).json.items)).toEqual(expected);
    agent = await central.joinAgent('dc1', 'second-agent'); // the old link went with the old central
  });

  it('rescue puts a ready machine into the runner environment without a task, a release takes it out; deleting the machine drops its events', async () => {
    const r = await central.request('POST', `/api/v1/machines/${machineId}/rescue`);
    expect(r.status, r.text).toBe(202);
    expect(r.json.task).toBeUndefined();
    expect(r.json.machine).toMatchObject({ state: 'rescue', bootenv: 'discovery', netboot: true });
    // Out of rescue by a release; its body is optional (a quick wipe).
    const rel = await central.request('POST', `/api/v1/machines/${machineId}/release`);
    expect(rel.status, rel.text).toBe(202);
    expect((await central.request('GET', `/api/v1/tasks/${rel.json.task.id}`)).json.payload).toEqual({ wipe: 'quick' });
    expect((await central.request('DELETE', `/api/v1/machines/${machineId}`)).status).toBe(204);
    await until(() => central.running.deps.store.list('machine-events', { where: { machine: machineId } }).total === 0, 'events dropped');
  });
});
