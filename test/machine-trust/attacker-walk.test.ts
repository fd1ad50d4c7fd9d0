/**
 * Issue 11 item 1, walked as an attacker on the provisioning network would: a real agent HTTP server
 * (the agent's boot app on its hardened listener, over the agent's real durable runtime: outbox, task
 * log, machine queue, desired-state cache, boot sessions) on loopback. The machines talk from 127.0.0.1
 * (the address the agent's DHCP leased them), the attacker from 127.0.0.2 and knows every MAC. The
 * agent's outbox is what its link forwards to the central: what is not in it never reaches the central.
 */
import { request } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../shared/log/logger.js';
import { DesiredState } from '../../shared/protocol/desired-state.js';
import { bootRuntime, machine, siteState, tokenIn } from '../../agent/http/boot-http.test-support.js';
import { listenBootHttp } from '../../agent/http/server.js';

const MACHINE = '127.0.0.1';
const ATTACKER = '127.0.0.2';
const M1 = '52:54:00:aa:00:01'; // a machine in discovery (runner, discovery, health, done)
const M2 = '52:54:00:aa:00:02'; // a machine deploying a cloud image whose user-data carries a secret
const X = '52:54:00:aa:00:99'; // a MAC the agent never leased (proxy DHCP, another DHCP server)
const SECRET = 's3cr3t-root-pass';

const sealed = (v: unknown) => ({ $sealed: Buffer.from(JSON.stringify(v)).toString('base64') });
const openSecret = (v: unknown) => JSON.parse(Buffer.from((v as { $sealed: string }).$sealed, 'base64').toString('utf8')) as unknown;
const CLOUDY = {
  name: 'cloudy',
  os: { family: 'debian' },
  kernel: { url: 'discovery/vmlinuz' },
  bootParams: 'ds=nocloud;s={{ urls.machineBase }}/ console=ttyS0',
  install: true,
  templates: [
    { name: 'meta-data', path: 'meta-data', template: 'instance-id: {{ machine.id }}\n', validate: 'none' },
    { name: 'user-data', path: 'user-data', template: '#cloud-config\npassword: {{ params.root_password }}\n', validate: 'none' },
  ],
};
const state = (generation = 0) =>
  siteState(
    [
      machine('m-walk', 'walk-01', M1),
      machine('m-cloud', 'cloud-01', M2, { bootenv: 'cloudy', state: 'deploying', params: { root_password: sealed(SECRET) }, ...(generation ? { secretsGeneration: generation } : {}) }),
    ],
    { bootenvs: [CLOUDY], version: `v${generation}` },
  );

interface Res {
  status: number;
  text: string;
  json: () => any; // eslint-disable-line @typescript-eslint/no-explicit-any
  headers: Record<string, string | string[] | undefined>;
}

