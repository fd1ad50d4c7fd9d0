import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { machineIdentity, machinePhase, netnsName, qemuArgv, type LabMachine } from './lab.js';
import { missingReport, type LabPrereq } from './prereqs.js';

const machine = (over: Partial<LabMachine> = {}): LabMachine => ({
  ...machineIdentity(0),
  firmware: 'bios',
  memoryMb: 768,
  cpus: 2,
  diskGb: 4,
  tap: 'tap-m1',
  disk: '/lab/m1.disk',
  serialLog: '/lab/m1.serial.log',
  monitor: '/lab/m1.monitor',
  qemuLog: '/lab/m1.qemu.log',
  argv: [],
  ...over,
});

describe('lab machines', () => {
  it('fixed, distinct identities per index', () => {
    expect(machineIdentity(0)).toEqual({ name: 'm1', mac: '52:54:00:1a:b0:01', uuid: '4c414230-0000-4000-8000-000000000001', serial: 'UL-LAB-0001' });
    expect(machineIdentity(11).mac).toBe('52:54:00:1a:b0:0c');
    const macs = new Set(Array.from({ length: 64 }, (_, i) => machineIdentity(i).mac));
    expect(macs.size).toBe(64);
  });

  it('BIOS: e1000 with the iPXE ROM, MAC, uuid, SMBIOS serial, memory, CPUs, disk, serial console, monitor', () => {
    const a = qemuArgv(machine()).join(' ');
    expect(a).toContain('-device e1000,netdev=n0,mac=52:54:00:1a:b0:01,romfile=/usr/lib/ipxe/qemu/pxe-e1000.rom,bootindex=1');
    expect(a).toContain('-uuid 4c414230-0000-4000-8000-000000000001');
    expect(a).toContain('-smbios type=1,manufacturer=Underlay,product=Lab VM,serial=UL-LAB-0001');
    expect(a).toContain('-m 768 -smp 2');
    expect(a).toContain('-drive file=/lab/m1.disk,format=raw,if=none,id=d0');
    expect(a).toContain('-serial file:/lab/m1.serial.log');
    expect(a).toContain('-monitor unix:/lab/m1.monitor,server,nowait');
    expect(a).not.toContain('pflash');
    expect(a).not.toContain('enable-kvm');
  });

  it('UEFI: OVMF code read-only, its own vars copy, virtio-net with the firmware driver (no ROM)', () => {
    const a = qemuArgv(machine({ firmware: 'uefi', vars: '/lab/m1.OVMF_VARS.fd' })).join(' ');
    expect(a).toContain('-drive if=pflash,format=raw,readonly=on,file=/usr/share/OVMF/OVMF_CODE.fd');
    expect(a).toContain('-drive if=pflash,format=raw,file=/lab/m1.OVMF_VARS.fd');
    expect(a).toContain('-device virtio-net-pci,netdev=n0,mac=52:54:00:1a:b0:01,romfile=,bootindex=1');
    expect(a).not.toContain('e1000');
  });

  it('namespace names are per lab directory and short enough for ip(8)', () => {
    expect(netnsName('/a')).not.toBe(netnsName('/b'));
    expect(netnsName('/a')).toMatch(/^ullab-[0-9a-f]{6}$/);
  });

  it('phase from the serial console', () => {
    const d = mkdtempSync(join(tmpdir(), 'lab-phase-'));
    try {
      const f = join(d, 'serial.log');
      expect(machinePhase(f)).toBe('not started');
      writeFileSync(f, '');
      expect(machinePhase(f)).toMatch(/^firmware/);
      writeFileSync(f, '[ 0.0] Linux version 6.1\n');
      expect(machinePhase(f)).toBe('linux booting');
      writeFileSync(f, '[ 0.0] Linux version 6.1\nunderlay: discovered 52:54:00:1a:b0:01 (…)\n');
      expect(machinePhase(f)).toBe('discovered; runner waiting for tasks');
      writeFileSync(f, 'underlay: discovered x\nunderlay: task t (run-script) running\n');
      expect(machinePhase(f)).toBe('running a task');
    } finally {
      rmSync(d, { recursive: true, force: true });
    }
  });
});

describe('prerequisites', () => {
  it('names each missing piece and the one apt-get line that installs them', () => {
    const list: LabPrereq[] = [
      { what: 'root', ok: false, pkg: null, why: 'needs root' },
      { what: 'qemu-system-x86_64', ok: false, pkg: 'qemu-system-x86', why: 'VMs' },
      { what: 'ovmf', ok: false, pkg: 'ovmf', why: 'UEFI' },
      { what: 'ip', ok: true, pkg: 'iproute2', why: 'netns' },
    ];
    const r = missingReport(list)!;
    expect(r).toContain('apt-get install -y qemu-system-x86 ovmf');
    expect(r).not.toContain('iproute2');
    expect(r).toMatch(/sudo npx underlay lab up/);
    expect(missingReport(list.map((p) => ({ ...p, ok: true })))).toBeNull();
  });
});
