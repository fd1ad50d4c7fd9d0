import { createHash, createPrivateKey, generateKeyPairSync, X509Certificate } from 'node:crypto';
import forge from 'node-forge';
import { beforeAll, describe, expect, it } from 'vitest';
import { makeCsr } from '../../shared/pki/csr.js';
import { createCa, fingerprint, issueWithNewKey, sansOf, signCsr, type KeyPairPem } from './ca.js';

let ca: KeyPairPem;
let otherCa: KeyPairPem;
beforeAll(() => {
  ca = createCa('Test CA');
  otherCa = createCa('Other CA');
});

describe('embedded CA', () => {
  it('writes PEM with LF line endings (Python ssl refuses the CRLF forge writes)', () => {
    expect(ca.certPem).not.toContain('\r');
    expect(issueWithNewKey(ca, { commonName: 'x', sans: ['127.0.0.1'], usage: 'server' }).certPem).not.toContain('\r');
  });

  it('creates a self-signed CA certificate Node accepts as a CA', () => {
    const cert = new X509Certificate(ca.certPem);
    expect(cert.ca).toBe(true);
    expect(cert.subject).toContain('CN=Test CA');
    expect(cert.checkIssued(cert)).toBe(true);
    expect(cert.verify(cert.publicKey)).toBe(true);
    expect(Date.parse(cert.validTo) - Date.now()).toBeGreaterThan(5 * 365 * 86_400_000);
  });

  it('issues a server certificate with SANs that verifies against the CA only', () => {
    const leaf = issueWithNewKey(ca, { commonName: 'central', sans: ['localhost', '127.0.0.1', 'central.example', '::1'], usage: 'server' });
    const cert = new X509Certificate(leaf.certPem);
    expect(cert.ca).toBe(false);
    expect(cert.verify(new X509Certificate(ca.certPem).publicKey)).toBe(true);
    expect(cert.verify(new X509Certificate(otherCa.certPem).publicKey)).toBe(false);
    expect(cert.checkIssued(new X509Certificate(ca.certPem))).toBe(true);
    expect(cert.checkHost('central.example')).toBe('central.example');
    expect(cert.checkIP('127.0.0.1')).toBe('127.0.0.1');
    expect(cert.checkHost('elsewhere.example')).toBeUndefined();
    expect(sansOf(leaf.certPem)).toEqual(expect.arrayContaining(['localhost', '127.0.0.1', 'central.example']));
    expect(cert.keyUsage).toContain('1.3.6.1.5.5.7.3.1'); // serverAuth
    expect(cert.keyUsage).not.toContain('1.3.6.1.5.5.7.3.2');
    // The key matches the certificate.
    expect(cert.checkPrivateKey(createPrivateKey(leaf.keyPem))).toBe(true);
  });

  it('signs a CSR made with node-forge; the CA, not the CSR, decides name, SANs and usage', () => {
    const { csrPem, keyPem } = makeCsr('i-want-to-be-admin');
    const certPem = signCsr(ca, csrPem, { commonName: 'agent-dc1', sans: ['agent.dc1.example'], usage: 'client', days: 30 });
    const cert = new X509Certificate(certPem);
    expect(cert.verify(new X509Certificate(ca.certPem).publicKey)).toBe(true);
    expect(cert.subject).toBe('CN=agent-dc1');
    expect(cert.subject).not.toContain('i-want-to-be-admin');
    expect(cert.issuer).toBe(new X509Certificate(ca.certPem).subject);
    expect(cert.checkPrivateKey(createPrivateKey(keyPem))).toBe(true);
    expect(cert.keyUsage).toContain('1.3.6.1.5.5.7.3.2'); // clientAuth
    expect(cert.keyUsage).not.toContain('1.3.6.1.5.5.7.3.1');
    const days = (Date.parse(cert.validTo) - Date.now()) / 86_400_000;
    expect(days).toBeGreaterThan(29);
    expect(days).toBeLessThanOrEqual(30);
    expect(sansOf(certPem)).toEqual(['agent.dc1.example']);
  });

  it('gives every certificate a distinct positive serial', () => {
    const { csrPem } = makeCsr('x');
    const serials = Array.from({ length: 300 }, () => new X509Certificate(signCsr(ca, csrPem, { commonName: 'x', usage: 'client' })).serialNumber);
    expect(new Set(serials).size).toBe(300); // ~1 in 512 serials started 00 8x before the fix
    for (const s of serials) expect(parseInt(s.slice(0, 2), 16)).toBeLessThan(0x80);
  });

  it('rejects a CSR whose signature does not verify, and text that is not a CSR', () => {
    const { csrPem } = makeCsr('tampered');
    const csr = forge.pki.certificationRequestFromPem(csrPem);
    csr.setSubject([{ name: 'commonName', value: 'changed-after-signing' }]);
    (csr as unknown as { certificationRequestInfo: unknown }).certificationRequestInfo = null; // re-encode the changed subject
    const tampered = forge.pki.certificationRequestToPem(csr);
    expect(() => signCsr(ca, tampered, { commonName: 'x', usage: 'client' })).toThrow(/does not verify/);
    expect(() => signCsr(ca, 'hello', { commonName: 'x', usage: 'client' })).toThrow(/not a PEM certificate signing request/);
  });

  it('fingerprints a certificate as the SHA-256 of its DER, in lower-case hex', () => {
    const fp = fingerprint(ca.certPem);
    expect(fp).toMatch(/^[0-9a-f]{64}$/);
    expect(fp).toBe(createHash('sha256').update(new X509Certificate(ca.certPem).raw).digest('hex'));
    expect(fp).toBe(new X509Certificate(ca.certPem).fingerprint256.replace(/:/g, '').toLowerCase());
    expect(fingerprint(otherCa.certPem)).not.toBe(fp);
  });
});

