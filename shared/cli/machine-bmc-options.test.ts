import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { bmcBody, parseBmcUrl } from './machine-bmc-options.js';

describe('--bmc URL', () => {
  it('parses ipmi and redfish URLs (port, system id, IPv6, host left out)', () => {
    expect(parseBmcUrl('ipmi://admin@10.0.5.21')).toEqual({ type: 'ipmi', username: 'admin', address: '10.0.5.21' });
    expect(parseBmcUrl('ipmi://admin@10.0.5.21:6230')).toEqual({ type: 'ipmi', username: 'admin', address: '10.0.5.21', port: 6230 });
    expect(parseBmcUrl('redfish://root@bmc-7.example:8443/System.Embedded.1')).toEqual({ type: 'redfish', username: 'root', address: 'bmc-7.example', port: 8443, systemId: 'System.Embedded.1' });
    expect(parseBmcUrl('ipmi://admin@[fd00::7]:623')).toEqual({ type: 'ipmi', username: 'admin', address: 'fd00::7', port: 623 });
    expect(parseBmcUrl('ipmi://admin@')).toEqual({ type: 'ipmi', username: 'admin' });
    expect(parseBmcUrl('none')).toBeNull();
  });

  it('refuses a password in the URL without echoing it, and other malformed URLs', () => {
    expect(() => parseBmcUrl('ipmi://admin:Hunter2@10.0.5.21')).toThrow(/must not carry the password/);
    try {
      parseBmcUrl('ipmi://admin:Hunter2@10.0.5.21 junk');
    } catch (e) {
      expect((e as Error).message).not.toContain('Hunter2');
    }
    expect(() => parseBmcUrl('http://admin@10.0.5.21')).toThrow(/is not ipmi:\/\//);
    expect(() => parseBmcUrl('ipmi://10.0.5.21')).toThrow(/is not ipmi:\/\//);
    expect(() => parseBmcUrl('ipmi://admin@10.0.5.21/1')).toThrow(/redfish:\/\/ only/);
  });
});

describe('bmcBody', () => {
  it('puts the password from a file, or from UNDERLAY_BMC_PASSWORD, into the password param; TLS flags go into bmc.tls', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ul-bmc-cli-'));
    try {
      writeFileSync(join(dir, 'pw'), 'from-file\n');
      expect(await bmcBody({ name: 'n1', bmc: 'ipmi://admin@10.0.5.21', bmcPasswordFile: join(dir, 'pw'), params: { role: 'web' } }, {})).toEqual({
        name: 'n1', bmc: { type: 'ipmi', username: 'admin', address: '10.0.5.21' }, params: { role: 'web', bmc_password: 'from-file' },
      });
      expect(await bmcBody({ bmc: 'redfish://root@10.0.5.22', bmcPasswordParam: 'rf_pw', bmcFingerprint: 'AB:CD', bmcInsecure: true }, { UNDERLAY_BMC_PASSWORD: 'from-env' })).toEqual({
        bmc: { type: 'redfish', username: 'root', address: '10.0.5.22', passwordParam: 'rf_pw', tls: { fingerprint: 'AB:CD', insecure: true } }, params: { rf_pw: 'from-env' },
      });
      // The environment is used only with --bmc: an unrelated update never sets a password.
      expect(await bmcBody({ rack: 'r1' }, { UNDERLAY_BMC_PASSWORD: 'from-env' })).toEqual({ rack: 'r1' });
      await expect(bmcBody({ bmcInsecure: true }, {})).rejects.toThrow(/go with --bmc/);
      writeFileSync(join(dir, 'empty'), '\n');
      await expect(bmcBody({ bmc: 'ipmi://admin@h', bmcPasswordFile: join(dir, 'empty') }, {})).rejects.toThrow(/empty/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
