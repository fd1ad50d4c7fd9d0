import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCliProgram, type CliResult } from '../support/cli-program.js';
import { startInProcessCentral, type InProcessCentral } from '../central/in-process.js';
import { tempDir } from '../central/support.js';

/**
 * `underlay machines create|update --bmc …` (issue 13) against an in-process central: the BMC from a
 * URL, the password from a file (never argv), sealed by the central; `--bmc none` removes the BMC.
 */
const PASSWORD = 'Cli-Bmc-Pw-61f0';
let dir: string;
let central: InProcessCentral;
let caFile: string;
const cli = (...args: string[]): Promise<CliResult> => runCliProgram({ url: central.url, token: central.adminToken, caFile }, args);

beforeAll(async () => {
  dir = tempDir('underlay-bmc-cli-');
  central = await startInProcessCentral({ dir });
  caFile = join(dir, 'ca.pem');
  writeFileSync(caFile, central.ca);
  await central.request('POST', '/api/v1/sites', { body: { name: 'dc1' } });
  await central.joinAgent('dc1');
  writeFileSync(join(dir, 'pw'), `${PASSWORD}\n`, { mode: 0o600 });
}, 60_000);
afterAll(async () => {
  await central?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('machines create|update --bmc', () => {
  it('creates a machine with an IPMI BMC and its password from a file; the central keeps the password sealed', async () => {
    const r = await cli('machines', 'create', 'n1', '--site', 'dc1', '--mac', '52:54:00:13:0c:01', '--bmc', 'ipmi://admin@198.18.7.10:6230', '--bmc-password-file', join(dir, 'pw'), '-o', 'json');
    expect(r.code, r.stderr).toBe(0);
    const m = JSON.parse(r.stdout) as { id: string; bmc: unknown; params: Record<string, unknown> };
    expect(m.bmc).toEqual({ type: 'ipmi', address: '198.18.7.10', port: 6230, username: 'admin', passwordParam: 'bmc_password' });
    expect(m.params.bmc_password).toEqual({ $sealed: [expect.any(String)] });
    expect(r.stdout).not.toContain(PASSWORD);
    expect(JSON.stringify(central.running.deps.store.get('machines', m.id))).not.toContain(PASSWORD);
  });

  it('refuses a password on the command line, and nothing changes', async () => {
    const r = await cli('machines', 'update', 'n1', '--bmc', `ipmi://admin:${PASSWORD}@198.18.7.10`);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/must not carry the password/);
    expect(r.stderr).not.toContain(PASSWORD);
    expect((await central.request('GET', '/api/v1/machines/n1')).json.bmc).toMatchObject({ type: 'ipmi', address: '198.18.7.10' });
  });

  it('switches it to Redfish with a pinned certificate, then removes it with --bmc none', async () => {
    const fp = Array.from({ length: 32 }, () => 'AB').join(':');
    let r = await cli('machines', 'update', 'n1', '--bmc', 'redfish://root@198.18.7.11/1', '--bmc-fingerprint', fp, '-o', 'json');
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).bmc).toEqual({ type: 'redfish', address: '198.18.7.11', username: 'root', systemId: '1', passwordParam: 'bmc_password', tls: { fingerprint: fp } });
    r = await cli('machines', 'update', 'n1', '--bmc', 'none', '-o', 'json');
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).bmc).toBeUndefined();
  });
});
