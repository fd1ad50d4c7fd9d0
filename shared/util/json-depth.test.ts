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

  it('tells an escaped quote from a closing one after runs of backslashes', () => {
    expect(jsonTextDepth('{"a":"x\\\\"}')).toBe(1); // "x\\\\" ends at the quote after two escaped backslashes
    expect(jsonTextDepth('["x\\\\",[[1]]]')).toBe(3);
    expect(jsonTextDepth('["x\\\\\\\"[[[",[1]]')).toBe(2); // an odd run: the quote is escaped, the brackets are text
    expect(jsonTextDepth('["\\\\",["\\""],[]]')).toBe(2);
    expect(jsonTextDepth('["unterminated [[[[')).toBe(1);
  });

  it('agrees with the parsed depth on random JSON with long strings, escapes and brackets in strings', () => {
    const pieces = ['[', '{', '"', '\\', ']', '}', 'a', 'x'];
    let seed = 7;
    const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) % n);
    const value = (d: number): unknown => {
      const k = rnd(d > 6 ? 2 : 4);
      if (k === 0) return Array.from({ length: rnd(40) }, () => pieces[rnd(pieces.length)]).join('') + 'b'.repeat(rnd(3) === 0 ? 5000 : 3);
      if (k === 1) return rnd(1000);
      if (k === 2) return Array.from({ length: rnd(4) }, () => value(d + 1));
      return Object.fromEntries(Array.from({ length: rnd(4) }, (_, i) => [`k${i}"[{\\`, value(d + 1)]));
    };
    for (let n = 0; n < 300; n++) {
      const v = value(0);
      expect(jsonTextDepth(JSON.stringify(v))).toBe(valueDepth(v));
    }
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
