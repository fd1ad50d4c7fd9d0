import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileDurableSync } from '../../shared/fs/durable.js';

/** Sealed form of a CA private key as the store keeps it: AES-256-GCM under the central's PKI seal key. */
export interface SealedKey {
  alg: 'aes-256-gcm';
  iv: string;
  tag: string;
  data: string;
}

/**
 * Seals service-CA private keys at rest (docs/decisions.md "Service CA keys sealed in the store"): the
 * store, its journal, backups and PostgreSQL replicas hold only the sealed form; the 32-byte seal key is
 * a 0600 file in the central's data directory (`pki-seal.key`, beside ca.key and signing.key), which
 * every replica of one central must share. `aad` binds a sealed key to its CA (no swapping between CAs).
 */
export class KeySeal {
  constructor(private readonly key: Buffer) {
    if (key.length !== 32) throw new Error('the PKI seal key must be 32 bytes');
  }

  /** Loads `pki-seal.key` from the data directory, creating it (0600, fsync'd) on first use. */
  static inDir(dir: string): KeySeal {
    const path = join(dir, 'pki-seal.key');
    if (!existsSync(path)) writeFileDurableSync(path, randomBytes(32).toString('base64') + '\n', 0o600);
    return new KeySeal(Buffer.from(readFileSync(path, 'utf8').trim(), 'base64'));
  }

  seal(plain: string, aad: string): SealedKey {
    const iv = randomBytes(12);
    const c = createCipheriv('aes-256-gcm', this.key, iv);
    c.setAAD(Buffer.from(aad));
    const data = Buffer.concat([c.update(plain, 'utf8'), c.final()]);
    return { alg: 'aes-256-gcm', iv: iv.toString('base64'), tag: c.getAuthTag().toString('base64'), data: data.toString('base64') };
  }

  /** Throws when the sealed key was changed, belongs to another CA or was sealed under another seal key. */
  open(s: SealedKey, aad: string): string {
    const d = createDecipheriv('aes-256-gcm', this.key, Buffer.from(s.iv, 'base64'));
    d.setAAD(Buffer.from(aad));
    d.setAuthTag(Buffer.from(s.tag, 'base64'));
    return Buffer.concat([d.update(Buffer.from(s.data, 'base64')), d.final()]).toString('utf8');
  }
}
