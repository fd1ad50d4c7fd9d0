import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startInProcessCentral, type InProcessCentral, type SimAgent } from '../central/in-process.js';

/**
 * The central's side of power (issue 13) against an in-process central with a simulated agent: the
 * routes sign power and boot-device tasks, every request and outcome is a machine event, readings from
 * the agent land on the machine (only its own site's, only newer ones), a deploy of a machine that is
 * off powers it on into PXE, and the BMC password is stored only sealed.
 */
let central: InProcessCentral;
let agent: SimAgent;
let other: SimAgent;
const BMC = { type: 'ipmi', address: '198.18.5.10', username: 'admin' };

const tasksOf = async (machine: string) => ((await central.request('GET', `/api/v1/tasks?machine=${machine}&limit=100`)).json.items as { id: string; kind: string; payload: unknown; createdAt: string }[]).sort((a, b) => a.createdAt.localeCompare(b.createdAt));

beforeAll(async () => {
  central = await startInProcessCentral();
  await central.request('POST', '/api/v1/sites', { body: { name: 'dc1' } });
  await central.request('POST', '/api/v1/sites', { body: { name: 'dc2' } });
  agent = await central.joinAgent('dc1');
  other = await central.joinAgent('dc2');
  expect((await central.request('POST', '/api/v1/machines', { body: { name: 'm1', site: 'dc1', macs: ['52:54:00:13:01:01'], bmc: BMC, params: { bmc_password: 'pw-m1-secret' } } })).status).toBe(201);
  expect((await central.request('POST', '/api/v1/machines', { body: { name: 'nobmc', site: 'dc1', macs: ['52:54:00:13:01:02'] } })).status).toBe(201);
}, 60_000);
afterAll(async () => {
  await central?.close();
});

