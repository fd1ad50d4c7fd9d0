/**
 * PXE boot file selection: a pure function from what the client says (options 60, 77, 93) and what the
 * agent knows about the machine to the boot file and the fields that go with it.
 */
import type { IpxeBinary, MachineFacts } from '../../shared/dhcp/config.js';

/** RFC 4578 / IANA processor architecture types the agent serves. */
export const Arch = {
  BIOS: 0,
  EFI_IA32: 6,
  EFI_X64: 7,
  EFI_BC: 9,
  EFI_ARM64: 11,
  EFI_X64_HTTP: 16,
} as const;

export interface BootRequest {
  vendorClass?: string;
  userClass: string[];
  clientArch?: number[];
}

/** What the agent knows when it chooses a boot file for a client: the machine, the subnet's default and where to send it. */
export interface BootChoiceInput {
  machine: MachineFacts;
  /** The subnet's default for x86-64 UEFI. */
  subnetIpxeBinary?: IpxeBinary;
  /** `http://AGENT:PORT/boot.ipxe` */
  ipxeScriptUrl: string;
  /** `http://AGENT:PORT/ipxe/ipxe.efi` */
  httpBootUrl: string;
  /** TFTP server (siaddr / next-server). */
  tftpServer: string;
}

export type BootDecision =
  | { kind: 'none'; reason: 'not-netboot-client' | 'netboot-disallowed' | 'unsupported-arch'; arch?: number }
  | {
      kind: 'boot';
      /** Boot file name (TFTP path) or URL. */
      file: string;
      /** siaddr; 0.0.0.0 when the file is a URL. */
      nextServer: string;
      /** Option 60 in the reply. */
      vendorClass?: 'PXEClient' | 'HTTPClient';
      /** Send option 43 with sub-option 6 = 8 (skip boot server discovery). */
      pxeVendorOptions: boolean;
      via: 'ipxe-script' | 'tftp' | 'http';
    };

/** The client architecture: option 93's first entry, else `Arch:NNNNN` from option 60, else BIOS. */
export function clientArchOf(r: BootRequest): number {
  if (r.clientArch && r.clientArch.length > 0) return r.clientArch[0]!;
  const m = /:Arch:(\d{5})/.exec(r.vendorClass ?? '');
  return m ? Number(m[1]) : Arch.BIOS;
}

export function isPxeVendorClass(vc: string | undefined): boolean {
  return /^PXEClient/.test(vc ?? '');
}

export function isHttpVendorClass(vc: string | undefined): boolean {
  return /^HTTPClient/.test(vc ?? '');
}

export function selectBoot(r: BootRequest, ctx: BootChoiceInput): BootDecision {
  const ipxe = r.userClass.includes('iPXE');
  const pxe = isPxeVendorClass(r.vendorClass);
  const http = isHttpVendorClass(r.vendorClass);
  if (!ipxe && !pxe && !http) return { kind: 'none', reason: 'not-netboot-client' };
  if (!ctx.machine.netboot) return { kind: 'none', reason: 'netboot-disallowed' };
  const pxeOpts = pxe;
  const vendorEcho = pxe ? ('PXEClient' as const) : undefined;
  if (ipxe) {
    // iPXE fetches its script over HTTP: breaks the chain-load loop.
    return { kind: 'boot', file: ctx.ipxeScriptUrl, nextServer: ctx.tftpServer, ...(vendorEcho ? { vendorClass: vendorEcho } : {}), pxeVendorOptions: pxeOpts, via: 'ipxe-script' };
  }
  const arch = clientArchOf(r);
  const tftp = (file: string): BootDecision => ({ kind: 'boot', file, nextServer: ctx.tftpServer, ...(vendorEcho ? { vendorClass: vendorEcho } : {}), pxeVendorOptions: pxeOpts, via: 'tftp' });
  switch (arch) {
    case Arch.BIOS:
      return tftp('undionly.kpxe');
    case Arch.EFI_X64:
    case Arch.EFI_BC:
      return tftp(ctx.machine.ipxeBinary ?? ctx.subnetIpxeBinary ?? 'ipxe.efi');
    case Arch.EFI_ARM64:
      return tftp('snp.efi');
    case Arch.EFI_X64_HTTP:
      return { kind: 'boot', file: ctx.httpBootUrl, nextServer: '0.0.0.0', vendorClass: 'HTTPClient', pxeVendorOptions: false, via: 'http' };
    default:
      return { kind: 'none', reason: 'unsupported-arch', arch };
  }
}
