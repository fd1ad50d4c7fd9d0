/**
 * IPMI power into a real PXE boot (issue 13): a virtual rack (test/e2e/rack.ts: a namespace, a real
 * central and site agent serving DHCP/TFTP/HTTP), OpenIPMI's ipmi_sim in that namespace as the BMC of a
 * powered-off QEMU VM (SeaBIOS + iPXE ROM, e1000 on the rack bridge, QEMU's ipmi-bmc-extern +
 * isa-ipmi-kcs wired to ipmi_sim). The operator sets the machine's BMC through the CLI (password from a
 * file), then `machines boot-device pxe --once` and `machines power on`: the VM starts, boots the
 * discovery image from the agent and is discovered; discovery reads the BMC's LAN address in-band
 * (/dev/ipmi0, ipmitool) and the central keeps it in the facts without replacing the operator's address.
 * `power off` stops the VM and the poller reports it. The BMC password appears in no file or log.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RACK_PREREQS, Rack, until } from '../e2e/rack.js';
import { checkPrereqs } from '../support/require.js';
import { alive, filesContaining, startIpmiSim, vmPid, type IpmiSim } from './ipmi-sim.js';

const ready = checkPrereqs('power/ipmi-pxe', { ...RACK_PREREQS, commands: [...RACK_PREREQS.commands, 'ipmi_sim'] });
const MAC = '52:54:00:13:0d:01';
const PASSWORD = 'Ipmi-Pxe-5e21b7';
const BMC_PORT = 6230;
/** What the BMC says its LAN address is (ipmi_sim's lan_config_program); the agent reaches it at 127.0.0.1. */
const BMC_LAN_ADDRESS = '198.18.0.250';

