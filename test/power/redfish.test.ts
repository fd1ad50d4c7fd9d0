import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BmcAuthError, BmcUnreachableError } from '../../agent/bmc/bmc.js';
import { RedfishBmc } from '../../agent/bmc/redfish/redfish.js';
import type { BmcConfig } from '../../shared/api/bmc.js';
import { checkPrereqs } from '../support/require.js';
import { QemuMachine } from './qemu-qmp.js';
import { startRedfishStandIn, type RedfishStandIn } from './redfish-stand-in.js';

const PY = '/usr/bin/python3';
const execFileP = promisify(execFile);
const SUSHY = resolve(import.meta.dirname, 'sushy-check.py');
const ready = checkPrereqs('power/redfish', { commands: ['qemu-system-x86_64', 'openssl'], files: [PY, '/usr/lib/python3/dist-packages/sushy/__init__.py'] });
const PASSWORD = 'redfish-Pw-3b8d2';

/**
 * The Redfish stand-in (test/power/redfish-stand-in.ts) powering a real QEMU VM over QMP, checked first
 * with the real Redfish client library (python3-sushy), then driven by the agent's Redfish driver over
 * HTTPS with a self-signed certificate (pin, CA, refusal).
 */
describe.skipIf(!ready)('Redfish driver against a DMTF-shaped stand-in that powers QEMU', () => {
  let dir: string;
  let vm: QemuMachine;
  let rf: RedfishStandIn;
  let fingerprint: string;
  let certPem: string;
  const port = () => Number(new URL(rf.url).port);
  const cfg = (tls: BmcConfig['tls'], p = port()): BmcConfig => ({ type: 'redfish', address: '127.0.0.1', port: p, username: 'admin', passwordParam: 'bmc_password', tls });
  const bmc = (tls: BmcConfig['tls'] = { fingerprint }, password = PASSWORD, p?: number) => new RedfishBmc({ config: cfg(tls, p), password }, { timeoutMs: 2000, retries: 1 });
  // requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE override the client's own CA file: drop them.
  const sushyEnv = () => Object.fromEntries(Object.entries(process.env).filter(([k]) => !/CA_BUNDLE$/.test(k)));
  // Async: the stand-in answers from this very process.
  const sushy = async (...actions: string[]) => {
    const { stdout } = await execFileP(PY, [SUSHY, rf.url, join(dir, 'cert.pem'), 'admin', PASSWORD, ...actions], { encoding: 'utf8', timeout: 60_000, env: sushyEnv() });
    return stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'underlay-redfish-'));
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', '2', '-subj', '/CN=bmc.test', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
    certPem = readFileSync(join(dir, 'cert.pem'), 'utf8');
    fingerprint = new X509Certificate(certPem).fingerprint256;
    vm = new QemuMachine(dir, ['-machine', 'pc,accel=tcg', '-m', '64', '-nodefaults', '-display', 'none', '-serial', 'null', '-monitor', 'none']);
    rf = await startRedfishStandIn(vm, { username: 'admin', password: PASSWORD, tls: { key: readFileSync(join(dir, 'key.pem'), 'utf8'), cert: certPem } });
  });
  afterAll(async () => {
    vm?.kill();
    await rf?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('speaks Redfish as the real client library (sushy) expects: status, reset On/ForceOff, boot override', async () => {
    expect(await sushy('status')).toEqual([{ power: 'Off' }]);
    expect((await sushy('allowed-resets'))[0]!.resets).toEqual(expect.arrayContaining(['On', 'ForceOff', 'PowerCycle', 'ForceRestart']));
    await sushy('on');
    expect(await vm.running()).toBe(true);
    expect(await sushy('status')).toEqual([{ power: 'On' }]);
    await sushy('off');
    expect(await vm.running()).toBe(false);
    await sushy('pxe-once');
    expect(rf.boot).toEqual({ target: 'Pxe', enabled: 'Once' });
    rf.boot = { target: 'None', enabled: 'Disabled' };
  });

  it('the driver powers the VM on, reads it, sets PXE once, cycles into PXE, resets and powers off (HTTPS, pinned certificate, a session)', async () => {
    expect(await bmc().powerState()).toBe('off');
    await bmc().power('on');
    expect(await vm.running()).toBe(true);
    expect(await bmc().powerState()).toBe('on');
    await bmc().setBootDevice('pxe', false);
    expect(rf.boot).toEqual({ target: 'Pxe', enabled: 'Once' });
    const launches = vm.launches.length;
    await bmc().power('cycle');
    expect(vm.launches.length).toBe(launches + 1);
    expect(vm.launches.at(-1)).toEqual(expect.arrayContaining(['-boot', 'once=n']));
    expect(rf.boot.enabled).toBe('Disabled'); // once: consumed by that boot
    await bmc().power('reset');
    expect(await vm.running()).toBe(true);
    await bmc().setBootDevice('disk', true);
    expect(rf.boot).toEqual({ target: 'Hdd', enabled: 'Continuous' });
    await bmc().power('off');
    expect(await vm.running()).toBe(false);
    expect(await bmc().powerState()).toBe('off');
    const reset = rf.requests.filter((r) => r.path.endsWith('ComputerSystem.Reset'));
    expect(reset.length).toBeGreaterThan(0);
    expect(reset.every((r) => r.auth === 'session')).toBe(true);
  });

  it('trusts the BMC through its CA as well; without a CA, pin or insecure the certificate is refused', async () => {
    expect(await bmc({ ca: certPem }).powerState()).toBe('off');
    expect(await bmc({ insecure: true }).powerState()).toBe('off');
    await expect(bmc({}).powerState()).rejects.toThrow(/not trusted/);
  });

  it('a wrong pin sends nothing (no credentials) to the server', async () => {
    const before = rf.requests.length;
    const wrong = fingerprint.replace(/^../, fingerprint.startsWith('00') ? '11' : '00');
    const e = await bmc({ fingerprint: wrong }).powerState().catch((x: Error) => x);
    expect(e).toBeInstanceOf(BmcUnreachableError);
    expect((e as Error).message).toMatch(/not the pinned one/);
    expect(rf.requests.length).toBe(before);
  });

  it('a wrong password is a clear auth error after one login attempt (no retry storm)', async () => {
    const before = rf.requests.length;
    const e = await bmc({ fingerprint }, 'wrong').powerState().catch((x: Error) => x);
    expect(e).toBeInstanceOf(BmcAuthError);
    expect((e as Error).message).toMatch(/wrong user name or password/);
    expect(rf.requests.slice(before)).toEqual([{ method: 'POST', path: '/redfish/v1/SessionService/Sessions', auth: 'none' }]);
  });

  it('an unreachable BMC is an unavailable error', async () => {
    const e = await bmc({ fingerprint }, PASSWORD, 1).powerState().catch((x: Error) => x);
    expect(e).toBeInstanceOf(BmcUnreachableError);
  });
});
