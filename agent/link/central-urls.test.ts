import { describe, expect, it } from 'vitest';
import { CentralUrls, parseCentralUrls } from './central-urls.js';

describe('central URLs', () => {
  it('parses a comma- or space-separated list, drops trailing slashes and duplicates, refuses what is not http(s)', () => {
    expect(parseCentralUrls('https://a:8443/, https://b:8443 https://a:8443')).toEqual(['https://a:8443', 'https://b:8443']);
    expect(parseCentralUrls('https://one')).toEqual(['https://one']);
    expect(() => parseCentralUrls(' , ')).toThrow(/no central URL/);
    expect(() => parseCentralUrls('https://a,ftp://b')).toThrow(/http\(s\)/);
    expect(() => parseCentralUrls('nope')).toThrow(/not a URL/);
  });

  it('stays on a URL that works, moves to the next after a failure, and counts rounds over the whole list', () => {
    const u = new CentralUrls(['https://a', 'https://b', 'https://c']);
    expect(u.current).toBe('https://a');
    u.failed();
    expect([u.current, u.round]).toEqual(['https://b', 0]);
    u.failed();
    u.failed();
    expect([u.current, u.round]).toEqual(['https://a', 1]);
    u.succeeded();
    expect(u.round).toBe(0);
    expect(u.current).toBe('https://a');
  });
});