describe.skipIf(!ready)('IPMI power on with PXE once boots a real VM into discovery, which reads the BMC address in-band', () => {
  let rack: Rack;
  let sim: IpmiSim;
  let serialLog: string;
  let startedAt = 0;
  const json = <T>(args: string[]) => rack.cliJson(args) as T;
  const machine = () => json<{ id: string; state: string; bmc?: { address: string }; facts?: { bmc?: { address?: string }; bootMac?: string }; power?: { state: string; readAt: string } }>(['machines', 'show', 'ipmi-pxe']);

  beforeAll(async () => {
    rack = await Rack.start({ prefix: 'ulpwr', dhcp: 'full', agentLogLevel: 'debug', agentEnv: { UNDERLAY_POWER_POLL_INTERVAL: '2s', UNDERLAY_BMC_TIMEOUT: '2s', UNDERLAY_BMC_RETRIES: '1' } });
    rack.ns.addTap('tappwr', 'br0');
    serialLog = join(rack.work, 'ipmi-pxe.serial.log');
    writeFileSync(serialLog, '');
    const vm = [
      'qemu-system-x86_64', '-name', 'ipmi-pxe', '-machine', 'pc,accel=tcg', '-m', '512', '-smp', '1', '-display', 'none', '-monitor', 'none',
      '-serial', `file:${serialLog}`,
      '-netdev', 'tap,id=n0,ifname=tappwr,script=no,downscript=no', '-device', `e1000,netdev=n0,mac=${MAC}`,
      '-chardev', 'socket,id=ipmi0,host=127.0.0.1,port=9002,reconnect=10', '-device', 'ipmi-bmc-extern,id=bmc0,chardev=ipmi0', '-device', 'isa-ipmi-kcs,bmc=bmc0',
    ];
    sim = await startIpmiSim(join(rack.work, 'bmc'), { password: PASSWORD, qemuCmd: vm.join(' '), serialPort: 9002, netns: { ns: rack.ns, port: BMC_PORT }, lanAddress: BMC_LAN_ADDRESS });
    writeFileSync(join(rack.work, 'bmc-password'), `${PASSWORD}\n`, { mode: 0o600 });
    startedAt = Date.now();
    rack.cli(['machines', 'create', 'ipmi-pxe', '--site', 'rack1', '--mac', MAC, '--bmc', `ipmi://admin@127.0.0.1:${BMC_PORT}`, '--bmc-password-file', join(rack.work, 'bmc-password')]);
  }, 600_000);

  afterAll(async () => {
    const pid = sim ? vmPid(sim) : 0;
    if (alive(pid)) process.kill(pid, 'SIGKILL');
    await sim?.stop();
    rack?.destroy();
  });

  it('the poller reads the VM as off; boot-device pxe --once and power on start it with a one-time network boot', async () => {
    await until(() => machine().power?.state === 'off' || undefined, 'the first power reading (off)', 120_000);
    expect(rack.cli(['machines', 'boot-device', 'ipmi-pxe', 'pxe', '--once'])).toMatch(/succeeded|pxe/);
    expect(sim.file('boot')).toBe('pxe');
    rack.cli(['machines', 'power', 'ipmi-pxe', 'on']);
    const pid = await until(() => (alive(vmPid(sim)) ? vmPid(sim) : undefined), 'QEMU started by the BMC', 60_000);
    expect(readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')).toEqual(expect.arrayContaining(['-boot', 'once=n']));
    expect(sim.file('boot')).toBe('default'); // once: consumed by this boot
  });

  it('the VM PXE boots from the agent into discovery and is discovered with its facts', async () => {
    await until(() => /underlay: discovered ([0-9a-f:]{17})/.exec(readFileSync(serialLog, 'latin1')), 'the discovery line on the VM serial console', 600_000, {
      intervalMs: 1000,
      diag: () => readFileSync(serialLog, 'latin1').slice(-3000),
    });
    const m = await until(() => {
      const x = machine();
      return x.facts?.bootMac ? x : undefined;
    }, 'the facts at the central', 120_000);
    expect(m.facts!.bootMac).toBe(MAC);
    expect(rack.agentLines().some((l) => l.msg === 'served iPXE script' && l.mac === MAC)).toBe(true);
  });

  it('discovery read the BMC LAN address in-band; the central has it in the facts and kept the operator’s address', async () => {
    const serial = readFileSync(serialLog, 'latin1');
    expect(serial).toContain(`underlay: BMC LAN address ${BMC_LAN_ADDRESS} (read in-band)`);
    const m = machine();
    expect(m.facts?.bmc).toEqual({ address: BMC_LAN_ADDRESS });
    expect(m.bmc?.address).toBe('127.0.0.1');
  });

  it('power off stops the VM and the poller reports it', async () => {
    const pid = vmPid(sim);
    rack.cli(['machines', 'power', 'ipmi-pxe', 'off']);
    await until(() => !alive(pid) || undefined, 'QEMU stopped', 30_000);
    await until(() => machine().power?.state === 'off' || undefined, 'the reading off', 60_000);
    expect(rack.cli(['machines', 'power', 'ipmi-pxe', 'status'])).toContain('power off');
  });

  it('the central stored a power-state event per change, not one per poll round (2 s rounds for minutes)', () => {
    const ids = new Set<string>();
    for (const f of filesContaining(join(rack.work, 'central'), '"power-state"')) {
      for (const m of readFileSync(f, 'utf8').matchAll(/"id":"([^"]+)","agent":"[^"]+","site":"[^"]+","kind":"power-state"/g)) ids.add(m[1]!);
    }
    const rounds = (Date.now() - startedAt) / 2000;
    expect(rounds).toBeGreaterThan(20);
    // off (first reading), on and off (each from the task and from the poller): a handful, not `rounds`.
    expect(ids.size).toBeGreaterThanOrEqual(2);
    expect(ids.size).toBeLessThanOrEqual(8);
  });

  it('the BMC password is in no file of the central or the agent and in no log', () => {
    expect(filesContaining(join(rack.work, 'central'), PASSWORD)).toEqual([]);
    expect(filesContaining(join(rack.work, 'agent'), PASSWORD)).toEqual([]);
    expect(readFileSync(rack.centralLog, 'utf8')).not.toContain(PASSWORD);
    const agentLog = readFileSync(rack.agentLog, 'utf8');
    expect(agentLog).not.toContain(PASSWORD);
    expect(agentLog).toMatch(/"msg":"served iPXE script"/); // the log was really captured
  });
});
