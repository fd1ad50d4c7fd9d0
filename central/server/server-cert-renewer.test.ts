import { X509Certificate } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { captureLogger } from '../../shared/log/capture-logger.test-support.js';
import { silentLogger } from '../../shared/log/logger.js';
import { createCa, issueWithNewKey, type KeyPairPem } from '../pki/ca.js';
import type { CentralIdentity } from './identity.js';
import { issueServerCert, serverCertRenewalReason } from './server-cert.js';
import { ServerCertRenewer } from './server-cert-renewer.js';
import { BACKDATE_MS, validityOf } from '../../shared/pki/renewal.js';

let ca: KeyPairPem;
let dir: string;
beforeAll(() => {
  ca = createCa('Renewal test CA');
});
afterEach(() => {
  vi.useRealTimers();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const SANS = ['localhost', '127.0.0.1'];
const serial = (pem: string) => new X509Certificate(pem).serialNumber;
function identityWith(lifetimeMs: number): CentralIdentity {
  dir = mkdtempSync(join(tmpdir(), 'underlay-srv-cert-'));
  return { ca, server: issueServerCert(dir, ca, SANS, lifetimeMs), signing: {} as CentralIdentity['signing'], caFingerprint: 'x' };
}

describe('serverCertRenewalReason', () => {
  it('is null for a fresh certificate and names each reason to re-issue', () => {
    const fresh = issueWithNewKey(ca, { commonName: 'c', sans: SANS, usage: 'server', lifetimeMs: 60_000 });
    expect(serverCertRenewalReason(fresh, ca, SANS)).toBeNull();
    expect(serverCertRenewalReason(fresh, ca, [...SANS, 'central.example'])).toMatch(/does not cover central.example/);
    const other = issueWithNewKey(ca, { commonName: 'c', sans: SANS, usage: 'server' });
    expect(serverCertRenewalReason({ certPem: fresh.certPem, keyPem: other.keyPem }, ca, SANS)).toMatch(/key does not match/);
    expect(serverCertRenewalReason(fresh, createCa('Another CA'), SANS)).toMatch(/not issued by this CA/);
    // 2/3 of a 60 s lifetime (counted from issue, not from the back-dated notBefore) is 40 s.
    // Counted from the certificate's own issue time: the key generations above may take seconds on a loaded host.
    const issued = validityOf(fresh.certPem).notBefore + BACKDATE_MS;
    expect(serverCertRenewalReason(fresh, ca, SANS, issued + 35_000)).toBeNull();
    expect(serverCertRenewalReason(fresh, ca, SANS, issued + 41_000)).toBe('due for renewal');
  });
});

describe('ServerCertRenewer', () => {
  it('renews at 2/3 of the lifetime: new key and certificate on disk, installed in the server', () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    // X.509 validity has whole seconds: start on one, so due times are exact.
    vi.setSystemTime(Math.ceil(Date.now() / 1000) * 1000);
    const identity = identityWith(30_000);
    const before = identity.server;
    const installed: KeyPairPem[] = [];
    const r = new ServerCertRenewer({ dir, identity, sans: SANS, lifetimeMs: 30_000, logger: silentLogger, install: (s) => installed.push(s) });
    r.start();
    vi.advanceTimersByTime(19_000);
    expect(installed).toHaveLength(0);
    vi.advanceTimersByTime(2_000);
    expect(installed).toHaveLength(1);
    expect(identity.server).toBe(installed[0]);
    expect(serial(identity.server.certPem)).not.toBe(serial(before.certPem));
    expect(identity.server.keyPem).not.toBe(before.keyPem);
    expect(readFileSync(join(dir, 'server.pem'), 'utf8')).toBe(identity.server.certPem);
    expect(readFileSync(join(dir, 'server.key'), 'utf8')).toBe(identity.server.keyPem);
    // …and the next renewal is scheduled from the new certificate.
    vi.advanceTimersByTime(21_000);
    expect(installed).toHaveLength(2);
    r.stop();
    vi.advanceTimersByTime(60_000);
    expect(installed).toHaveLength(2);
  });

  it('a failing renewal is logged with the time left and retried; it never throws out of the timer', () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    // X.509 validity has whole seconds: start on one, so due times are exact.
    vi.setSystemTime(Math.ceil(Date.now() / 1000) * 1000);
    const identity = identityWith(30_000);
    const { logger, lines } = captureLogger();
    let fail = 2;
    const installed: KeyPairPem[] = [];
    const r = new ServerCertRenewer({
      dir, identity, sans: SANS, lifetimeMs: 30_000, logger, install: (s) => installed.push(s),
      issue: (...a) => {
        if (fail-- > 0) throw new Error('ENOSPC: no space left on device');
        return issueServerCert(...a);
      },
    });
    r.start();
    vi.advanceTimersByTime(20_500); // due at 20 s: fails
    expect(r.failures).toBe(1);
    expect(installed).toHaveLength(0);
    expect(lines.filter((l) => l.msg === 'could not renew the server certificate; retrying')[0]).toMatchObject({ level: 50, retryMs: 1000, expiresIn: expect.stringMatching(/^\d+s$/) });
    vi.advanceTimersByTime(1_000); // retry: fails again
    expect(r.failures).toBe(2);
    vi.advanceTimersByTime(1_000); // retry: works
    expect(installed).toHaveLength(1);
    expect(r.renewals).toBe(1);
    r.stop();
  });
});