describe('power on the central', () => {
  it('stores the BMC password sealed, even without a param definition, and even before bmc is set', async () => {
    const m = (await central.request('GET', '/api/v1/machines/m1')).json;
    expect(m.params.bmc_password).toEqual({ $sealed: [agent.id] });
    expect(m.bmc).toEqual({ ...BMC, passwordParam: 'bmc_password' });
    const stored = JSON.stringify(central.running.deps.store.get('machines', m.id));
    expect(stored).not.toContain('pw-m1-secret');
    const r = await central.request('PATCH', '/api/v1/machines/nobmc', { body: { params: { bmc_password: 'pw-early' } } });
    expect(r.status).toBe(200);
    expect(JSON.stringify(central.running.deps.store.get('machines', r.json.id))).not.toContain('pw-early');
  });

  it('signs a power task for the machine and records the request as an event; a machine without a BMC is refused', async () => {
    const r = await central.request('POST', '/api/v1/machines/m1/power', { body: { action: 'on' } });
    expect(r.status, r.text).toBe(202);
    expect(r.json.task.kind).toBe('power');
    const t = (await central.request('GET', `/api/v1/tasks/${r.json.task.id}`)).json;
    expect(t).toMatchObject({ kind: 'power', payload: { action: 'on' }, agent: agent.id });
    const ev = (await central.request('GET', '/api/v1/machines/m1/events')).json.items;
    expect(ev.at(-1)).toMatchObject({ from: 'discovered', to: 'discovered', cause: { kind: 'action', action: 'power on', taskId: t.id } });
    expect((await central.request('POST', '/api/v1/machines/nobmc/power', { body: { action: 'on' } })).status).toBe(409);
    expect((await central.request('POST', '/api/v1/machines/m1/power', { body: { action: 'explode' } })).status).toBe(400);
    expect((await central.request('POST', '/api/v1/machines/m1/boot-device', { body: { device: 'usb' } })).status).toBe(400);
    const b = await central.request('POST', '/api/v1/machines/m1/boot-device', { body: { device: 'pxe' } });
    expect(b.status).toBe(202);
    expect((await central.request('GET', `/api/v1/tasks/${b.json.task.id}`)).json.payload).toEqual({ device: 'pxe', persistent: false });

    // The outcome is an event too.
    await agent.report(t.id, 'succeeded');
    const after = (await central.request('GET', '/api/v1/machines/m1/events')).json.items;
    expect(after.at(-1)).toMatchObject({ cause: { kind: 'task', taskId: t.id, taskKind: 'power', taskState: 'succeeded' } });
    expect(after.at(-1).reason).toMatch(/^power on: succeeded/);
  });

  it('offers the BMC address discovery read in-band: a bmc set without an address takes it; an address the operator gave is kept', async () => {
    const mac = '52:54:00:13:01:03';
    const created = await central.request('POST', '/api/v1/machines', { body: { name: 'found', site: 'dc1', macs: [mac] } });
    const id = created.json.id;
    // No discovery yet: an address is needed.
    const early = await central.request('PATCH', '/api/v1/machines/found', { body: { bmc: { type: 'ipmi', username: 'admin' } } });
    expect(early.status).toBe(400);
    expect(early.text).toMatch(/bmc\.address not given and discovery has not reported one/);
    await agent.event('discovery', { machineId: id, mac, facts: { bmc: { address: '198.18.5.77' } } });
    const r = await central.request('PATCH', '/api/v1/machines/found', { body: { bmc: { type: 'ipmi', username: 'admin' }, params: { bmc_password: 'pw-found' } } });
    expect(r.status, r.text).toBe(200);
    expect(r.json.bmc).toEqual({ type: 'ipmi', address: '198.18.5.77', username: 'admin', passwordParam: 'bmc_password' });
    // The operator moves it; a later discovery reporting another address changes the facts, not the bmc.
    expect((await central.request('PATCH', '/api/v1/machines/found', { body: { bmc: { type: 'ipmi', address: '198.18.5.78', username: 'admin' } } })).status).toBe(200);
    await agent.event('discovery', { machineId: id, mac, facts: { bmc: { address: '198.18.5.99' } } });
    const after = (await central.request('GET', '/api/v1/machines/found')).json;
    expect(after.facts.bmc).toEqual({ address: '198.18.5.99' });
    expect(after.bmc.address).toBe('198.18.5.78');
    // What a machine reports is data: an address that is not a plain host is never taken.
    await agent.event('discovery', { machineId: id, mac, facts: { bmc: { address: '198.18.5.1; reboot' } } });
    const bad = await central.request('PATCH', '/api/v1/machines/found', { body: { bmc: { type: 'ipmi', username: 'admin' } } });
    expect(bad.status).toBe(400);
    expect((await central.request('GET', '/api/v1/machines/found')).json.bmc.address).toBe('198.18.5.78');
  });

  it('a viewer token cannot power a machine', async () => {
    const viewer = await central.token('viewer');
    expect((await central.request('POST', '/api/v1/machines/m1/power', { token: viewer, body: { action: 'off' } })).status).toBe(403);
  });

  it('stores the readings its agent reports: newer ones only, never from another site’s agent, malformed ones dropped', async () => {
    const id = (await central.request('GET', '/api/v1/machines/m1')).json.id;
    const at = new Date().toISOString();
    await agent.event('power-state', { readings: [{ machineId: id, state: 'off', readAt: at }] });
    expect((await central.request('GET', '/api/v1/machines/m1')).json.power).toEqual({ state: 'off', readAt: at });
    await agent.event('power-state', { readings: [{ machineId: id, state: 'on', readAt: '2020-01-01T00:00:00.000Z' }] });
    await other.event('power-state', { readings: [{ machineId: id, state: 'on', readAt: new Date(Date.now() + 1000).toISOString() }] });
    await agent.event('power-state', { readings: 'nonsense' });
    expect((await central.request('GET', '/api/v1/machines/m1')).json.power).toEqual({ state: 'off', readAt: at });
    const later = new Date(Date.now() + 5).toISOString();
    await agent.event('power-state', { readings: [{ machineId: id, state: 'unknown', readAt: later, error: 'bmc-auth: refused' }] });
    expect((await central.request('GET', '/api/v1/machines/m1')).json.power).toEqual({ state: 'unknown', readAt: later, error: 'bmc-auth: refused' });
    // Restore "off" for the deploy check below.
    await agent.event('power-state', { readings: [{ machineId: id, state: 'off', readAt: new Date(Date.now() + 10).toISOString() }] });
  });

  it('a deploy of a machine that is off sets PXE once and powers it on (in that order)', async () => {
    const SHA = 'ab'.repeat(32);
    await central.running.deps.store.put('artifacts', { id: SHA, sha256: SHA, size: 100, urls: [], name: 'img', createdAt: new Date().toISOString(), image: { format: 'raw', rawSha256: SHA, rawSize: 1048576 } });
    expect((await central.request('POST', '/api/v1/bootenvs', { body: { name: 'debian-cloud', os: { family: 'debian' }, kernel: { url: 'http://x/k' }, bootParams: '', templates: [] } })).status).toBe(201);
    const id = (await central.request('GET', '/api/v1/machines/m1')).json.id;
    await agent.event('discovery', { machineId: id, mac: '52:54:00:13:01:01', facts: { cpu: { cores: 1 } } });
    const before = (await tasksOf(id)).length;
    const d = await central.request('POST', '/api/v1/machines/m1/deploy', { body: { image: 'img' } });
    expect(d.status, d.text).toBe(202);
    const kinds = async () => (await tasksOf(id)).slice(before).map((t) => `${t.kind}:${JSON.stringify(t.payload).slice(0, 40)}`);
    for (let i = 0; i < 50 && (await kinds()).length < 3; i++) await new Promise((r) => setTimeout(r, 100));
    const k = await kinds();
    expect(k[0]).toMatch(/^image-deploy:/);
    expect(k.slice(1)).toEqual(['boot-device:{"device":"pxe","persistent":false}', 'power:{"action":"on"}']);
  });

  it('release --power-off powers the machine off once it is back in ready', async () => {
    const id = (await central.request('GET', '/api/v1/machines/m1')).json.id;
    const deployTask = (await tasksOf(id)).find((t) => t.kind === 'image-deploy')!;
    await agent.report(deployTask.id, 'failed', 'test: deploy failed');
    for (let i = 0; i < 50 && (await central.request('GET', '/api/v1/machines/m1')).json.state !== 'failed'; i++) await new Promise((r) => setTimeout(r, 100));
    const rel = await central.request('POST', '/api/v1/machines/m1/release', { body: { powerOff: true } });
    expect(rel.status, rel.text).toBe(202);
    expect(rel.json.machine.deployment).toMatchObject({ action: 'release', powerOff: true });
    const before = (await tasksOf(id)).length;
    await agent.report(rel.json.task.id, 'succeeded');
    expect((await tasksOf(id)).slice(before).filter((t) => t.kind === 'power')).toEqual([]); // not before ready
    await agent.event('discovery', { machineId: id, mac: '52:54:00:13:01:01', facts: { cpu: { cores: 1 } } });
    let power: { payload: unknown }[] = [];
    for (let i = 0; i < 50 && power.length === 0; i++) {
      await new Promise((r) => setTimeout(r, 100));
      power = (await tasksOf(id)).slice(before).filter((t) => t.kind === 'power');
    }
    expect((await central.request('GET', '/api/v1/machines/m1')).json.state).toBe('ready');
    expect(power.map((t) => t.payload)).toEqual([{ action: 'off' }]);
  });
});
