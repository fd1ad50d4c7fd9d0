import { describe, expect, it } from 'vitest';
import { negotiate } from './options.js';

const limits = { maxBlksize: 1468, maxWindowsize: 16, defaultTimeoutMs: 1000 };
const req = (o: Record<string, string>) => new Map(Object.entries(o));

describe('negotiate', () => {
  it('no options: plain RFC 1350, no OACK', () => {
    expect(negotiate(req({}), 100, limits)).toEqual({ blksize: 512, windowsize: 1, timeoutMs: 1000, oack: null });
  });

  it('answers tsize with the file size and keeps the client order', () => {
    const n = negotiate(req({ tsize: '0', blksize: '1024' }), 74213, limits);
    expect(n.oack).toEqual([
      ['tsize', '74213'],
      ['blksize', '1024'],
    ]);
    expect(n.blksize).toBe(1024);
  });

  it('clamps blksize and windowsize to the limits', () => {
    const n = negotiate(req({ blksize: '65464', windowsize: '64' }), 1, limits);
    expect(n.blksize).toBe(1468);
    expect(n.windowsize).toBe(16);
    expect(n.oack).toEqual([
      ['blksize', '1468'],
      ['windowsize', '16'],
    ]);
    expect(negotiate(req({ blksize: '99999999' }), 1, { ...limits, maxBlksize: 65464 }).blksize).toBe(65464);
  });

  it('accepts timeout 1..255 s and uses it', () => {
    const n = negotiate(req({ timeout: '3' }), 1, limits);
    expect(n.timeoutMs).toBe(3000);
    expect(n.oack).toEqual([['timeout', '3']]);
  });

  it('declines bad values and unknown options by omission', () => {
    for (const bad of [
      { blksize: '7' },
      { blksize: 'abc' },
      { blksize: '-1' },
      { blksize: '1e3' },
      { blksize: '' },
      { windowsize: '0' },
      { timeout: '0' },
      { timeout: '256' },
      { tsize: 'x' },
      { multicast: '' },
      { utimeout: '1000' },
    ]) {
      const n = negotiate(req(bad), 10, limits);
      expect(n.oack, JSON.stringify(bad)).toBeNull();
      expect(n.blksize).toBe(512);
      expect(n.windowsize).toBe(1);
      expect(n.timeoutMs).toBe(1000);
    }
  });
});
