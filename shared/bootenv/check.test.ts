import { describe, expect, it } from 'vitest';
import { checkBootEnvTemplates } from './check.js';
import { parseBootEnv } from './schema.js';

describe('checkBootEnvTemplates', () => {
  const base = { name: 'x', os: { family: 't' }, kernel: { url: 'k' } };
  it('passes good templates', () => {
    expect(checkBootEnvTemplates(parseBootEnv({ ...base, bootParams: '{{ a | json }}', templates: [{ name: 'f', path: 'f', template: "{% include 's' %}" }] }), { s: 'x' })).toEqual([]);
  });
  it('names each broken template', () => {
    const problems = checkBootEnvTemplates(
      parseBootEnv({ ...base, bootParams: '{% if %}', ipxe: '{{ a | nofilter }}', templates: [{ name: 'f', path: 'f', template: '{% for %}' }] }),
    );
    expect(problems).toHaveLength(3);
    expect(problems[0]).toMatch(/^x\/bootParams: /);
    expect(problems[1]).toMatch(/^x\/ipxe: .*nofilter/);
    expect(problems[2]).toMatch(/^x\/f: /);
  });
});

describe('BootEnvSchema', () => {
  const base = { name: 'x', os: { family: 't' }, kernel: { url: 'k' } };
  it.each([
    ['bad name', { ...base, name: 'X Y' }, /names/],
    ['ftp kernel URL', { ...base, kernel: { url: 'ftp://h/k' } }, /http/],
    ['whitespace in URL', { ...base, kernel: { url: 'https://h/a b' } }, /whitespace/],
    ['absolute relative path', { ...base, kernel: { url: '/etc/k' } }, /relative/],
    ['template path with ..', { ...base, templates: [{ name: 'a', path: '../a', template: '' }] }, /template path/],
    ['unknown validator', { ...base, templates: [{ name: 'a', path: 'a', template: '', validate: 'xml' }] }, /validate/],
    ['param both required and optional', { ...base, requiredParams: ['a'], optionalParams: ['a'] }, /both required and optional/],
    ['unknown key', { ...base, kernal: {} }, /kernal/],
  ])('rejects %s', (_l, input, re) => {
    expect(() => parseBootEnv(input)).toThrow(re);
  });
  it('fills defaults', () => {
    const e = parseBootEnv(base);
    expect(e).toMatchObject({ initrds: [], bootParams: '', requiredParams: [], optionalParams: [], templates: [], onlyUnknown: false, install: false });
  });
});
