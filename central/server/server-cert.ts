import { createPrivateKey, X509Certificate } from 'node:crypto';
import { join } from 'node:path';
import { writeFileDurableSync } from '../../shared/fs/durable.js';
import { renewalDueAt } from '../../shared/pki/renewal.js';
import { issueWithNewKey, sansOf, type KeyPairPem } from '../pki/ca.js';

/** The central's HTTPS server certificate in its data dir: when it must be re-issued, and issuing it. */
export const serverCertPaths = (dir: string) => ({ key: join(dir, 'server.key'), cert: join(dir, 'server.pem') });

/**
 * Why the server certificate must be re-issued now, or null: its renewal time (2/3 of its lifetime) has
 * come, another CA issued it, it misses a name the central is reached by, or the key on disk is not its
 * key (a crash between the two file writes of a renewal).
 */
export function serverCertRenewalReason(server: KeyPairPem, ca: KeyPairPem, sans: string[], now = Date.now()): string | null {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(server.certPem);
    if (!cert.checkPrivateKey(createPrivateKey(server.keyPem))) return 'the key does not match the certificate';
  } catch (e) {
    return `unreadable: ${(e as Error).message}`;
  }
  if (!cert.checkIssued(new X509Certificate(ca.certPem))) return 'not issued by this CA';
  const have = new Set(sansOf(server.certPem));
  const missing = sans.filter((s) => !have.has(s));
  if (missing.length > 0) return `does not cover ${missing.join(', ')}`;
  if (now >= renewalDueAt(server.certPem)) return 'due for renewal';
  return null;
}

/** Issues a new server key and certificate and writes both durably (key 0600). */
export function issueServerCert(dir: string, ca: KeyPairPem, sans: string[], lifetimeMs: number): KeyPairPem {
  const server = issueWithNewKey(ca, { commonName: sans[0] ?? 'underlay-central', sans, usage: 'server', lifetimeMs });
  const p = serverCertPaths(dir);
  writeFileDurableSync(p.key, server.keyPem, 0o600);
  writeFileDurableSync(p.cert, server.certPem, 0o644);
  return server;
}
