import { describe, expect, it } from 'vitest';
import { clientArchOf, selectBoot, type BootChoiceInput, type BootRequest } from './pxe.js';

const ctx = (over: Partial<BootChoiceInput> = {}): BootChoiceInput => ({
  machine: { known: true, netboot: true },
  ipxeScriptUrl: 'http://198.18.0.1:8080/boot.ipxe',
  httpBootUrl: 'http://198.18.0.1:8080/ipxe/ipxe.efi',
  tftpServer: '198.18.0.1',
  ...over,
});
const pxe = (arch: number, extra: Partial<BootRequest> = {}): BootRequest => ({
  vendorClass: `PXEClient:Arch:${String(arch).padStart(5, '0')}:UNDI:003016`,
  userClass: [],
  clientArch: [arch],
  ...extra,
});
const fileOf = (r: BootRequest, c = ctx()) => {
  const d = selectBoot(r, c);
  return d.kind === 'boot' ? d.file : `none:${d.reason}`;
};

describe('selectBoot', () => {
  it('BIOS (93=0) gets undionly.kpxe over TFTP with option 43 and PXEClient', () => {
    expect(selectBoot(pxe(0), ctx())).toEqual({
      kind: 'boot',
      file: 'undionly.kpxe',
      nextServer: '198.18.0.1',
      vendorClass: 'PXEClient',
      pxeVendorOptions: true,
      via: 'tftp',
    });
  });

  it('x86-64 UEFI (7 and 9) gets ipxe.efi, or snponly.efi when the machine or subnet says so (machine wins)', () => {
    for (const a of [7, 9]) {
      expect(fileOf(pxe(a))).toBe('ipxe.efi');
      expect(fileOf(pxe(a), ctx({ subnetIpxeBinary: 'snponly.efi' }))).toBe('snponly.efi');
      expect(fileOf(pxe(a), ctx({ machine: { known: true, netboot: true, ipxeBinary: 'snponly.efi' } }))).toBe('snponly.efi');
      expect(fileOf(pxe(a), ctx({ subnetIpxeBinary: 'snponly.efi', machine: { known: true, netboot: true, ipxeBinary: 'ipxe.efi' } }))).toBe('ipxe.efi');
    }
  });

  it('ARM64 UEFI (11) gets snp.efi', () => expect(fileOf(pxe(11))).toBe('snp.efi'));

  it('UEFI HTTP boot (16) gets the HTTP URL with HTTPClient echoed, no siaddr, no option 43', () => {
    const d = selectBoot({ vendorClass: 'HTTPClient:Arch:00016:UNDI:003000', userClass: [], clientArch: [16] }, ctx());
    expect(d).toEqual({ kind: 'boot', file: 'http://198.18.0.1:8080/ipxe/ipxe.efi', nextServer: '0.0.0.0', vendorClass: 'HTTPClient', pxeVendorOptions: false, via: 'http' });
  });

  it('iPXE (user class 77) gets the HTTP script whatever the architecture', () => {
    for (const a of [0, 7, 9, 11, 16]) {
      const d = selectBoot(pxe(a, { userClass: ['iPXE'] }), ctx());
      expect(d.kind === 'boot' && d.via).toBe('ipxe-script');
      expect(d.kind === 'boot' && d.file).toBe('http://198.18.0.1:8080/boot.ipxe');
    }
    // iPXE without option 60 (its DHCP when chain-loaded may omit PXEClient in some builds)
    expect(fileOf({ userClass: ['iPXE'] })).toBe('http://198.18.0.1:8080/boot.ipxe');
  });

  it('unknown machines on a normal subnet boot too (discovery)', () => {
    expect(fileOf(pxe(0), ctx({ machine: { known: false, netboot: true } }))).toBe('undionly.kpxe');
  });

  it('netboot disallowed: no boot file', () => {
    expect(selectBoot(pxe(0), ctx({ machine: { known: true, netboot: false } }))).toEqual({ kind: 'none', reason: 'netboot-disallowed' });
    expect(selectBoot(pxe(7, { userClass: ['iPXE'] }), ctx({ machine: { known: true, netboot: false } })).kind).toBe('none');
  });

  it('non-PXE clients get no boot file', () => {
    expect(selectBoot({ userClass: [] }, ctx())).toEqual({ kind: 'none', reason: 'not-netboot-client' });
    expect(selectBoot({ vendorClass: 'udhcp 1.35.0', userClass: [] }, ctx()).kind).toBe('none');
  });

  it('unsupported architectures get no boot file and say which', () => {
    expect(selectBoot(pxe(6), ctx())).toEqual({ kind: 'none', reason: 'unsupported-arch', arch: 6 });
    expect(selectBoot(pxe(2), ctx())).toEqual({ kind: 'none', reason: 'unsupported-arch', arch: 2 });
  });

  it('takes the architecture from option 60 when 93 is missing, BIOS when both are', () => {
    expect(clientArchOf({ vendorClass: 'PXEClient:Arch:00007:UNDI:003000', userClass: [] })).toBe(7);
    expect(clientArchOf({ vendorClass: 'PXEClient', userClass: [] })).toBe(0);
    expect(clientArchOf({ vendorClass: 'PXEClient:Arch:00007', userClass: [], clientArch: [9, 7] })).toBe(9);
    expect(fileOf({ vendorClass: 'PXEClient:Arch:00009:UNDI:003000', userClass: [] })).toBe('ipxe.efi');
  });
});
