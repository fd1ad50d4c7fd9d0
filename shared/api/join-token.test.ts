import { describe, expect, it } from 'vitest';
import { formatJoinToken, parseJoinToken } from './join-token.js';

const bearer = `ul_0123456789abcdef_${'A'.repeat(43)}`;
const fp = 'ab'.repeat(32);

describe('join tokens', () => {
  it('carry the replicas’ URLs, and tokens without any (older ones) still parse', () => {
    const urls = ['https://c1.example:8443', 'https://[2001:db8::1]:8443'];
    const token = formatJoinToken(bearer, fp, urls);
    expect(token).toMatch(/^ulj1\.ul_[0-9a-f]{16}_[A-Za-z0-9_-]{43}\.[0-9a-f]{64}\.[A-Za-z0-9_-]+$/);
    expect(parseJoinToken(`  ${token}\n`)).toEqual({ bearer, caFingerprint: fp, centralUrls: urls });
    expect(formatJoinToken(bearer, fp)).toBe(`ulj1.${bearer}.${fp}`);
    expect(parseJoinToken(`ulj1.${bearer}.${fp}`)).toEqual({ bearer, caFingerprint: fp, centralUrls: [] });
  });

  it('refuses a URL part that is not printable text, too long, or not base64url', () => {
    const enc = (s: string) => Buffer.from(s).toString('base64url');
    expect(() => parseJoinToken(`ulj1.${bearer}.${fp}.${enc('https://a\n,https://b')}`)).toThrow(/not readable/);
    expect(() => parseJoinToken(`ulj1.${bearer}.${fp}.${enc('\u0000')}`)).toThrow(/not readable/);
    expect(() => parseJoinToken(`ulj1.${bearer}.${fp}.${'A'.repeat(4000)}`)).toThrow(/not a valid join token/);
    expect(() => parseJoinToken(`ulj1.${bearer}.${fp}.abc=+/`)).toThrow(/not a valid join token/);
    expect(() => parseJoinToken(`ulj1.${bearer}.${fp}.`)).toThrow(/not a valid join token/);
  });
});
