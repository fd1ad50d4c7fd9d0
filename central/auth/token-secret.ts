import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * Bearer token format: `ul_<id>_<secret>`. The id finds the record; only sha256(secret) is stored.
 * Secrets are 32 random bytes, so a fast hash is enough (no dictionary to resist).
 */
export const TOKEN_PREFIX = 'ul_';

export function newTokenSecret(): { id: string; secret: string; hash: string } {
  const id = randomBytes(8).toString('hex');
  const secret = randomBytes(32).toString('base64url');
  return { id, secret, hash: hashSecret(secret) };
}

export function formatToken(id: string, secret: string): string {
  return `${TOKEN_PREFIX}${id}_${secret}`;
}

export function parseToken(token: string): { id: string; secret: string } | null {
  const m = /^ul_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/.exec(token);
  return m ? { id: m[1], secret: m[2] } : null;
}

export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

export function secretMatches(secret: string, hash: string): boolean {
  const a = Buffer.from(hashSecret(secret), 'hex');
  const b = Buffer.from(hash, 'hex');
  return a.length === b.length && timingSafeEqual(a, b);
}
