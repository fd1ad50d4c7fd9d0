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
    expect(() => canonicalJson({ a: [1, { b: [NaN] }] })).toThrow('$.a[1].b[0]: non-finite number cannot be encoded canonically');
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

  it('gives the reference encoder\'s bytes, also for array-index keys, __proto__ members and lone surrogates', () => {
    const protoKey = JSON.parse('{"__proto__": {"x": 1}, "a": 0}') as unknown;
    const cases: unknown[] = [
      { b: 1, a: { '10': 0, '9': 1, x: [{ '0': 'z', y: 1 }] } },
      { '4294967295': 1, '4294967294': 2, '01': 3, '1': 4, '-1': 5, '1.5': 6 },
      protoKey,
      { s: 'lone \ud800 surrogate \udfff', [String.fromCharCode(0xd83d)]: 1, '\u2028': '\u2029' },
      [1, -0, 0.1, 1e21, 5e-324, 'x', null, true, [], {}],
      { v: 1, id: 'x', payload: { stdinB64: 'QUJD'.repeat(1000), n: 2 ** 53 }, kind: 'exec' },
      'top-level string', 42, null,
    ];
    for (const c of cases) expect(canonicalJson(c)).toBe(reference(c));
    expect(canonicalJson(protoKey)).toBe('{"__proto__":{"x":1},"a":0}');
    expect(canonicalJson({ b: { '2': 0, '10': 0 }, a: 1 })).toBe('{"a":1,"b":{"10":0,"2":0}}');
  });
});

/** The encoder canonicalJson replaced, kept as the reference its bytes must equal. */
function reference(v: unknown): string {
  if (v === null || typeof v !== 'object') return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map(reference).join(',')}]`;
  const keys = Object.keys(v).filter((k) => (v as Record<string, unknown>)[k] !== undefined).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${keys.map((k) => `${JSON.stringify(k)}:${reference((v as Record<string, unknown>)[k])}`).join(',')}}`;
}
