import { afterEach, describe, expect, it, vi } from 'vitest';
import { print, printPage } from './output.js';

function capture(fn: () => void): string {
  let out = '';
  const spy = vi.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => ((out += String(s)), true));
  try {
    fn();
  } finally {
    spy.mockRestore();
  }
  return out;
}

describe('CLI output', () => {
  const saved = { NO_COLOR: process.env.NO_COLOR, FORCE_COLOR: process.env.FORCE_COLOR };
  afterEach(() => {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  });

  it('prints compact tables: no borders, aligned columns', () => {
    const out = capture(() => print([{ name: 'm1', site: 'dc1' }, { name: 'machine-22', site: 'dc2' }], 'table', ['name', 'site']));
    expect(out).toBe('name        site\nm1          dc1\nmachine-22  dc2\n');
  });
  it('says "showing N of M" when the page is not everything, and nothing when it is', () => {
    const partial = capture(() => printPage({ items: [{ name: 'a' }, { name: 'b' }], total: 5, offset: 2 }, 'table', ['name']));
    expect(partial).toContain('showing 2 of 5 (3-4; --limit/--offset for more)\n');
    expect(capture(() => printPage({ items: [{ name: 'a' }], total: 1 }, 'table', ['name']))).not.toContain('showing');
    expect(JSON.parse(capture(() => printPage({ items: [{ name: 'a' }], total: 5 }, 'json')))).toEqual({ items: [{ name: 'a' }], total: 5 });
  });
  it('colours the header only when allowed: NO_COLOR wins over FORCE_COLOR', () => {
    process.env.FORCE_COLOR = '1';
    delete process.env.NO_COLOR;
    expect(capture(() => print([{ a: 1 }], 'table'))).toContain('\x1b[');
    process.env.NO_COLOR = '1';
    expect(capture(() => print([{ a: 1 }], 'table'))).not.toContain('\x1b[');
  });
});
