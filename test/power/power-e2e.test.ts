import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, joinAgent, killAllAgents, removeDir, runCli, spawnAgent, tempDir, waitFor, type AgentProcess } from '../agent-link/support.js';
import { spawnCentral, type CentralProcess } from '../central/support.js';
import { checkPrereqs } from '../support/require.js';
import { alive, filesContaining, startIpmiSim, vmPid, type IpmiSim } from './ipmi-sim.js';
import { freePort } from '../support/ports.js';
import { QemuMachine } from './qemu-qmp.js';
import { startRedfishStandIn, type RedfishStandIn } from './redfish-stand-in.js';

const ready = checkPrereqs('power/e2e', { commands: ['ipmi_sim', 'ipmitool', 'qemu-system-x86_64', 'openssl'] });
const IPMI_PASSWORD = 'Ipmi-E2E-9f3a1c';
const REDFISH_PASSWORD = 'Redfish-E2E-4d7b2e';
const WRONG_PASSWORD = 'Wrong-E2E-0c5e88';
const QEMU = ['qemu-system-x86_64', '-machine', 'pc,accel=tcg', '-m', '64', '-nodefaults', '-display', 'none', '-serial', 'null', '-monitor', 'none'];

/**
 * Power end to end (issue 13): a real central and a real agent (processes, as an operator starts them),
 * `underlay machines power|boot-device` through the CLI, the agent driving ipmi_sim (whose chassis
 * script starts and stops a real QEMU VM that has QEMU's ipmi-bmc-extern device on that BMC) and the
 * Redfish stand-in (QEMU over QMP). The BMC passwords are secret params sealed to the agent: afterwards
 * neither password appears in the central's data dir, the agent's state dir or any log.
 */
