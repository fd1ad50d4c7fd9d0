import { describe, expect, it } from 'vitest';
import { parseCount, parseSize } from './size.js';

describe('parseSize', () => {
  it('reads bytes and binary units', () => {
    expect(parseSize('65536')).toBe(65536);
    expect(parseSize('512k')).toBe(512 * 1024);
    expect(parseSize('64M')).toBe(64 * 1024 ** 2);
    expect(parseSize('1GiB')).toBe(1024 ** 3);
    expect(parseSize('1.5m')).toBe(1.5 * 1024 ** 2);
  });
  it('refuses what is not a size or count', () => {
    expect(() => parseSize('lots')).toThrow(/not a size/);
    expect(() => parseSize('-1')).toThrow(/not a size/);
    expect(() => parseCount('0', '--x')).toThrow(/above 0/);
    expect(parseCount('10', '--x')).toBe(10);
  });
});
