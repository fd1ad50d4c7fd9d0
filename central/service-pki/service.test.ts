import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes, X509Certificate } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../shared/log/logger.js';
import { MemoryStore } from '../store/memory-store.js';
import { machinesCollection, MACHINES } from '../machines/resources.js';
import { KeySeal } from './key-seal.js';
import { opensslCsr } from '../../scripts/bench/pki/openssl-csr.js';
import { CERT_REQUESTS, certRequestsCollection, ISSUED_CERTS, issuedCertsCollection, SERVICE_CAS, serviceCasCollection, type ServiceCaDoc } from './resources.js';
import { ServicePki } from './service.js';
import { ServiceCaCreate } from '../../shared/api/pki.js';

const work = mkdtempSync(join(tmpdir(), 'ul-svc-pki-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const members = new Set(['m1', 'm2']);
let store: MemoryStore;
let pki: ServicePki;
let n = 0;
const req = () => `req-${(++n).toString().padStart(6, '0')}-${randomBytes(3).toString('hex')}`;

async function machine(name: string, addresses: string[], site = 'dc1') {
  const at = new Date().toISOString();
  await store.put(MACHINES, {
    id: `id-${name}`,
    name,
    site,
    macs: [],
    profiles: [],
    params: {},
    facts: {},
    bootenv: 'discovery',
    state: 'ready',
    netboot: true,
    address: undefined,
    addresses: addresses.map((address) => ({ address, source: 'lease', at })),
    createdAt: at,
    updatedAt: at,
  } as never);
}

/** openssl verify of `cert` against the CA, with the CA's CRL when `crl` is set. */
function opensslVerify(caPem: string, certPem: string, crlPem?: string): boolean {
  const d = mkdtempSync(join(work, 'v-'));
  writeFileSync(join(d, 'ca.pem'), caPem);
  writeFileSync(join(d, 'cert.pem'), certPem);
  const args = ['verify', '-CAfile', join(d, 'ca.pem')];
  if (crlPem) {
    writeFileSync(join(d, 'crl.pem'), crlPem);
    args.push('-crl_check', '-CRLfile', join(d, 'crl.pem'));
  }
  try {
    execFileSync('openssl', [...args, join(d, 'cert.pem')], { stdio: 'pipe' });
    return true;
  } catch {
    return false;
  }
}

beforeEach(async () => {
  store = new MemoryStore([machinesCollection, serviceCasCollection, issuedCertsCollection, certRequestsCollection]);
  pki = new ServicePki(store, new KeySeal(randomBytes(32)), { isMember: (s, m) => s === 'demo' && members.has(m) }, { logger: silentLogger });
  await machine('m1', ['198.18.0.11', '127.0.0.1']);
  await machine('m2', ['198.18.0.12']);
  await machine('other', ['198.18.0.13'], 'dc2');
});

describe('service CAs', () => {
  it.each(['ec-p256', 'rsa-3072', 'ed25519'] as const)('creates a %s CA whose certificate openssl accepts as a CA, with an empty CRL; the key is only stored sealed', async (keyType) => {
    const ca = await pki.createCa({ name: 'demo', keyType, ttl: '365d', maxCertTtl: '30d' });
    const cert = new X509Certificate(ca.certificate);
    expect(cert.ca).toBe(true);
    expect(cert.subject).toContain('CN=Underlay service CA demo');
    expect(ca).not.toHaveProperty('sealedKey');
    const doc = store.findUnique<ServiceCaDoc>(SERVICE_CAS, 'name', 'demo')!;
    expect(JSON.stringify(doc)).not.toContain('PRIVATE KEY');
    expect(doc.sealedKey.alg).toBe('aes-256-gcm');
    expect(execFileSync('openssl', ['crl', '-noout', '-text'], { input: ca.crl, encoding: 'utf8' })).toContain('No Revoked Certificates');
    await expect(pki.createCa({ name: 'demo', keyType, ttl: '365d', maxCertTtl: '30d' })).rejects.toThrow(/exists/);
  });

  it('takes the CA lifetime in years (`--ttl 10y`, 365 days each), as the issue writes it', async () => {
    expect(ServiceCaCreate.safeParse({ name: 'y', ttl: '10y' }).success).toBe(true);
    const ca = await pki.createCa(ServiceCaCreate.parse({ name: 'y', ttl: '10y' }));
    expect((Date.parse(ca.notAfter) - Date.now()) / 86_400_000).toBeCloseTo(3650, 0);
    expect(Date.parse(new X509Certificate(ca.certificate).validTo)).toBeCloseTo(Date.parse(ca.notAfter), -5);
  });

  it('refuses a certificate lifetime longer than the CA', async () => {
    await expect(pki.createCa({ name: 'x', keyType: 'ec-p256', ttl: '1d', maxCertTtl: '30d' })).rejects.toThrow(/shorter than the CA/);
  });
});

describe('machine CSRs', () => {
  beforeEach(async () => {
    await pki.createCa({ name: 'demo', keyType: 'ec-p256', ttl: '365d', maxCertTtl: '1d', domain: 'demo.example' });
  });

  it('issues a member its known names (no SANs asked: all of them), verifiable by openssl against the CA', async () => {
    const { csrPem } = opensslCsr('whatever', []);
    const a = await pki.answerCsr({ request: req(), machine: 'id-m1', ca: 'demo', csr: csrPem }, 'dc1');
    expect(a.state).toBe('issued');
    const cert = pki.getCert(a.serial!);
    expect(cert.sans).toEqual(['m1', 'm1.demo.example', '198.18.0.11']); // loopback left out
    const x = new X509Certificate(cert.certificate);
    expect(x.subject).toBe('CN=m1');
    expect(x.checkIP('198.18.0.11')).toBe('198.18.0.11');
    expect(x.checkHost('m1.demo.example')).toBe('m1.demo.example');
    expect(opensslVerify(pki.getCa('demo').certificate, cert.certificate)).toBe(true);
    expect((Date.parse(cert.notAfter) - Date.now()) / 3_600_000).toBeCloseTo(24, 0);
  });

  it('refuses a CSR naming something the machine is not, and records why; nothing is issued', async () => {
    const { csrPem } = opensslCsr('m1', ['m1', '198.18.0.12']); // m2's address
    const a = await pki.answerCsr({ request: req(), machine: 'id-m1', ca: 'demo', csr: csrPem }, 'dc1');
    expect(a).toMatchObject({ state: 'refused' });
    expect(a.reason).toContain('198.18.0.12');
    expect(pki.listCerts({ ca: 'demo' })).toHaveLength(0);
    for (const evil of ['evil.example', '127.0.0.1', 'm2', 'm1.other.example']) {
      const r = await pki.answerCsr({ request: req(), machine: 'id-m1', ca: 'demo', csr: opensslCsr('m1', [evil]).csrPem }, 'dc1');
      expect(r.state, evil).toBe('refused');
    }
  });

  it('refuses a machine that is not a member of the service, another site’s machine, a bad CSR and an unknown CA', async () => {
    await machine('m3', ['198.18.0.14']);
    expect((await pki.answerCsr({ request: req(), machine: 'id-m3', ca: 'demo', csr: opensslCsr('m3', []).csrPem }, 'dc1')).reason).toMatch(/not a member/);
    await expect(pki.answerCsr({ request: req(), machine: 'id-other', ca: 'demo', csr: opensslCsr('x', []).csrPem }, 'dc1')).rejects.toThrow(/not a machine of site/);
    const good = opensslCsr('m1', []).csrPem;
    const der = Buffer.from(good.replace(/-----[^-]+-----|\s/g, ''), 'base64');
    der[der.length - 80] ^= 0x01; // inside the signed part: the signature no longer verifies
    const tampered = `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`;
    expect((await pki.answerCsr({ request: req(), machine: 'id-m1', ca: 'demo', csr: tampered }, 'dc1')).state).toBe('refused');
    expect((await pki.answerCsr({ request: req(), machine: 'id-m1', ca: 'demo', csr: '-----BEGIN CERTIFICATE REQUEST-----\n' + 'A'.repeat(200) + '\n-----END CERTIFICATE REQUEST-----' }, 'dc1')).reason).toMatch(/certificate signing request/);
    expect((await pki.answerCsr({ request: req(), machine: 'id-m1', ca: 'nope', csr: good }, 'dc1')).reason).toMatch(/no CA/);
    expect(pki.listCerts()).toHaveLength(0);
  });

  it('is idempotent per request id and keeps only the latest request per machine and CA', async () => {
    const id = req();
    const csr = opensslCsr('m1', []).csrPem;
    const a = await pki.answerCsr({ request: id, machine: 'id-m1', ca: 'demo', csr }, 'dc1');
    const b = await pki.answerCsr({ request: id, machine: 'id-m1', ca: 'demo', csr }, 'dc1');
    expect(b.serial).toBe(a.serial);
    expect(pki.listCerts()).toHaveLength(1);
    const c = await pki.answerCsr({ request: req(), machine: 'id-m1', ca: 'demo', csr }, 'dc1');
    expect(pki.siteState('dc1').requests.map((r) => r.serial)).toEqual([c.serial]);
    expect(pki.siteState('dc2').requests).toEqual([]);
  });

  it('caps the lifetime at the CA maximum and refuses one under the minimum; caps valid certificates per machine', async () => {
    const csr = opensslCsr('m1', []).csrPem;
    const long = await pki.answerCsr({ request: req(), machine: 'id-m1', ca: 'demo', csr, ttl: '90d' }, 'dc1');
    expect(Date.parse(pki.getCert(long.serial!).notAfter) - Date.now()).toBeLessThanOrEqual(86_400_000);
    expect((await pki.answerCsr({ request: req(), machine: 'id-m1', ca: 'demo', csr, ttl: '5s' }, 'dc1')).reason).toMatch(/minimum/);
    for (let i = 0; i < 3; i++) expect((await pki.answerCsr({ request: req(), machine: 'id-m1', ca: 'demo', csr }, 'dc1')).state).toBe('issued');
    expect((await pki.answerCsr({ request: req(), machine: 'id-m1', ca: 'demo', csr }, 'dc1')).reason).toMatch(/already holds 4/);
  });

  it('counts a machine’s certificates from an index: answering a CSR never lists the fleet’s certificates or requests', async () => {
    const csr = opensslCsr('m1', []).csrPem;
    await pki.answerCsr({ request: req(), machine: 'id-m2', ca: 'demo', csr: opensslCsr('m2', []).csrPem }, 'dc1');
    const listed: string[] = [];
    const list = store.list.bind(store);
    store.list = ((collection: string, q?: never) => {
      listed.push(collection);
      return list(collection, q);
    }) as typeof store.list;
    for (let i = 0; i < 5; i++) await pki.answerCsr({ request: req(), machine: 'id-m1', ca: 'demo', csr }, 'dc1');
    expect(listed.filter((c) => c === ISSUED_CERTS || c === CERT_REQUESTS)).toEqual([]);
    // …and the count is still right: 4 issued, the fifth refused; m2's certificate is not m1's.
    expect(pki.listCerts({ machine: 'id-m1' })).toHaveLength(4);
    expect(pki.siteState('dc1').requests).toHaveLength(2);
  });

  it('racing CSRs of one machine (and a redelivered one) cannot get past the cap or be issued twice', async () => {
    const csr = opensslCsr('m1', []).csrPem;
    const dup = req();
    const answers = await Promise.all([{ request: dup, machine: 'id-m1', ca: 'demo', csr }, { request: dup, machine: 'id-m1', ca: 'demo', csr }, ...Array.from({ length: 6 }, () => ({ request: req(), machine: 'id-m1', ca: 'demo', csr }))].map((ev) => pki.answerCsr(ev, 'dc1')));
    expect(answers.filter((a) => a.state === 'issued')).toHaveLength(5); // 4 certificates, the duplicate answered twice with the same serial
    expect(pki.listCerts({ machine: 'id-m1' })).toHaveLength(4);
    expect(answers[1]).toEqual(answers[0]);
  });

  it('counts certificates another replica wrote to the shared store', async () => {
    const at = new Date().toISOString();
    const notAfter = new Date(Date.now() + 3_600_000).toISOString();
    for (let i = 0; i < 4; i++) {
      await store.put(ISSUED_CERTS, { id: `0${i}`, serial: `0${i}`, ca: 'demo', machine: 'id-m1', machineName: 'm1', site: 'dc1', commonName: 'm1', sans: ['m1'], notBefore: at, notAfter, certificate: 'x', status: 'valid', createdAt: at, updatedAt: at });
    }
    const csr = opensslCsr('m1', []).csrPem;
    expect((await pki.answerCsr({ request: req(), machine: 'id-m1', ca: 'demo', csr }, 'dc1')).reason).toMatch(/already holds 4/);
    await pki.revoke('00');
    expect((await pki.answerCsr({ request: req(), machine: 'id-m1', ca: 'demo', csr }, 'dc1')).state).toBe('issued');
  });

  it('revocation re-signs the CRL: openssl verify with CRL check fails for the revoked certificate only', async () => {
    const a = await pki.answerCsr({ request: req(), machine: 'id-m1', ca: 'demo', csr: opensslCsr('m1', []).csrPem }, 'dc1');
    const b = await pki.answerCsr({ request: req(), machine: 'id-m2', ca: 'demo', csr: opensslCsr('m2', []).csrPem }, 'dc1');
    const caPem = pki.getCa('demo').certificate;
    expect(opensslVerify(caPem, pki.getCert(a.serial!).certificate, pki.getCa('demo').crl)).toBe(true);
    await pki.revoke(a.serial!);
    const crl = pki.getCa('demo').crl!;
    expect(opensslVerify(caPem, pki.getCert(a.serial!).certificate, crl)).toBe(false);
    expect(opensslVerify(caPem, pki.getCert(b.serial!).certificate, crl)).toBe(true);
    expect(pki.getCert(a.serial!).status).toBe('revoked');
    expect(pki.siteState('dc1').cas[0].crl).toBe(crl);
    await expect(pki.revoke('00ff')).rejects.toThrow(/no certificate/);
  });

  it('re-signs CRLs past half their lifetime only', async () => {
    expect(await pki.refreshCrls()).toBe(0);
    expect(await pki.refreshCrls(Date.now() + 4 * 86_400_000)).toBe(1);
  });

  it('deletes the records of certificates expired longer than the retention, and only those', async () => {
    const a = await pki.answerCsr({ request: req(), machine: 'id-m1', ca: 'demo', csr: opensslCsr('m1', []).csrPem }, 'dc1');
    const b = await pki.answerCsr({ request: req(), machine: 'id-m2', ca: 'demo', csr: opensslCsr('m2', []).csrPem }, 'dc1');
    const old = pki.getCert(a.serial!);
    await store.put(ISSUED_CERTS, { ...old, notAfter: new Date(Date.now() - 31 * 86_400_000).toISOString() });
    expect(await pki.pruneExpired(Date.now() + 60_000)).toBe(1); // b: valid; a: expired 31 days ago
    expect(pki.listCerts().map((c) => c.serial)).toEqual([b.serial]);
    expect(await pki.pruneExpired(Date.now() + 29 * 86_400_000)).toBe(0); // b expires in a day: kept 30 more
    expect(await pki.pruneExpired(Date.now() + 32 * 86_400_000)).toBe(1);
    expect(pki.siteState('dc1').requests.length).toBe(2); // the answers stay, without a certificate
  });

  it('deleting a CA removes its certificates and requests', async () => {
    await pki.answerCsr({ request: req(), machine: 'id-m1', ca: 'demo', csr: opensslCsr('m1', []).csrPem }, 'dc1');
    await pki.deleteCa('demo');
    expect(pki.listCerts()).toEqual([]);
    expect(pki.siteState('dc1')).toEqual({ cas: [], requests: [] });
  });
});