describe.skipIf(!ready)('power through the agent: IPMI (ipmi_sim + QEMU) and Redfish (stand-in + QEMU)', () => {
  let dir: string;
  let central: CentralProcess;
  let agent: AgentProcess;
  let agentState: string;
  let sim: IpmiSim;
  let rf: RedfishStandIn;
  let rfVm: QemuMachine;
  const env = () => ({ UNDERLAY_URL: central.url, UNDERLAY_TOKEN: central.token, UNDERLAY_CA: central.caPath });
  const cli = (...args: string[]) => runCli(args, { env: env() });

  beforeAll(async () => {
    dir = tempDir('underlay-power-e2e-');
    central = await spawnCentral({ env: { UNDERLAY_LOG_LEVEL: 'debug' } });
    await api(central, 'POST', '/api/v1/sites', { name: 'dc1' });
    agentState = join(dir, 'agent');
    await joinAgent(central, 'dc1', agentState);
    agent = spawnAgent(agentState, { env: { UNDERLAY_LOG_LEVEL: 'debug', UNDERLAY_POWER_POLL_INTERVAL: '1s', UNDERLAY_BMC_TIMEOUT: '1s', UNDERLAY_BMC_RETRIES: '1' } });
    await agent.waitLog(/desired state updated/);

    const serialPort = await freePort();
    const vmArgs = [...QEMU, '-chardev', `socket,id=ipmi0,host=127.0.0.1,port=${serialPort},reconnect=10`, '-device', 'ipmi-bmc-extern,id=bmc0,chardev=ipmi0', '-device', 'isa-ipmi-kcs,bmc=bmc0'];
    sim = await startIpmiSim(join(dir, 'ipmi'), { password: IPMI_PASSWORD, qemuCmd: vmArgs.join(' '), serialPort });

    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', '2', '-subj', '/CN=bmc.test', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
    const cert = readFileSync(join(dir, 'cert.pem'), 'utf8');
    rfVm = new QemuMachine(join(dir), QEMU.slice(1));
    rf = await startRedfishStandIn(rfVm, { username: 'admin', password: REDFISH_PASSWORD, tls: { key: readFileSync(join(dir, 'key.pem'), 'utf8'), cert } });

    await api(central, 'POST', '/api/v1/machines', {
      name: 'ipmi-vm', site: 'dc1', macs: ['52:54:00:13:00:01'],
      bmc: { type: 'ipmi', address: '127.0.0.1', port: sim.port, username: 'admin' },
      params: { bmc_password: IPMI_PASSWORD },
    });
    await api(central, 'POST', '/api/v1/machines', {
      name: 'redfish-vm', site: 'dc1', macs: ['52:54:00:13:00:02'],
      bmc: { type: 'redfish', address: '127.0.0.1', port: Number(new URL(rf.url).port), username: 'admin', passwordParam: 'rf_secret', tls: { fingerprint: new X509Certificate(cert).fingerprint256 } },
      params: { rf_secret: REDFISH_PASSWORD },
    });
  }, 240_000);

  afterAll(async () => {
    const pid = sim ? vmPid(sim) : 0;
    if (alive(pid)) process.kill(pid, 'SIGKILL');
    rfVm?.kill();
    await sim?.stop();
    await rf?.close();
    await killAllAgents();
    await central?.cleanup();
    removeDir(dir);
  });

  it('stores the password only sealed to the agent, and the API shows no plaintext', async () => {
    const m = await api<{ params: Record<string, unknown>; bmc: Record<string, unknown> }>(central, 'GET', '/api/v1/machines/ipmi-vm');
    expect(m.params.bmc_password).toEqual({ $sealed: [expect.any(String)] });
    expect(JSON.stringify(m)).not.toContain(IPMI_PASSWORD);
    expect(m.bmc).toMatchObject({ type: 'ipmi', username: 'admin', passwordParam: 'bmc_password' });
  });

  it('IPMI: status reads off; boot-device pxe --once then power on starts the VM with a one-time network boot', async () => {
    // The agent has the machines and their BMCs once its poller has read them.
    await waitFor('the first power reading', async () => (await api<{ power?: unknown }>(central, 'GET', '/api/v1/machines/ipmi-vm')).power, 60_000);
    let r = await cli('machines', 'power', 'ipmi-vm', 'status');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('power off');
    r = await cli('machines', 'boot-device', 'ipmi-vm', 'pxe', '--once');
    expect(r.code, r.stderr).toBe(0);
    expect(sim.file('boot')).toBe('pxe');
    r = await cli('machines', 'power', 'ipmi-vm', 'on');
    expect(r.code, r.stderr).toBe(0);
    const pid = await waitFor('QEMU started by the BMC', () => (alive(vmPid(sim)) ? vmPid(sim) : undefined), 30_000);
    expect(readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')).toEqual(expect.arrayContaining(['-boot', 'once=n', '-device', 'ipmi-bmc-extern,id=bmc0,chardev=ipmi0']));
    expect(sim.file('boot')).toBe('default'); // once: consumed by that boot
    r = await cli('machines', 'power', 'ipmi-vm', 'status');
    expect(r.stdout).toContain('power on');
  });

  it('IPMI: cycle restarts the VM (a new QEMU process); off stops it; the poller reports the state with when it was read', async () => {
    const before = vmPid(sim);
    let r = await cli('machines', 'power', 'ipmi-vm', 'cycle');
    expect(r.code, r.stderr).toBe(0);
    const after = await waitFor('QEMU restarted', () => (alive(vmPid(sim)) && vmPid(sim) !== before ? vmPid(sim) : undefined), 30_000);
    expect(alive(before)).toBe(false);
    r = await cli('machines', 'power', 'ipmi-vm', 'off');
    expect(r.code, r.stderr).toBe(0);
    await waitFor('QEMU stopped', () => !alive(after) || undefined, 15_000);
    const m = await waitFor('the poller reads off', async () => {
      const x = await api<{ power?: { state: string; readAt: string } }>(central, 'GET', '/api/v1/machines/ipmi-vm');
      return x.power?.state === 'off' ? x : undefined;
    }, 30_000);
    expect(Date.now() - Date.parse(m.power!.readAt)).toBeLessThan(60_000);
    const list = JSON.parse((await cli('machines', 'list', '-o', 'json')).stdout) as { items: { name: string; power?: { state: string; readAt: string } }[] };
    expect(list.items.find((x) => x.name === 'ipmi-vm')?.power).toMatchObject({ state: 'off', readAt: expect.any(String) });
  });

  it('every power action is a machine event (request and outcome)', async () => {
    const r = await cli('machines', 'events', 'ipmi-vm', '-o', 'json');
    const events = (JSON.parse(r.stdout) as { items: { cause: { kind: string; action?: string; taskKind?: string; taskState?: string }; reason?: string }[] }).items;
    for (const a of ['power status', 'boot-device', 'power on', 'power cycle', 'power off']) expect(events.some((e) => e.cause.kind === 'action' && e.cause.action === a), a).toBe(true);
    expect(events.filter((e) => e.cause.kind === 'task' && e.cause.taskKind === 'power' && e.cause.taskState === 'succeeded').length).toBeGreaterThanOrEqual(4);
  });

  it('Redfish: the same CLI powers the stand-in’s VM on and off and sets PXE once', async () => {
    let r = await cli('machines', 'power', 'redfish-vm', 'status');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('power off');
    r = await cli('machines', 'boot-device', 'redfish-vm', 'pxe', '--once');
    expect(r.code, r.stderr).toBe(0);
    expect(rf.boot).toEqual({ target: 'Pxe', enabled: 'Once' });
    r = await cli('machines', 'power', 'redfish-vm', 'on');
    expect(r.code, r.stderr).toBe(0);
    expect(await rfVm.running()).toBe(true);
    expect(rfVm.launches.at(-1)).toEqual(expect.arrayContaining(['-boot', 'once=n']));
    r = await cli('machines', 'power', 'redfish-vm', 'off');
    expect(r.code, r.stderr).toBe(0);
    expect(await rfVm.running()).toBe(false);
  });

  it('a wrong password is a clear error (exit 5, bmc-auth) and the agent keeps running', async () => {
    await api(central, 'PATCH', '/api/v1/machines/ipmi-vm', { params: { bmc_password: WRONG_PASSWORD } });
    // Until the new state reaches the agent the old password still works: retry until the change shows.
    const r = await waitFor('a refused status', async () => {
      const x = await cli('machines', 'power', 'ipmi-vm', 'status');
      return x.code === 0 ? undefined : x;
    }, 30_000);
    expect(r.code).toBe(5);
    expect(r.stderr).toContain('bmc-auth');
    expect(agent.running).toBe(true);
  });

  it('the poller backs off the BMC that refuses the password: doubling waits, not one login per round', async () => {
    const waits = () =>
      agent.stderr
        .split('\n')
        .filter((l) => l.includes('BMC power reading failed') && l.includes('"reason":"bmc-auth"') && l.includes('"machine":"ipmi-vm"'))
        .map((l) => (JSON.parse(l) as { nextTryInMs: number }).nextTryInMs);
    await waitFor('three refused readings', () => (waits().length >= 3 ? true : undefined), 60_000);
    // The interval is 1 s: a round every second, but the refused BMC is tried after 1, 2, then 4 s.
    expect(waits().slice(0, 3)).toEqual([1000, 2000, 4000]);
  });

  it('no BMC password appears in the central data dir, the agent state dir or any log', async () => {
    await central.stop();
    await agent.stop();
    for (const pw of [IPMI_PASSWORD, REDFISH_PASSWORD, WRONG_PASSWORD]) {
      expect(filesContaining(central.dataDir, pw)).toEqual([]);
      expect(filesContaining(agentState, pw)).toEqual([]);
      expect(central.stdout + central.stderr).not.toContain(pw);
      expect(agent.stderr).not.toContain(pw);
    }
    // The logs were really captured (the grep above is not vacuous).
    expect(agent.stderr).toMatch(/BMC operation failed/);
    writeFileSync(join(dir, 'done'), '');
  });
});
