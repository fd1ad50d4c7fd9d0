import { describe, expect, it } from 'vitest';
import { formatToken, hashSecret, newTokenSecret, parseToken, secretMatches, TOKEN_PREFIX } from './token-secret.js';

describe('token secrets', () => {
  it('formats and parses ul_<id>_<secret> round trip', () => {
    const { id, secret, hash } = newTokenSecret();
    const token = formatToken(id, secret);
    expect(token.startsWith(TOKEN_PREFIX)).toBe(true);
    expect(token).toMatch(/^ul_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/);
    expect(parseToken(token)).toEqual({ id, secret });
    expect(hash).toBe(hashSecret(secret));
    expect(hash).not.toContain(secret);
  });

  it('makes a fresh id and a 256-bit secret every time', () => {
    const many = Array.from({ length: 200 }, () => newTokenSecret());
    expect(new Set(many.map((t) => t.id)).size).toBe(200);
    expect(new Set(many.map((t) => t.secret)).size).toBe(200);
    for (const t of many) expect(Buffer.from(t.secret, 'base64url')).toHaveLength(32);
  });

  it('rejects malformed tokens', () => {
    const { id, secret } = newTokenSecret();
    for (const bad of ['', 'ul_', `ul_${id}`, `xx_${id}_${secret}`, `ul_${id.toUpperCase()}_${secret}`, `ul_${id}_${secret}x`, `ul_${id}_${secret.slice(1)}`, ` ul_${id}_${secret}`, `ul_${id}_${secret.slice(0, 42)}!`]) {
      expect(parseToken(bad), bad).toBeNull();
    }
  });

  it('matches only the right secret against a stored hash', () => {
    const a = newTokenSecret();
    const b = newTokenSecret();
    expect(secretMatches(a.secret, a.hash)).toBe(true);
    expect(secretMatches(b.secret, a.hash)).toBe(false);
    expect(secretMatches(a.secret, 'abcd')).toBe(false); // a corrupt stored hash never matches (no throw)
    expect(secretMatches(a.secret, '')).toBe(false);
  });
});
