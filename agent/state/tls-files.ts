import { createPrivateKey, X509Certificate } from 'node:crypto';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';
import { fsyncDirSync, writeFileDurableSync } from '../../shared/fs/durable.js';

/** The paths these functions use (a subset of StatePaths, so this module does not import state-dir). */
export interface TlsPaths {
  tlsKey: string;
  tlsCert: string;
  tlsNext: string;
}

/**
 * Replaces the agent's client key and certificate with renewed ones, crash-safe: both go first into one
 * file written atomically (tls.next.json), then into tls.key and tls.pem, then that file is removed. A
 * crash before the first step leaves the old pair; after it, the next start finishes the job
 * (completePendingTls). tls.key and tls.pem never hold a key and a certificate that do not match.
 */
export function storeRenewedTls(paths: TlsPaths, keyPem: string, certPem: string): void {
  writeFileDurableSync(paths.tlsNext, JSON.stringify({ key: keyPem, cert: certPem }), 0o600);
  installPending(paths, keyPem, certPem);
}

/** Finishes a renewal interrupted between tls.next.json and tls.key/tls.pem; true if there was one. */
export function completePendingTls(paths: TlsPaths): boolean {
  if (!existsSync(paths.tlsNext)) return false;
  let next: { key: string; cert: string };
  try {
    next = JSON.parse(readFileSync(paths.tlsNext, 'utf8')) as { key: string; cert: string };
    if (!new X509Certificate(next.cert).checkPrivateKey(createPrivateKey(next.key))) throw new Error('key and certificate do not match');
  } catch {
    rmSync(paths.tlsNext, { force: true }); // never installed: the old pair in tls.key/tls.pem stays
    return false;
  }
  installPending(paths, next.key, next.cert);
  return true;
}

function installPending(paths: TlsPaths, keyPem: string, certPem: string): void {
  writeFileDurableSync(paths.tlsKey, keyPem, 0o600);
  writeFileDurableSync(paths.tlsCert, certPem, 0o644);
  rmSync(paths.tlsNext, { force: true });
  fsyncDirSync(dirname(paths.tlsNext));
}
