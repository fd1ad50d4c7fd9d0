import { describe, expect, it } from 'vitest';
import { JsonTooDeepError, jsonTextDepth, parseJsonWithin, valueDepth } from './json-depth.js';

const nested = (n: number) => '['.repeat(n) + ']'.repeat(n);

describe('JSON depth limits', () => {
  it('measures the nesting of text, skipping brackets inside strings and escaped quotes', () => {
    expect(jsonTextDepth('1')).toBe(0);
    expect(jsonTextDepth('{"a":[1,{"b":2}]}')).toBe(3);
    expect(jsonTextDepth('{"a":"[[[[\\"[[[{{{"}')).toBe(1);
    expect(jsonTextDepth(nested(100_000))).toBe(100_000); // no recursion: no stack overflow
  });

  it('refuses text nested past the limit before parsing it', () => {
    expect(parseJsonWithin(nested(64))).toEqual(JSON.parse(nested(64)));
    expect(() => parseJsonWithin(nested(65))).toThrow(JsonTooDeepError);
    expect(() => parseJsonWithin(`{"p":${nested(3500)}}`)).toThrow(/deeper than 64/);
  });

  it('measures parsed values iteratively', () => {
    expect(valueDepth('x')).toBe(0);
    expect(valueDepth({ a: [1, { b: 2 }] })).toBe(3);
    let deep: unknown = 1;
    for (let i = 0; i < 50_000; i++) deep = [deep];
    expect(valueDepth(deep)).toBe(50_000);
    expect(valueDepth(deep, 32)).toBe(33); // stops early past the limit
  });
});
