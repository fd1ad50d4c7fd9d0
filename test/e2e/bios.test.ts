/**
 * BIOS end to end on real firmware: SeaBIOS + QEMU's iPXE ROM (e1000) boots from the network against a real
 * central and site agent (full DHCP). DHCP (user class iPXE) → the agent's HTTP script → the discovery
 * kernel + initrd over HTTP → Linux init → facts posted to the agent → the central's inventory has the
 * machine. Asserted from the VM's serial console and the agent's and central's records.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkPrereqs } from '../support/require.js';
import { AGENT_ADDRESS, discoveryImage, RACK_PREREQS, Rack, until, type Vm } from './rack.js';

const ready = checkPrereqs('e2e BIOS boot', RACK_PREREQS);
const MAC = '52:54:00:e2:b1:01';
const SCRIPT_URL = `http://${AGENT_ADDRESS}:8080/boot.ipxe`;

describe.skipIf(!ready)('BIOS (SeaBIOS + iPXE ROM) boots discovery from the agent', () => {
  let rack: Rack;
  let vm: Vm;

  beforeAll(async () => {
    rack = await Rack.start({ prefix: 'ulbios', dhcp: 'full', agentLogLevel: 'debug' });
    vm = rack.bootVm({ name: 'bios', firmware: 'bios', mac: MAC });
  });

  afterAll(() => {
    rack?.destroy();
  });

  it('DHCP hands iPXE (user class iPXE) the HTTP script URL, and the script served is discovery for pcbios', async () => {
    const discover = await rack.waitForAgent((l) => l.msg === 'dhcp: request received' && l.mac === MAC && l.type === 'DISCOVER', 'a DHCPDISCOVER from the VM', 300_000, vm);
    expect(discover.userClass).toContain('iPXE');
    expect(discover.vendorClass).toMatch(/^PXEClient:Arch:00000:/);
    const ack = await rack.waitForAgent((l) => l.msg === 'dhcp: reply sent' && l.type === 'ACK' && typeof l.file === 'string' && l.file !== '', 'a DHCPACK with a boot file', 300_000, vm);
    expect(ack.file).toBe(SCRIPT_URL);
    expect(String(ack.yiaddr)).toMatch(/^198\.18\.0\.1\d\d$/);
    // iPXE ROM: no chain-load of undionly.kpxe needed, so no TFTP at all.
    expect(rack.agentLines().filter((l) => l.msg === 'tftp transfer')).toEqual([]);
    const served = await rack.waitForAgent((l) => l.msg === 'served iPXE script' && l.mac === MAC, 'the iPXE script to be served', 300_000, vm);
    expect(served.platform).toBe('pcbios');
    expect(served.known).toBe(false);
  });

  it('the kernel and initrd came over HTTP and Linux init of the discovery image runs', async () => {
    const m = await vm.waitForSerial(/underlay: discovered ([0-9a-f:]{17}) .*reported to (\S+)/, 'the discovery line on the serial console', 600_000);
    expect(m[1]).toBe(MAC);
    expect(m[2]).toBe(`http://${AGENT_ADDRESS}:8080`);
    const serial = vm.serial();
    // The command line is the one the agent's script rendered, with iPXE's ${mac} expanded.
    const cmdline = /Command line: (.*)/.exec(serial)?.[1] ?? '';
    expect(cmdline).toContain(`underlay.url=http://${AGENT_ADDRESS}:8080`);
    expect(cmdline).toContain(`underlay.mac=${MAC}`);
    expect(cmdline).toContain('console=ttyS0');
    expect(serial).toMatch(/Freeing initrd memory: \d+K/);
    const manifest = JSON.parse(readFileSync(join(discoveryImage(), 'manifest.json'), 'utf8')) as { kernelRelease: string };
    expect(serial).toContain(`underlay: discovery image starting (${manifest.kernelRelease})`);
    const got = await rack.waitForAgent((l) => l.msg === 'discovery received' && l.mac === MAC, 'the agent to accept the facts', 60_000, vm);
    expect(got.machine).toBe(/underlay\.machine=(\S+)/.exec(cmdline)?.[1]);
  });

  it('the central has the lease and the machine (discovery end to end)', async () => {
    const lease = await until(() => rack.leases(MAC).find((l) => l.mac === MAC && l.state === 'lease'), 'the lease at the central', 120_000);
    expect(String(lease.address)).toMatch(/^198\.18\.0\.1\d\d$/);
    expect(lease.subnet).toBe('198.18.0.0/24');
    // Discovery stores the machine, then the lifecycle moves it to ready (facts in): wait for both.
    const machine = (await until(() => rack.machines(MAC).find((x) => (x as { state?: string }).state === 'ready'), 'the machine at the central, ready', 120_000)) as {
      id: string;
      macs: string[];
      site: string;
      state: string;
      facts: { firmware: string; bootMac: string; nics: Array<{ mac: string; driver: string }> };
    };
    expect(machine.macs).toContain(MAC);
    expect(machine.site).toBe('rack1');
    expect(machine.state).toBe('ready'); // discovered, and its facts are in (issue 12 lifecycle)
    expect(machine.facts.firmware).toBe('bios');
    expect(machine.facts.bootMac).toBe(MAC);
    expect(machine.facts.nics).toContainEqual(expect.objectContaining({ mac: MAC, driver: 'e1000' }));
    // The central adopted the id the agent proposed on the kernel command line.
    expect(vm.serial()).toContain(`underlay.machine=${machine.id}`);
  });
});
