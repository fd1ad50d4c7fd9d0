import { describe, expect, it } from 'vitest';
import forge from 'node-forge';
import { BACKDATE_MS, describeRemaining, renewalDueAt, validityOf } from './renewal.js';

/** A self-signed certificate valid from `from` to `to` (the renewal rule only reads its dates). */
function certValid(from: number, to: number): string {
  const keys = forge.pki.rsa.generateKeyPair({ bits: 512, e: 0x10001 });
  const cert = forge.pki.createCertificate();
  cert.publicKey = keys.publicKey;
  cert.serialNumber = '01';
  cert.validity.notBefore = new Date(from);
  cert.validity.notAfter = new Date(to);
  cert.setSubject([{ name: 'commonName', value: 't' }]);
  cert.setIssuer([{ name: 'commonName', value: 't' }]);
  cert.sign(keys.privateKey, forge.md.sha256.create());
  return forge.pki.certificateToPem(cert);
}

describe('renewalDueAt', () => {
  const issued = Date.parse('2030-01-01T00:00:00Z');
  it('is 2/3 into the lifetime, counted from the issue time (notBefore + back-dating)', () => {
    const ninetyDays = 90 * 86_400_000;
    const pem = certValid(issued - BACKDATE_MS, issued + ninetyDays);
    expect(renewalDueAt(pem)).toBe(issued + 60 * 86_400_000);
    expect(validityOf(pem)).toMatchObject({ notBefore: issued - BACKDATE_MS, notAfter: issued + ninetyDays, serial: '01' });
  });
  it('works for lifetimes shorter than the back-dating (test certificates of seconds)', () => {
    expect(renewalDueAt(certValid(issued - BACKDATE_MS, issued + 30_000))).toBe(issued + 20_000);
  });
  it('assumes the CA back-dated notBefore: a 50-minute certificate not back-dated renews at 35 of its minutes', () => {
    // issue time read as notBefore + 5 min; 2/3 of the remaining 45 min = 30 min after that.
    expect(renewalDueAt(certValid(issued, issued + 3_000_000))).toBe(issued + 2_100_000);
  });
});

describe('describeRemaining', () => {
  it('reads as days/hours, hours/minutes, minutes/seconds, seconds, or expired', () => {
    expect(describeRemaining(3 * 86_400_000 + 5 * 3_600_000)).toBe('3d 5h');
    expect(describeRemaining(2 * 3_600_000 + 60_000)).toBe('2h 1m');
    expect(describeRemaining(61_000)).toBe('1m 1s');
    expect(describeRemaining(9_999)).toBe('9s');
    expect(describeRemaining(0)).toBe('expired');
  });
});