describe('attacker walk: knowing a MAC is not enough to become that machine', () => {
  const dir = mkdtempSync(join(tmpdir(), 'underlay-walk-'));
  let rt: Awaited<ReturnType<typeof bootRuntime>>;
  let server: Server;
  let port = 0;

  const call = (from: string, method: string, path: string, o: { body?: string; bearer?: string } = {}) =>
    new Promise<Res>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, method, path, localAddress: from, agent: false, headers: { ...(o.bearer ? { authorization: `Bearer ${o.bearer}` } : {}), ...(o.body ? { 'content-type': 'application/json' } : {}) } }, (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (d: string) => (text += d)).on('end', () => resolve({ status: res.statusCode!, text, json: () => JSON.parse(text), headers: res.headers }));
      });
      req.on('error', reject);
      req.end(o.body);
    });
  const script = (from: string, mac: string) => call(from, 'GET', `/ipxe/script?mac=${mac}&platform=pcbios`);
  const claim = (from: string, token: string) => call(from, 'POST', '/api/v1/boot/claim', { body: JSON.stringify({ token }) });
  const kinds = () => rt.outbox.messages().map((m) => (m.type === 'event' ? m.kind : `report:${m.state}`));

  beforeAll(async () => {
    rt = await bootRuntime(dir, {
      state: state(),
      openSecret,
      // The agent's DHCP leased both machines the address they talk from.
      leasedAddresses: (mac) => (mac === M1 || mac === M2 ? [MACHINE] : []),
    });
    server = await listenBootHttp(rt.app, { hostname: '127.0.0.1', port: 0, logger: silentLogger });
    port = (server.address() as { port: number }).port;
  });
  afterAll(async () => {
    server?.closeAllConnections();
    await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
    rmSync(dir, { recursive: true, force: true });
  });

  it('MAC only: no token, no secret, no task, no done, no discovery, no health — and the attempt is raised', async () => {
    const before = rt.outbox.size;
    const s = await script(ATTACKER, M1);
    expect(s.status).toBe(403);
    expect(s.text).not.toMatch(/underlay\.token=|\/m\//);
    expect(rt.events('boot-script-refused').at(-1)?.data).toMatchObject({ mac: M1, remote: ATTACKER, machineId: 'm-walk' });
    // The old scheme's token (MAC + HMAC) and any guess are worth nothing.
    for (const forged of [`${M1.replace(/:/g, '')}-${'A'.repeat(32)}`, 'A'.repeat(43)]) {
      expect((await call(ATTACKER, 'GET', `/m/${forged}/user-data`)).status).toBe(403);
      expect((await call(ATTACKER, 'POST', `/m/${forged}/done`)).status).toBe(403);
      expect((await call(ATTACKER, 'GET', '/api/v1/runner/next?wait=0', { bearer: forged })).status).toBe(401);
      expect((await call(ATTACKER, 'POST', '/api/v1/discovery', { bearer: forged, body: '{"cpu":{"threads":64}}' })).status).toBe(401);
      expect((await call(ATTACKER, 'PUT', '/api/v1/services/etcd/members/e1/pass', { bearer: forged })).status).toBe(401);
    }
    expect((await call(ATTACKER, 'POST', '/api/v1/discovery', { body: '{}' })).status).toBe(401);
    // Nothing but the refusal event went towards the central; the machine still netboots.
    expect(kinds().slice(before)).toEqual(['boot-script-refused']);
    expect(rt.cache.machineByMac(M1)).toMatchObject({ netboot: true, bootenv: 'discovery' });
  });

  let session = '';
  let token = '';
  it('the legitimate claim works; a second claim of the same boot token is refused and raised as an event', async () => {
    const s = await script(MACHINE, M1);
    expect(s.status).toBe(200);
    token = tokenIn(s.text);
    const first = await claim(MACHINE, token);
    expect(first.status).toBe(200);
    session = first.json().session;
    expect(first.json()).toMatchObject({ machine: 'm-walk', mac: M1 });
    // The token crossed the network in clear (plain HTTP): the attacker saw it and races, too late.
    const second = await claim(ATTACKER, token);
    expect(second.status).toBe(409);
    expect(second.text).not.toContain(session);
    expect(rt.events('boot-claim-refused').at(-1)?.data).toMatchObject({ machineId: 'm-walk', mac: M1, remote: ATTACKER, holderRemote: MACHINE, via: 'explicit' });
    // As a URL client (Ignition / cloud-init style) as well.
    expect((await call(ATTACKER, 'GET', `/m/${token}/anything`)).status).toBe(409);
    expect(rt.events('boot-claim-refused').at(-1)?.data).toMatchObject({ remote: ATTACKER, via: 'url' });
  });

  it('a forged report for a task not handed to the session is refused and nothing reaches the central', async () => {
    const task = await rt.queueTask('m-walk');
    // The attacker holds a session of its own (a MAC the agent never leased: allowed, and raised nowhere).
    const mine = (await claim(ATTACKER, tokenIn((await script(ATTACKER, X)).text))).json().session as string;
    expect((await call(ATTACKER, 'GET', '/api/v1/runner/next?wait=0', { bearer: mine })).status).toBe(204);
    const forged = JSON.stringify({ state: 'succeeded', output: 'pwned', exitCode: 0 });
    expect((await call(ATTACKER, 'POST', `/api/v1/runner/tasks/${task.id}/events`, { body: forged })).status).toBe(401);
    expect((await call(ATTACKER, 'POST', `/api/v1/runner/tasks/${task.id}/events`, { bearer: mine, body: forged })).status).toBe(404);
    expect(rt.reports(task.id).map((r) => r.state)).toEqual(['accepted']);
    // The machine's runner gets it; the attacker still cannot report it.
    const next = await call(MACHINE, 'GET', '/api/v1/runner/next?wait=0', { bearer: session });
    expect(next.status).toBe(200);
    expect((await call(ATTACKER, 'POST', `/api/v1/runner/tasks/${task.id}/events`, { bearer: mine, body: forged })).status).toBe(404);
    expect(rt.reports(task.id).map((r) => r.state)).toEqual(['accepted']);
    const real = await call(MACHINE, 'POST', `/api/v1/runner/tasks/${task.id}/events`, { bearer: session, body: JSON.stringify({ state: 'succeeded', output: 'hi\n', exitCode: 0 }) });
    expect(real.status).toBe(200);
    expect(rt.reports(task.id).map((r) => r.state)).toEqual(['accepted', 'succeeded']);
    expect(JSON.stringify(rt.outbox.messages())).not.toContain('pwned');
  });

  it('with the session: discovery, health and done work; done from the attacker is refused and raised', async () => {
    expect((await call(MACHINE, 'POST', '/api/v1/discovery', { bearer: session, body: '{"cpu":{"threads":2}}' })).status).toBe(202);
    expect(rt.events('discovery').at(-1)?.data).toMatchObject({ machineId: 'm-walk', mac: M1 });
    expect((await call(MACHINE, 'PUT', '/api/v1/services/etcd/members/e1/pass', { bearer: session })).status).toBe(202);
    expect((await call(ATTACKER, 'POST', `/m/${token}/done`)).status).toBe(409);
    expect(rt.cache.machineByMac(M1)).toMatchObject({ netboot: true });
    expect(rt.events('install-done')).toHaveLength(0);
    expect((await call(MACHINE, 'POST', `/m/${token}/done`, { bearer: session })).status).toBe(200);
    expect(rt.cache.machineByMac(M1)).toMatchObject({ netboot: false, bootenv: 'local' });
  });

  it('the install-done override survives an agent restart while the central is unreachable', async () => {
    // A new agent instance on the same state dir, with only the stale cached state (netboot: true).
    const again = await bootRuntime(dir, { state: state() });
    expect(again.cache.machineByMac(M1)).toMatchObject({ netboot: false, bootenv: 'local' });
    expect(await (await again.app.request(`/ipxe/script?mac=${M1}&platform=pcbios`)).text()).toContain('sanboot --no-describe --drive 0x80');
  });

  it('secrets are served to one session per deploy, then 410 and an event until the operator re-arms', async () => {
    const boot = async () => tokenIn((await script(MACHINE, M2)).text);
    const t1 = await boot();
    // cloud-init (a URL-only client) claims with its first request and is known by its address after.
    expect((await call(MACHINE, 'GET', `/m/${t1}/meta-data`)).status).toBe(200);
    const ud = await call(MACHINE, 'GET', `/m/${t1}/user-data`);
    expect(ud.status).toBe(200);
    expect(ud.text).toContain(SECRET);
    expect((await call(MACHINE, 'GET', `/m/${t1}/user-data`)).text).toContain(SECRET); // its own retry
    const stolen = await call(ATTACKER, 'GET', `/m/${t1}/user-data`);
    expect(stolen.status).toBe(409);
    expect(stolen.text).not.toContain(SECRET);
    // A second boot session for the machine (a reboot, or someone who took its address) gets no secret.
    const t2 = await boot();
    const again = await call(MACHINE, 'GET', `/m/${t2}/user-data`);
    expect(again.status).toBe(410);
    expect(again.text).not.toContain(SECRET);
    expect(rt.events('boot-session-superseded').at(-1)?.data).toMatchObject({ machineId: 'm-cloud', mac: M2 });
    expect(rt.events('boot-secrets-refused').at(-1)?.data).toMatchObject({ machineId: 'm-cloud', mac: M2, path: 'user-data', generation: 0 });
    expect((await call(MACHINE, 'GET', `/m/${t2}/meta-data`)).status).toBe(200); // no secret in it: served
    // The operator re-arms (POST /machines/{id}/rearm → secretsGeneration in the desired state).
    await rt.cache.replace(DesiredState.parse(state(1)));
    const t3 = await boot();
    const rearmed = await call(MACHINE, 'GET', `/m/${t3}/user-data`);
    expect(rearmed.status).toBe(200);
    expect(rearmed.text).toContain(SECRET);
    const t4 = await boot();
    expect((await call(MACHINE, 'GET', `/m/${t4}/user-data`)).status).toBe(410);
  });
});
