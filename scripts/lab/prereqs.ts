import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';

/** What `underlay lab up` needs on the host, and the Debian package that provides each piece. */
export interface LabPrereq {
  what: string;
  ok: boolean;
  /** Debian package to install, or null when the fix is not a package (root). */
  pkg: string | null;
  why: string;
}

export type Firmware = 'bios' | 'uefi' | 'mixed';

export const OVMF_CODE = '/usr/share/OVMF/OVMF_CODE.fd';
export const OVMF_VARS = '/usr/share/OVMF/OVMF_VARS.fd';
export const IPXE_DIR = '/usr/lib/ipxe';
export const BIOS_NIC_ROM = '/usr/lib/ipxe/qemu/pxe-e1000.rom';

function have(cmd: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

function busyboxStatic(): boolean {
  if (!existsSync('/bin/busybox')) return false;
  try {
    const st = execFileSync('dpkg-query', ['-W', '-f=${Status}', 'busybox-static'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    return st.includes('ok installed');
  } catch {
    return false;
  }
}

export function labPrereqs(firmware: Firmware, opts: { isRoot?: boolean } = {}): LabPrereq[] {
  const root = opts.isRoot ?? (typeof process.getuid === 'function' && process.getuid() === 0);
  const bios = firmware !== 'uefi';
  const uefi = firmware !== 'bios';
  const list: LabPrereq[] = [
    { what: 'root', ok: root, pkg: null, why: 'network namespaces, taps, DHCP port 67 and TFTP port 69 need root: run it with sudo' },
    { what: 'ip', ok: have('ip'), pkg: 'iproute2', why: 'network namespace, bridge and taps' },
    { what: 'qemu-system-x86_64', ok: have('qemu-system-x86_64'), pkg: 'qemu-system-x86', why: 'the virtual machines' },
    { what: `${IPXE_DIR}/undionly.kpxe, ipxe.efi, snponly.efi`, ok: ['undionly.kpxe', 'ipxe.efi', 'snponly.efi'].every((f) => existsSync(`${IPXE_DIR}/${f}`)), pkg: 'ipxe', why: 'iPXE binaries the agent hands out over TFTP' },
    { what: '/bin/busybox (static)', ok: busyboxStatic(), pkg: 'busybox-static', why: 'the discovery image userland, and probing the agent inside the namespace' },
    { what: 'apt-get', ok: have('apt-get') && have('apt-cache'), pkg: 'apt', why: 'downloading the kernel package for the discovery image' },
    { what: 'dpkg-deb', ok: have('dpkg-deb'), pkg: 'dpkg', why: 'unpacking the kernel package' },
    { what: 'openssl', ok: have('openssl'), pkg: 'openssl', why: 'Ed25519 verification inside the discovery image' },
    { what: 'xz', ok: have('xz'), pkg: 'xz-utils', why: 'compressing the discovery initramfs' },
  ];
  if (bios) list.push({ what: BIOS_NIC_ROM, ok: existsSync(BIOS_NIC_ROM), pkg: 'ipxe-qemu', why: "the e1000 NIC's PXE option ROM for BIOS machines" });
  if (uefi) list.push({ what: `${OVMF_CODE}, ${OVMF_VARS}`, ok: existsSync(OVMF_CODE) && existsSync(OVMF_VARS), pkg: 'ovmf', why: 'UEFI firmware for UEFI machines' });
  return list;
}

/** A readable report of what is missing and the one command that fixes it; null when nothing is. */
export function missingReport(list: LabPrereq[]): string | null {
  const missing = list.filter((p) => !p.ok);
  if (missing.length === 0) return null;
  const lines = ['underlay lab: missing prerequisites:'];
  for (const m of missing) lines.push(`  - ${m.what}: ${m.why}${m.pkg ? ` (package ${m.pkg})` : ''}`);
  const pkgs = [...new Set(missing.map((m) => m.pkg).filter((p): p is string => !!p))];
  if (pkgs.length) lines.push('', 'install them with:', `  apt-get update && apt-get install -y ${pkgs.join(' ')}`);
  if (missing.some((m) => m.what === 'root')) lines.push('', `${pkgs.length ? 'then run' : 'run'} it as root, e.g.: sudo npx underlay lab up --machines 2`);
  return lines.join('\n');
}
