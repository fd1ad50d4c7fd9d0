import { describe, expect, it } from 'vitest';
import { Duration } from '../api/duration.js';
import { DURATION_PATTERN, isDuration, parseDuration } from './duration.js';

describe('the one duration grammar', () => {
  it('parses the short and long forms through ms', () => {
    expect(parseDuration('500ms')).toBe(500);
    expect(parseDuration('30s')).toBe(30_000);
    expect(parseDuration('10m')).toBe(600_000);
    expect(parseDuration('1.5h')).toBe(5_400_000);
    expect(parseDuration('7d')).toBe(7 * 86_400_000);
    expect(parseDuration('2w')).toBe(14 * 86_400_000);
    expect(parseDuration('2 hours')).toBe(7_200_000);
    expect(parseDuration(' 30 Seconds ')).toBe(30_000);
  });
  it('keeps what earlier configs accepted: a bare number is seconds, a year is 365 days', () => {
    expect(parseDuration('90')).toBe(90_000);
    expect(parseDuration('10y')).toBe(3650 * 86_400_000);
    expect(parseDuration('0s')).toBe(0);
  });
  it('refuses what is not a duration: negatives, junk, units it does not know, huge inputs', () => {
    for (const bad of ['', 'soon', '-1h', '1x', '1h30m', 'h', '1e3s', 'Infinity', '1'.repeat(65) + 's', '10 parsecs']) {
      expect(() => parseDuration(bad), bad).toThrow(/not a duration/);
      expect(isDuration(bad), bad).toBe(false);
    }
  });
  it('is the same grammar in the API schemas (zod) and in parseDuration', () => {
    for (const t of ['500ms', '30s', '10m', '1.5h', '7d', '10y', '90', '2 hours', 'soon', '-1h', '1h30m', '']) {
      expect(Duration.safeParse(t).success, t).toBe(isDuration(t));
      expect(DURATION_PATTERN.test(t.trim()), t).toBe(isDuration(t));
    }
  });
});

describe('one grammar everywhere', () => {
  it('no other duration regex or unit table in shared/, central/, agent/', async () => {
    const { readdirSync, readFileSync, statSync } = await import('node:fs');
    const { join } = await import('node:path');
    const offenders: string[] = [];
    const walk = (dir: string): void => {
      for (const name of readdirSync(dir)) {
        const p = join(dir, name);
        if (statSync(p).isDirectory()) walk(p);
        else if (p.endsWith('.ts') && !p.endsWith('.test.ts') && p !== join('shared', 'util', 'duration.ts')) {
          if (/\(ms\|s\|m\|h|\(s\|m\|h\|d\)|ms: 1, s: 1000/.test(readFileSync(p, 'utf8'))) offenders.push(p);
        }
      }
    };
    for (const top of ['shared', 'central', 'agent']) walk(top);
    expect(offenders).toEqual([]);
  });
});
