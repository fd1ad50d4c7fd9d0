import { InvalidError } from '../errors/domain-errors.js';

/** Machine fields a selector may name (`profile` matches any of the machine's profiles). */
export const SELECTOR_KEYS = ['site', 'rack', 'state', 'profile', 'bootenv', 'name'] as const;
export type SelectorKey = (typeof SELECTOR_KEYS)[number];
export type Selector = Partial<Record<SelectorKey, string>>;

/** Parses `rack=r1,site=dc1` (at least one pair, each key once); throws InvalidError naming the bad part. */
export function parseSelector(text: string): Selector {
  const out: Selector = {};
  if (text.length > 512) throw new InvalidError('a selector is at most 512 characters', [{ path: 'selector', message: 'too long' }]);
  for (const part of text.split(',')) {
    const m = /^\s*([a-z]+)\s*=\s*([A-Za-z0-9][A-Za-z0-9._-]{0,62})\s*$/.exec(part);
    if (!m) throw new InvalidError(`selector part "${part.slice(0, 80)}" is not key=value`, [{ path: 'selector', message: 'use key=value,…' }]);
    const key = m[1] as SelectorKey;
    if (!SELECTOR_KEYS.includes(key)) throw new InvalidError(`selector key "${key}" is not one of ${SELECTOR_KEYS.join(', ')}`, [{ path: 'selector', message: 'unknown key' }]);
    if (out[key] !== undefined) throw new InvalidError(`selector names "${key}" twice`, [{ path: 'selector', message: 'duplicate key' }]);
    out[key] = m[2];
  }
  return out;
}

/** Whether a machine matches every pair of the selector. */
export function matchesSelector(sel: Selector, m: { name: string; site: string; rack?: string; state?: string; bootenv?: string; profiles?: string[] }): boolean {
  for (const [k, v] of Object.entries(sel) as [SelectorKey, string][]) {
    if (k === 'profile' ? !(m.profiles ?? []).includes(v) : m[k] !== v) return false;
  }
  return true;
}
