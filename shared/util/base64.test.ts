import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { base64 } from './base64.js';

describe('base64()', () => {
  const cases = ['', 'YQ==', 'YWI=', 'YWJj', 'a+/9', Buffer.from('x'.repeat(300_000)).toString('base64'), 'not base64!', 'YQ=', 'YQ', 'Y Q==', 'YQ==YQ==', 'Y===', 'YQ==\n', 'YWJj-_==', '=YWJ', 'ab=c'];

  it('accepts and refuses exactly what zod’s z.base64() does', () => {
    for (const s of cases) expect(base64().safeParse(s).success, JSON.stringify(s.slice(0, 20))).toBe(z.base64().safeParse(s).success);
  });

  it('refuses text outside the alphabet, bad padding and a length that is not a multiple of 4', () => {
    for (const s of ['not base64!', 'YQ=', 'Y===', 'YQ==YQ==', 'YQ==\n', 'YWJj-_==']) expect(base64().safeParse(s).success, s).toBe(false);
    expect(base64().max(4).safeParse('YWJjZA==').success).toBe(false);
  });

  it('checks a multi-megabyte string without a stack overflow', () => {
    expect(base64().safeParse('A'.repeat(8 * 1024 * 1024)).success).toBe(true);
    expect(base64().safeParse('A'.repeat(8 * 1024 * 1024 - 1) + '!').success).toBe(false);
  });
});
