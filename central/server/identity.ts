import { existsSync, readFileSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import { join } from 'node:path';
import { writeFileDurableSync } from '../../shared/fs/durable.js';
import type { Logger } from '../../shared/log/logger.js';
import { createCa, fingerprint, issueWithNewKey, sansOf, type KeyPairPem } from '../pki/ca.js';
import { decodeSigningKey, encodeSigningKey, generateSigningKey, type SigningKeyPair } from '../keys/signing-key.js';

export interface CentralIdentity {
  ca: KeyPairPem;
  server: KeyPairPem;
  signing: SigningKeyPair;
  caFingerprint: string;
}

/**
 * Creates (first start) or loads (later starts) the central's CA, server certificate and task-signing
 * key in the data dir. The server certificate is re-issued when it no longer covers the names the
 * central is reached by, or expires within 30 days. Private keys are written 0600.
 */
export async function ensureIdentity(dir: string, sans: string[], logger: Logger): Promise<CentralIdentity> {
  const p = (f: string) => join(dir, f);
  let ca: KeyPairPem;
  if (existsSync(p('ca.pem')) && existsSync(p('ca.key'))) {
    ca = { certPem: readFileSync(p('ca.pem'), 'utf8'), keyPem: readFileSync(p('ca.key'), 'utf8') };
  } else {
    logger.info('creating the control-plane CA');
    ca = createCa('Underlay control-plane CA');
    writeFileDurableSync(p('ca.key'), ca.keyPem, 0o600);
    writeFileDurableSync(p('ca.pem'), ca.certPem, 0o644);
  }

  let server: KeyPairPem | undefined;
  if (existsSync(p('server.pem')) && existsSync(p('server.key'))) {
    server = { certPem: readFileSync(p('server.pem'), 'utf8'), keyPem: readFileSync(p('server.key'), 'utf8') };
    const have = new Set(sansOf(server.certPem));
    const expiresSoon = Date.parse(new X509Certificate(server.certPem).validTo) - Date.now() < 30 * 86_400_000;
    const issuedByCa = new X509Certificate(server.certPem).checkIssued(new X509Certificate(ca.certPem));
    if (expiresSoon || !issuedByCa || sans.some((s) => !have.has(s))) server = undefined;
  }
  if (!server) {
    logger.info({ sans }, 'issuing the central server certificate');
    server = issueWithNewKey(ca, { commonName: sans[0] ?? 'underlay-central', sans, usage: 'server' });
    writeFileDurableSync(p('server.key'), server.keyPem, 0o600);
    writeFileDurableSync(p('server.pem'), server.certPem, 0o644);
  }

  let signing: SigningKeyPair;
  if (existsSync(p('signing.key'))) {
    signing = decodeSigningKey(readFileSync(p('signing.key'), 'utf8'));
  } else {
    logger.info('creating the Ed25519 task-signing key');
    signing = await generateSigningKey();
    writeFileDurableSync(p('signing.key'), encodeSigningKey(signing), 0o600);
  }
  return { ca, server, signing, caFingerprint: fingerprint(ca.certPem) };
}
