import { createPrivateKey, X509Certificate } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { CertRenewer, type RenewalLink } from '../../agent/link/cert-renewer.js';
import type { LinkState } from '../../agent/link/link.js';
import { statePaths } from '../../agent/state/state-dir.js';
import { completePendingTls, storeRenewedTls } from '../../agent/state/tls-files.js';
import { createCa, signCsr, type KeyPairPem } from '../../central/pki/ca.js';
import { captureLogger } from '../../shared/log/capture-logger.test-support.js';
import { makeCsr } from '../../shared/pki/csr.js';
import type { AgentToCentral } from '../../shared/protocol/messages.js';

/**
 * The agent's certificate renewer against a fake link (fake timers, a real CA): when it asks, what it
 * stores, how it retries. The real link end to end is in cert-renewal.test.ts.
 */
let ca: KeyPairPem;
let otherCa: KeyPairPem;
let dir: string;
const LIFETIME = 30_000; // renewal due after 20 s

beforeAll(() => {
  ca = createCa('Renewer test CA');
  otherCa = createCa('Another CA');
});
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'underlay-renewer-'));
});
afterEach(() => {
  vi.useRealTimers();
  rmSync(dir, { recursive: true, force: true });
});

class FakeLink implements RenewalLink {
  state: LinkState = 'ready';
  sent: AgentToCentral[] = [];
  reconnects: string[] = [];
  feature = true;
  private listeners = new Set<(s: LinkState) => void>();
  send(msg: AgentToCentral): boolean {
    if (this.state !== 'ready') return false;
    this.sent.push(msg);
    return true;
  }
  hasFeature(): boolean {
    return this.feature;
  }
  onState(fn: (s: LinkState) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }
  set(s: LinkState): void {
    this.state = s;
    for (const l of this.listeners) l(s);
  }
  reconnect(reason: string): void {
    this.reconnects.push(reason);
  }
  renewRequests() {
    return this.sent.filter((m): m is Extract<AgentToCentral, { type: 'cert-renew' }> => m.type === 'cert-renew');
  }
}

function setUp() {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
  const { keyPem, csrPem } = makeCsr('agent-candidate:x');
  const certPem = signCsr(ca, csrPem, { commonName: 'agent:a1', usage: 'client', lifetimeMs: LIFETIME });
  const paths = statePaths(dir);
  writeFileSync(paths.tlsKey, keyPem);
  writeFileSync(paths.tlsCert, certPem);
  const tls = { key: keyPem, cert: certPem, ca: ca.certPem };
  const link = new FakeLink();
  const { logger, lines } = captureLogger();
  const renewer = new CertRenewer({ agentId: 'a1', paths, tls, link, logger });
  renewer.start();
  return { paths, tls, link, lines, renewer, old: { keyPem, certPem } };
}
const sign = (csr: string, from = ca) => signCsr(from, csr, { commonName: 'agent:a1', usage: 'client', lifetimeMs: LIFETIME });
const serial = (pem: string) => new X509Certificate(pem).serialNumber;

