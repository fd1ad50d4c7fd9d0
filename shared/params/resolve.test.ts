import { describe, expect, it } from 'vitest';
import { ParamError, ParamResolver, paramValues, redactSecrets, resolveParams, type ParamLayers, type ParamSource } from './resolve.js';

// Layers from most to least specific, as the contract orders them.
const ORDER = ['machine', 'profile:first', 'profile:second', 'site:rack1', 'global', 'default'] as const;
type Layer = (typeof ORDER)[number];

function build(present: Set<Layer>): { layers: ParamLayers; defDefault: string | undefined } {
  const v = (l: Layer) => (present.has(l) ? { p: `value-from-${l}` } : {});
  return {
    layers: {
      machine: v('machine'),
      profiles: [
        { name: 'first', params: v('profile:first') },
        { name: 'second', params: v('profile:second') },
      ],
      site: { name: 'rack1', params: v('site:rack1') },
      global: v('global'),
    },
    defDefault: present.has('default') ? 'value-from-default' : undefined,
  };
}

describe('param precedence matrix', () => {
  // Every combination of layers that set the param: 2^6 cases.
  const cases: Layer[][] = [];
  for (let mask = 0; mask < 1 << ORDER.length; mask++) cases.push(ORDER.filter((_, i) => mask & (1 << i)));

  it.each(cases.map((c) => [c.join(',') || '(none)', c] as const))('layers set: %s', (_label, set) => {
    const { layers, defDefault } = build(new Set(set));
    const resolved = resolveParams([{ name: 'p', schema: { type: 'string' }, default: defDefault, secret: false }], layers);
    const winner = ORDER.find((l) => set.includes(l));
    if (!winner) {
      expect(resolved.p).toBeUndefined();
      return;
    }
    expect(resolved.p).toEqual({ value: `value-from-${winner}`, source: winner as ParamSource, secret: false });
  });

  it('profile order is the machine order: swapping profiles swaps the winner', () => {
    const defs = [{ name: 'p', schema: { type: 'string' }, secret: false }];
    const a = { name: 'a', params: { p: 'A' } };
    const b = { name: 'b', params: { p: 'B' } };
    expect(resolveParams(defs, { profiles: [a, b] }).p?.source).toBe('profile:a');
    expect(resolveParams(defs, { profiles: [b, a] }).p?.source).toBe('profile:b');
  });

  it('an explicit null is a value; undefined is not', () => {
    const defs = [{ name: 'p', schema: { type: ['string', 'null'] }, default: 'd', secret: false }];
    expect(resolveParams(defs, { machine: { p: null }, global: { p: 'g' } }).p).toEqual({ value: null, source: 'machine', secret: false });
    expect(resolveParams(defs, { machine: { p: undefined }, global: { p: 'g' } }).p?.source).toBe('global');
  });
});

describe('param validation', () => {
  const defs = [
    { name: 'install_disk', schema: { type: 'string', pattern: '^/dev/' }, default: '/dev/sda', secret: false },
    { name: 'ntp_servers', schema: { type: 'array', items: { type: 'string', format: 'hostname' } }, secret: false },
    { name: 'root_password_hash', schema: { type: 'string', minLength: 8 }, secret: true },
  ];

  it('rejects a winning value that breaks its schema, naming the param and its source', () => {
    const err = (() => {
      try {
        resolveParams(defs, { profiles: [{ name: 'web', params: { install_disk: 'sda' } }] });
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(ParamError);
    expect((err as ParamError).param).toBe('install_disk');
    expect((err as ParamError).source).toBe('profile:web');
    expect((err as Error).message).toMatch(/install_disk.*profile:web.*pattern/);
  });

  it('checks formats (ajv-formats)', () => {
    expect(() => resolveParams(defs, { site: { name: 's', params: { ntp_servers: ['ok.example', 'not a host!'] } } })).toThrow(/ntp_servers/);
    expect(resolveParams(defs, { site: { name: 's', params: { ntp_servers: ['ntp.example'] } } }).ntp_servers?.value).toEqual(['ntp.example']);
  });

  it('rejects a definition whose default breaks its own schema', () => {
    expect(() => new ParamResolver([{ name: 'n', schema: { type: 'integer' }, default: 'x', secret: false }])).toThrow(/param "n".*default/);
  });

  it('rejects bad definitions and bad schemas', () => {
    expect(() => new ParamResolver([{ name: 'Bad-Name', schema: {}, secret: false }])).toThrow(ParamError);
    expect(() => new ParamResolver([{ name: 'x', schema: { type: 'nope' }, secret: false }])).toThrow(/param "x".*schema/);
    expect(() => new ParamResolver([{ name: 'x', schema: {} }, { name: 'x', schema: {} }])).toThrow(/defined twice/);
  });

  it('marks secrets and can redact them', () => {
    const r = resolveParams(defs, { machine: { root_password_hash: '$6$abcdefgh' } });
    expect(r.root_password_hash).toEqual({ value: '$6$abcdefgh', source: 'machine', secret: true });
    expect(redactSecrets(r).root_password_hash?.value).toBe('[secret]');
    expect(paramValues(r)).toEqual({ install_disk: '/dev/sda', root_password_hash: '$6$abcdefgh' });
  });

  it('passes undefined params through by default and rejects them on request', () => {
    expect(resolveParams(defs, { global: { extra: 1 } }).extra).toEqual({ value: 1, source: 'global', secret: false });
    expect(() => resolveParams(defs, { global: { extra: 1 } }, { unknownParams: 'reject' })).toThrow(/param "extra".*global.*no such param/);
  });

  it('rejects malformed layers (bad param names) without resolving anything', () => {
    expect(() => resolveParams(defs, { machine: { 'BAD NAME': 1 } as never })).toThrow(ParamError);
  });

  it('returns defaults as copies, so callers cannot mutate the definition', () => {
    const r = new ParamResolver([{ name: 'l', schema: { type: 'array' }, default: ['a'], secret: false }]);
    (r.resolve({}).l!.value as string[]).push('b');
    expect(r.resolve({}).l!.value).toEqual(['a']);
  });
});
