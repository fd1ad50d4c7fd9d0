import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../shared/log/logger.js';
import { makeCsr } from '../../shared/pki/csr.js';
import { createCa, fingerprint, signCsr, type KeyPairPem } from '../pki/ca.js';
import { ChangeFeed } from '../store/change-feed.js';
import { FileStore } from '../store/file-store.js';
import { AgentCertRenewal, retirePreviousCert } from './cert-renewal.js';
import { AGENT_COLLECTIONS, AGENTS, type AgentDoc } from './collections.js';

let ca: KeyPairPem;
let dir: string;
let store: FileStore;
let renewal: AgentCertRenewal;
let joinedFp: string;
const LIFETIME = 60_000;

beforeAll(() => {
  ca = createCa('Agent renewal test CA');
});
beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'underlay-agent-renew-'));
  store = await FileStore.open({ dir, collections: AGENT_COLLECTIONS, logger: silentLogger });
  const joined = signCsr(ca, makeCsr('agent-candidate:a1').csrPem, { commonName: 'agent:a1', usage: 'client', lifetimeMs: LIFETIME });
  joinedFp = fingerprint(joined);
  const now = new Date().toISOString();
  await store.put<AgentDoc>(AGENTS, { id: 'a1', site: 's1', name: 'a1', certFingerprint: joinedFp, certSerial: new X509Certificate(joined).serialNumber, sealPublicKey: 'x', agentVersion: '1', nextSeq: 1, createdAt: now, updatedAt: now });
  renewal = new AgentCertRenewal({ store, ca, lifetimeMs: LIFETIME, logger: silentLogger, minIntervalMs: 0 });
});
afterEach(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

const agent = () => store.get<AgentDoc>(AGENTS, 'a1')!;

describe('AgentCertRenewal', () => {
  it('signs the CSR for the connection’s agent (CN agent:<id>, client usage, configured lifetime) and records serial, expiry and the previous certificate', async () => {
    const { csrPem, keyPem } = makeCsr('agent:someone-else'); // the CSR's subject is ignored
    const certPem = await renewal.renew('a1', joinedFp, csrPem);
    const x = new X509Certificate(certPem);
    expect(x.subject).toBe('CN=agent:a1');
    expect(x.checkIssued(new X509Certificate(ca.certPem))).toBe(true);
    expect(x.keyUsage).toContain('1.3.6.1.5.5.7.3.2');
    expect(x.checkPrivateKey((await import('node:crypto')).createPrivateKey(keyPem))).toBe(true);
    expect(Date.parse(x.validTo) - Date.now()).toBeLessThanOrEqual(LIFETIME);
    expect(Date.parse(x.validTo) - Date.now()).toBeGreaterThan(LIFETIME - 5000);
    expect(agent()).toMatchObject({ certFingerprint: fingerprint(certPem), certSerial: x.serialNumber, certExpiresAt: new Date(Date.parse(x.validTo)).toISOString(), previousCertFingerprint: joinedFp });
    // Both certificates find the agent until it connects with the new one.
    expect(store.findUnique<AgentDoc>(AGENTS, 'certFingerprint', joinedFp)?.id).toBe('a1');
    expect(store.findUnique<AgentDoc>(AGENTS, 'certFingerprint', fingerprint(certPem))?.id).toBe('a1');
    const retired = retirePreviousCert(agent(), fingerprint(certPem));
    expect(retired.previousCertFingerprint).toBeUndefined();
    await store.put(AGENTS, retired);
    expect(store.findUnique(AGENTS, 'certFingerprint', joinedFp)).toBeUndefined();
  });

  it('connecting again with the old certificate does not retire it', () => {
    const doc = { ...agent(), certFingerprint: 'new', previousCertFingerprint: joinedFp };
    expect(retirePreviousCert(doc, joinedFp)).toBe(doc);
  });

  it('a lost answer never locks the agent out: a retry from the old certificate keeps the old one accepted', async () => {
    const lost = await renewal.renew('a1', joinedFp, makeCsr('x').csrPem); // the agent never stored this one
    const kept = await renewal.renew('a1', joinedFp, makeCsr('x').csrPem);
    expect(agent()).toMatchObject({ certFingerprint: fingerprint(kept), previousCertFingerprint: joinedFp });
    expect(store.findUnique(AGENTS, 'certFingerprint', fingerprint(lost))).toBeUndefined();
  });

  it('a revoked agent cannot renew; nothing changes on its record', async () => {
    await store.put(AGENTS, { ...agent(), revokedAt: new Date().toISOString() });
    const before = agent();
    const answer = await renewal.answer('a1', joinedFp, { type: 'cert-renew', id: 'r1', csr: makeCsr('x').csrPem });
    expect(answer).toMatchObject({ type: 'cert-renew-refused', id: 'r1', code: 'revoked' });
    expect(agent()).toEqual(before);
  });

  it('a certificate that is no longer the agent’s (an older, replaced one) cannot renew', async () => {
    await renewal.renew('a1', joinedFp, makeCsr('x').csrPem);
    await store.put(AGENTS, retirePreviousCert(agent(), agent().certFingerprint));
    const answer = await renewal.answer('a1', joinedFp, { type: 'cert-renew', id: 'r2', csr: makeCsr('x').csrPem });
    expect(answer).toMatchObject({ type: 'cert-renew-refused', code: 'revoked', message: /no longer the agent/ });
  });

  it('a garbage or tampered CSR is refused as invalid-csr; nothing changes', async () => {
    const before = agent();
    const { csrPem } = makeCsr('x');
    const der = Buffer.from(csrPem.replace(/-----[^-]+-----|\s/g, ''), 'base64');
    der[der.length - 10] ^= 0xff; // a byte of the signature
    const tampered = `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64').replace(/.{64}/g, '$&\n')}\n-----END CERTIFICATE REQUEST-----\n`;
    for (const csr of ['-----BEGIN CERTIFICATE REQUEST-----\n' + 'A'.repeat(300) + '\n-----END CERTIFICATE REQUEST-----\n', tampered]) {
      const answer = await renewal.answer('a1', joinedFp, { type: 'cert-renew', id: 'r', csr });
      expect(answer).toMatchObject({ type: 'cert-renew-refused', code: 'invalid-csr' });
    }
    expect(agent()).toEqual(before);
  });

  it('renewals of one agent are rate-limited', async () => {
    const limited = new AgentCertRenewal({ store, ca, lifetimeMs: LIFETIME, logger: silentLogger, minIntervalMs: 60_000 });
    expect(await limited.answer('a1', joinedFp, { type: 'cert-renew', id: 'r1', csr: makeCsr('x').csrPem })).toMatchObject({ type: 'cert-renewed' });
    expect(await limited.answer('a1', joinedFp, { type: 'cert-renew', id: 'r2', csr: makeCsr('x').csrPem })).toMatchObject({ type: 'cert-renew-refused', code: 'too-soon' });
    // Garbage counts too: a flood of bad CSRs is cut off after the first.
    const other = new AgentCertRenewal({ store, ca, lifetimeMs: LIFETIME, logger: silentLogger, minIntervalMs: 60_000 });
    const garbage = '-----BEGIN CERTIFICATE REQUEST-----\n' + 'A'.repeat(300) + '\n-----END CERTIFICATE REQUEST-----\n';
    expect(await other.answer('a1', agent().certFingerprint, { type: 'cert-renew', id: 'g1', csr: garbage })).toMatchObject({ code: 'invalid-csr' });
    expect(await other.answer('a1', agent().certFingerprint, { type: 'cert-renew', id: 'g2', csr: garbage })).toMatchObject({ code: 'too-soon' });
  });

  it('a store failure is answered as unavailable (the agent retries), not thrown', async () => {
    await store.close();
    const answer = await renewal.answer('a1', joinedFp, { type: 'cert-renew', id: 'r1', csr: makeCsr('x').csrPem });
    expect(answer).toMatchObject({ type: 'cert-renew-refused', code: 'unavailable' });
    store = await FileStore.open({ dir, collections: AGENT_COLLECTIONS, logger: silentLogger });
    expect(agent().certFingerprint).toBe(joinedFp);
  });
});
