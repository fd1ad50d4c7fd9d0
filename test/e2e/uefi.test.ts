/**
 * UEFI on real firmware: OVMF with its own virtio-net driver and PXE (no iPXE ROM) asks DHCP with option 93
 * = 7, gets ipxe.efi from the agent over TFTP (after the firmware's size probe, which it aborts with TFTP
 * error 8), runs iPXE, which asks DHCP again (user class iPXE) and fetches the agent's HTTP script for
 * platform=efi, then boots the discovery image (its facts say firmware "uefi"). Asserted from the agent's
 * records (DHCP requests and replies, TFTP transfers, served scripts), the central's, and OVMF's console.
 */
import { statSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkPrereqs } from '../support/require.js';
import { AGENT_ADDRESS, OVMF_CODE, OVMF_VARS, RACK_PREREQS, Rack, until, type LogLine, type Vm } from './rack.js';

const ready = checkPrereqs('e2e UEFI boot', { ...RACK_PREREQS, files: [...RACK_PREREQS.files, OVMF_CODE, OVMF_VARS] });
const MAC = '52:54:00:e2:ef:01';
const IPXE_EFI_SIZE = ready ? statSync('/usr/lib/ipxe/ipxe.efi').size : 0;

describe.skipIf(!ready)('UEFI (OVMF + virtio-net) chain-loads ipxe.efi over TFTP and gets the efi script', () => {
  let rack: Rack;
  let vm: Vm;

  beforeAll(async () => {
    rack = await Rack.start({ prefix: 'ulefi', dhcp: 'full', agentLogLevel: 'debug' });
    vm = rack.bootVm({ name: 'uefi', firmware: 'uefi', mac: MAC });
  });

  afterAll(() => {
    rack?.destroy();
  });

  it('the firmware (option 93 = 7) is offered ipxe.efi on the agent\'s TFTP server', async () => {
    // OVMF takes ~2.5 min of software emulation to its first DHCPDISCOVER: the bound is hang protection.
    const discover = await rack.waitForAgent((l) => l.msg === 'dhcp: request received' && l.mac === MAC && l.type === 'DISCOVER', 'the firmware\'s DHCPDISCOVER', 600_000, vm);
    expect(discover.arch).toEqual([7]);
    expect(discover.vendorClass).toMatch(/^PXEClient:Arch:00007:/);
    expect(discover.userClass).toBeUndefined();
    const offer = await rack.waitForAgent((l) => l.msg === 'dhcp: reply sent' && l.type === 'OFFER' && l.file !== undefined, 'the OFFER to the firmware', 120_000, vm);
    expect(offer.file).toBe('ipxe.efi');
    expect(offer.from).toBe(AGENT_ADDRESS);
  });

  it('ipxe.efi is transferred completely over TFTP; the size probe (error 8) is not a failure', async () => {
    const done = await rack.waitForAgent((l) => l.msg === 'tftp transfer complete' && l.file === 'ipxe.efi', 'a complete TFTP transfer of ipxe.efi', 300_000, vm);
    expect(done.bytes).toBe(IPXE_EFI_SIZE);
    const tftp = rack.agentLines().filter((l) => typeof l.msg === 'string' && l.msg.startsWith('tftp'));
    const probes = tftp.filter((l) => l.msg === 'tftp transfer' && l.outcome === 'size-probe');
    expect(probes.length).toBeGreaterThanOrEqual(1);
    for (const p of probes) expect(p.level).toBeLessThan(40);
    const failures = tftp.filter((l: LogLine) => (l.level ?? 0) >= 40);
    expect(failures).toEqual([]);
  });

  it('iPXE (now running) gets the HTTP script for platform=efi', async () => {
    const ack = await rack.waitForAgent((l) => l.msg === 'dhcp: reply sent' && l.type === 'ACK' && l.file === `http://${AGENT_ADDRESS}:8080/boot.ipxe`, 'an ACK to iPXE with the script URL', 300_000, vm);
    expect(ack.from).toBe(AGENT_ADDRESS);
    const req = rack.agentLines().find((l) => l.msg === 'dhcp: request received' && l.mac === MAC && Array.isArray(l.userClass) && l.userClass.includes('iPXE'));
    expect(req).toBeDefined();
    const served = await rack.waitForAgent((l) => l.msg === 'served iPXE script' && l.mac === MAC, 'the iPXE script for the VM', 300_000, vm);
    expect(served.platform).toBe('efi');
    expect(served.known).toBe(false);
    // OVMF's console is on the serial port: the firmware loaded ipxe.efi, which ran.
    await vm.waitForSerial(/NBP filename is ipxe\.efi[\s\S]*iPXE initialising devices/, 'firmware PXE and iPXE on the console', 60_000);
  });

  it('the discovery image boots on UEFI and the central records a UEFI machine', async () => {
    // iPXE prints `URL... ok`; a transfer that lasts over a second prints its progress (`\b\b\b\b 45%`) in between.
    await vm.waitForSerial(/\/files\/discovery\/vmlinuz\.\.\.[^\n]*\bok[\s\S]*\/files\/discovery\/initrd\.img\.\.\.[^\n]*\bok/, 'iPXE fetching the kernel and initrd over HTTP', 300_000);
    const m = await vm.waitForSerial(/underlay: discovered ([0-9a-f:]{17})/, 'the discovery line', 600_000);
    expect(m[1]).toBe(MAC);
    const machine = (await until(() => rack.machines(MAC)[0], 'the machine at the central', 120_000)) as { macs: string[]; facts: { firmware: string } };
    expect(machine.macs).toContain(MAC);
    expect(machine.facts.firmware).toBe('uefi');
    const lease = await until(() => rack.leases(MAC).find((l) => l.state === 'lease'), 'the lease at the central', 120_000);
    expect(String(lease.address)).toMatch(/^198\.18\.0\.1\d\d$/);
  });
});
