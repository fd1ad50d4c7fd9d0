import { describe, expect, it } from 'vitest';
import { GroupNamer, groupName, normalisePrefix, slugPart } from './sanitize.js';

const VALID = /^[A-Za-z_][A-Za-z0-9_]*$/;

describe('group name sanitising', () => {
  it('lower-cases and turns spaces, dashes and dots into single underscores', () => {
    expect(groupName('site', 'DC 1 - Paris.north')).toBe('site_dc_1_paris_north');
    expect(groupName('rack', 'R-12')).toBe('rack_r_12');
  });

  it('transliterates accents and drops other non-ASCII', () => {
    expect(slugPart('Zürich Straße')).toBe('zurich_strasse');
    expect(slugPart('Ålesund Øst')).toBe('alesund_ost');
    expect(groupName('site', '東京-1')).toBe('site_1');
    expect(groupName('site', '東京')).toBe('site_empty');
  });

  it('prefixes a leading digit with an underscore when there is no prefix', () => {
    expect(groupName('', '10G nics')).toBe('_10g_nics');
    expect(groupName('', '  ')).toBe('empty');
  });

  it('always yields a valid Ansible group name', () => {
    for (const raw of ['a b', '--x--', '9', 'ÉTÉ', '💾 disk', 'x'.repeat(80), '.', 'Ab_C']) {
      for (const prefix of ['', 'site', 'my prefix', '1x']) expect(groupName(prefix, raw)).toMatch(VALID);
    }
  });

  it('normalises the global prefix', () => {
    expect(normalisePrefix('ul')).toBe('ul_');
    expect(normalisePrefix('UL_')).toBe('ul_');
    expect(normalisePrefix('2x')).toBe('_2x_');
    expect(normalisePrefix('')).toBe('');
    expect(normalisePrefix('—')).toBe('');
  });
});

describe('GroupNamer (collisions)', () => {
  it('gives distinct keys distinct names, preferring the raw value that already is the name', () => {
    const n = new GroupNamer();
    n.add('site\0dc-1', 'site_dc_1', false);
    n.add('site\0dc_1', 'site_dc_1', true);
    n.add('site\0DC 1', 'site_dc_1', false);
    const out = n.resolve();
    expect(out.get('site\0dc_1')).toBe('site_dc_1');
    expect(new Set(out.values()).size).toBe(3);
    // the losers in key order: "DC 1" < "dc-1"
    expect(out.get('site\0DC 1')).toBe('site_dc_1_2');
    expect(out.get('site\0dc-1')).toBe('site_dc_1_3');
  });

  it('is independent of insertion order and never reuses a name a real group has', () => {
    const entries: [string, string, boolean][] = [
      ['a\0x-1', 'x_1', false],
      ['a\0x.1', 'x_1', false],
      ['b\0x_1_2', 'x_1_2', true],
      ['c\0all', 'all', true],
    ];
    const run = (list: typeof entries) => {
      const n = new GroupNamer();
      for (const [k, name, exact] of list) n.add(k, name, exact);
      return n.resolve();
    };
    const one = run(entries);
    const two = run([...entries].reverse());
    expect([...one.entries()].sort()).toEqual([...two.entries()].sort());
    expect(one.get('b\0x_1_2')).toBe('x_1_2');
    expect(new Set(one.values()).size).toBe(4);
    expect([...one.values()]).not.toContain('all');
    expect(one.get('c\0all')).toBe('all_2');
  });
});
