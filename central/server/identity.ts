import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileDurableSync } from '../../shared/fs/durable.js';
import type { Logger } from '../../shared/log/logger.js';
import { createCa, fingerprint, type KeyPairPem } from '../pki/ca.js';
import { issueServerCert, serverCertPaths, serverCertRenewalReason } from './server-cert.js';
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
 * central is reached by or 2/3 of its lifetime have passed (see server-cert.ts; a running central renews
 * it with ServerCertRenewer). Private keys are written 0600.
 */
export async function ensureIdentity(dir: string, sans: string[], logger: Logger, serverCertLifetimeMs: number): Promise<CentralIdentity> {
  const p = (f: string) => join(dir, f);
  let ca: KeyPairPem;
  if (existsSync(p('ca.pem')) && existsSync(p('ca.key'))) {
    ca = { certPem: readFileSync(p('ca.pem'), 'utf8'), keyPem: readFileSync(p('ca.key'), 'utf8') };
    // Earlier versions wrote forge's CRLF PEM; Python's ssl (Ansible's open_url) refuses it.
    if (ca.certPem.includes('\r')) {
      ca.certPem = ca.certPem.replace(/\r\n/g, '\n');
      writeFileDurableSync(p('ca.pem'), ca.certPem, 0o644);
    }
  } else {
    logger.info('creating the control-plane CA');
    ca = createCa('Underlay control-plane CA');
    writeFileDurableSync(p('ca.key'), ca.keyPem, 0o600);
    writeFileDurableSync(p('ca.pem'), ca.certPem, 0o644);
  }

  let server: KeyPairPem | undefined;
  const sp = serverCertPaths(dir);
  if (existsSync(sp.cert) && existsSync(sp.key)) {
    server = { certPem: readFileSync(sp.cert, 'utf8'), keyPem: readFileSync(sp.key, 'utf8') };
    const why = serverCertRenewalReason(server, ca, sans);
    if (why) {
      logger.info({ reason: why }, 're-issuing the central server certificate');
      server = undefined;
    }
  }
  if (!server) {
    logger.info({ sans }, 'issuing the central server certificate');
    server = issueServerCert(dir, ca, sans, serverCertLifetimeMs);
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
