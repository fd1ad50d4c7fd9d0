import { describe, expect, it } from 'vitest';
import { canonicalJson } from './canonical.js';

describe('canonicalJson', () => {
  it('sorts object keys by code point at every level, without whitespace', () => {
    const a = canonicalJson({ b: 1, a: { z: [3, { y: true, x: null }], c: 'd' } });
    expect(a).toBe('{"a":{"c":"d","z":[3,{"x":null,"y":true}]},"b":1}');
    // insertion order does not matter
    expect(canonicalJson({ a: { z: [3, { x: null, y: true }], c: 'd' }, b: 1 })).toBe(a);
  });

  it('orders by UTF-16 code unit, not locale (upper case before lower case, ASCII before non-ASCII)', () => {
    expect(canonicalJson({ b: 0, B: 0, é: 0, a: 0, '10': 0, '9': 0 })).toBe('{"10":0,"9":0,"B":0,"a":0,"b":0,"é":0}');
  });

  it('keeps unicode as UTF-8 characters and escapes what JSON must', () => {
    const s = canonicalJson({ k: 'zürich 東京 🚀 "q" \\ \n' });
    expect(s).toBe('{"k":"zürich 東京 🚀 \\"q\\" \\\\ \\n"}');
    expect(JSON.parse(s)).toEqual({ k: 'zürich 東京 🚀 "q" \\ \n' });
    expect(Buffer.byteLength(s, 'utf8')).toBeGreaterThan(s.length); // multi-byte characters, not \u escapes
  });

  it('round-trips: parsing the encoding and re-encoding gives the same bytes', () => {
    const v = { n: -1.5e-7, big: 2 ** 53, arr: [[], {}, ''], nested: { deep: { deeper: [1, 'x', false] } } };
    const once = canonicalJson(v);
    expect(canonicalJson(JSON.parse(once))).toBe(once);
  });

  it('drops undefined object members (as JSON.stringify does)', () => {
    expect(canonicalJson({ a: undefined, b: 2 })).toBe('{"b":2}');
  });

  it('rejects non-finite numbers, naming where they are', () => {
    expect(() => canonicalJson({ a: NaN })).toThrow(/\$\.a: non-finite/);
    expect(() => canonicalJson([1, Infinity])).toThrow(/\$\[1\]: non-finite/);
    expect(() => canonicalJson({ x: { y: -Infinity } })).toThrow(/\$\.x\.y/);
  });

  it('rejects values that are not JSON', () => {
    expect(() => canonicalJson([undefined])).toThrow(/undefined cannot be encoded/);
    expect(() => canonicalJson({ f: () => 1 })).toThrow(/function/);
    expect(() => canonicalJson({ b: 1n })).toThrow(/bigint/);
    expect(() => canonicalJson({ d: new Date(0) })).toThrow(/plain objects/);
    expect(() => canonicalJson(new Map())).toThrow(/plain objects/);
  });

  it('accepts objects without a prototype', () => {
    const o = Object.create(null) as Record<string, number>;
    o.b = 2;
    o.a = 1;
    expect(canonicalJson(o)).toBe('{"a":1,"b":2}');
  });
});