describe('CertRenewer', () => {
  it('asks at 2/3 of the lifetime with a CSR for a key made here, stores the answer, swaps it in and reconnects', () => {
    const { paths, tls, link, lines, renewer, old } = setUp();
    vi.advanceTimersByTime(19_000);
    expect(link.renewRequests()).toHaveLength(0);
    vi.advanceTimersByTime(1_500);
    const [req] = link.renewRequests();
    expect(req).toBeDefined();
    expect(req.csr).toMatch(/^-----BEGIN CERTIFICATE REQUEST-----/);
    expect(lines.find((l) => l.msg === 'renewing the client certificate')).toMatchObject({ expiresIn: expect.stringMatching(/^([89]|10)s$/) });
    // The old pair is still what is on disk and in use until the answer is stored.
    expect(readFileSync(paths.tlsCert, 'utf8')).toBe(old.certPem);
    expect(link.reconnects).toHaveLength(0);

    const renewed = sign(req.csr);
    renewer.onAnswer({ type: 'cert-renewed', id: req.id, certificate: renewed });
    expect(tls.cert).toBe(renewed);
    expect(tls.key).not.toBe(old.keyPem);
    expect(new X509Certificate(renewed).checkPrivateKey(createPrivateKey(tls.key))).toBe(true);
    expect(readFileSync(paths.tlsCert, 'utf8')).toBe(renewed);
    expect(readFileSync(paths.tlsKey, 'utf8')).toBe(tls.key);
    expect(existsSync(paths.tlsNext)).toBe(false);
    expect(link.reconnects).toEqual(['client certificate renewed']);
    expect(lines.find((l) => l.msg === 'client certificate renewed')).toMatchObject({ serial: serial(renewed) });
    // The next renewal is scheduled from the new certificate.
    vi.advanceTimersByTime(21_000);
    expect(link.renewRequests()).toHaveLength(2);
    renewer.stop();
  });

  it('a refusal is logged with the time left and retried with backoff (never later than a tenth of the time left)', () => {
    const { link, lines, renewer, tls, old } = setUp();
    vi.advanceTimersByTime(20_500);
    const [first] = link.renewRequests();
    renewer.onAnswer({ type: 'cert-renew-refused', id: first.id, code: 'too-soon', message: 'renewed moments ago' });
    const warn = lines.find((l) => l.msg === 'certificate renewal failed; will retry');
    expect(warn).toMatchObject({ level: 40, code: 'too-soon', reason: expect.stringMatching(/renewed moments ago/), expiresIn: expect.stringMatching(/^([89]|10)s$/) });
    expect(warn!.retryInMs as number).toBeLessThanOrEqual(1000);
    vi.advanceTimersByTime(1000);
    const [, second] = link.renewRequests();
    expect(second).toBeDefined();
    expect(second.id).not.toBe(first.id);
    expect(second.csr).not.toBe(first.csr); // a fresh key for every attempt
    expect(tls.cert).toBe(old.certPem);
    renewer.stop();
  });

  it('refuses a certificate from another CA or for another key: nothing stored, old pair kept, retried', () => {
    const { link, lines, renewer, tls, paths, old } = setUp();
    vi.advanceTimersByTime(20_500);
    let [req] = link.renewRequests();
    renewer.onAnswer({ type: 'cert-renewed', id: req.id, certificate: sign(req.csr, otherCa) });
    expect(lines.at(-1)).toMatchObject({ msg: 'certificate renewal failed; will retry', reason: expect.stringMatching(/not signed by the pinned CA/) });
    vi.advanceTimersByTime(1000);
    req = link.renewRequests()[1];
    renewer.onAnswer({ type: 'cert-renewed', id: req.id, certificate: sign(makeCsr('x').csrPem) });
    expect(lines.at(-1)).toMatchObject({ reason: expect.stringMatching(/not for the key made for this renewal/) });
    expect(tls.cert).toBe(old.certPem);
    expect(readFileSync(paths.tlsCert, 'utf8')).toBe(old.certPem);
    expect(link.reconnects).toHaveLength(0);
    renewer.stop();
  });

  it('ignores an answer to no pending request; retries when no answer comes', () => {
    const { link, lines, renewer, tls, old } = setUp();
    vi.advanceTimersByTime(20_500);
    const [req] = link.renewRequests();
    renewer.onAnswer({ type: 'cert-renewed', id: 'forged', certificate: sign(req.csr) });
    expect(tls.cert).toBe(old.certPem);
    expect(lines.at(-1)).toMatchObject({ msg: 'an answer to no pending certificate renewal; ignored' });
    vi.advanceTimersByTime(31_500); // the answer timeout, then a retry within 1 s (the certificate has run out by then)
    expect(lines.some((l) => l.msg === 'certificate renewal failed; will retry' && /no answer/.test(String(l.reason)))).toBe(true);
    expect(link.renewRequests().length).toBeGreaterThanOrEqual(2);
    renewer.stop();
  });

  it('waits for the link: due while disconnected, it asks as soon as the link is ready', () => {
    const { link, renewer } = setUp();
    link.set('backoff');
    vi.advanceTimersByTime(21_000);
    expect(link.renewRequests()).toHaveLength(0);
    link.set('ready');
    expect(link.renewRequests()).toHaveLength(1);
    renewer.stop();
  });
});

describe('renewed key and certificate on disk', () => {
  const pair = () => {
    const { keyPem, csrPem } = makeCsr('x');
    return { keyPem, certPem: sign(csrPem) };
  };

  it('a crash after the pending file was written is finished at the next load', () => {
    const paths = statePaths(dir);
    const old = pair();
    const next = pair();
    writeFileSync(paths.tlsKey, old.keyPem);
    writeFileSync(paths.tlsCert, old.certPem);
    writeFileSync(paths.tlsNext, JSON.stringify({ key: next.keyPem, cert: next.certPem })); // the crash: only step 1 done
    expect(completePendingTls(paths)).toBe(true);
    expect(readFileSync(paths.tlsKey, 'utf8')).toBe(next.keyPem);
    expect(readFileSync(paths.tlsCert, 'utf8')).toBe(next.certPem);
    expect(existsSync(paths.tlsNext)).toBe(false);
  });

  it('an unusable pending file is dropped and the old pair kept', () => {
    const paths = statePaths(dir);
    const old = pair();
    writeFileSync(paths.tlsKey, old.keyPem);
    writeFileSync(paths.tlsCert, old.certPem);
    writeFileSync(paths.tlsNext, JSON.stringify({ key: pair().keyPem, cert: old.certPem })); // mismatched
    expect(completePendingTls(paths)).toBe(false);
    expect(readFileSync(paths.tlsCert, 'utf8')).toBe(old.certPem);
    expect(existsSync(paths.tlsNext)).toBe(false);
  });

  it('storeRenewedTls leaves the new pair and no pending file', () => {
    const paths = statePaths(dir);
    const next = pair();
    storeRenewedTls(paths, next.keyPem, next.certPem);
    expect(readFileSync(paths.tlsKey, 'utf8')).toBe(next.keyPem);
    expect(readFileSync(paths.tlsCert, 'utf8')).toBe(next.certPem);
    expect(existsSync(paths.tlsNext)).toBe(false);
  });
});
