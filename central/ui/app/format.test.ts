import { describe, expect, it } from 'vitest';
import { ago, base64Utf8, masked, normalMac, query, until } from './format.js';

describe('console formatting', () => {
  it('reads a MAC typed with dashes or upper case, and nothing else', () => {
    expect(normalMac(' 52-54-00-AA-bb-01 ')).toBe('52:54:00:aa:bb:01');
    expect(normalMac('web-1')).toBeUndefined();
    expect(normalMac('52:54:00:aa:bb')).toBeUndefined();
  });
  it('builds a query string from set values only', () => {
    expect(query({ site: 'dc1', state: '', limit: 100, mac: undefined })).toBe('?site=dc1&limit=100');
    expect(query({})).toBe('');
  });
  it('says how long ago and until', () => {
    const now = Date.parse('2026-01-01T00:10:00Z');
    expect(ago('2026-01-01T00:09:30Z', now)).toBe('30s ago');
    expect(ago(undefined, now)).toBe('never');
    expect(until('2026-01-31T00:10:00Z', now)).toBe('in 30d');
    expect(until('2025-12-31T00:00:00Z', now)).toBe('expired');
  });
  it('encodes a UTF-8 script as base64', () => {
    expect(base64Utf8('echo größe')).toBe(Buffer.from('echo größe').toString('base64'));
  });
  it('masks values under secret-looking keys at any depth', () => {
    expect(masked({ a: 1, bmc_password: 'x', n: { apiToken: 'y', list: [{ sshKey: 'z' }] } })).toEqual({ a: 1, bmc_password: '••••••', n: { apiToken: '••••••', list: [{ sshKey: '••••••' }] } });
  });
});
