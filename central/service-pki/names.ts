import { isIP } from 'node:net';
import type { Machine } from '../../shared/api/resources.js';

/** Addresses that never name a machine from outside it. */
const unusable = (a: string) => /^(127\.|169\.254\.|0\.0\.0\.0$)/.test(a) || /^(::1?|fe80:.*)$/i.test(a);
const norm = (s: string) => (isIP(s) === 6 ? s.toLowerCase() : s.toLowerCase().replace(/\.$/, ''));

/**
 * The names a machine may have in a certificate: its inventory name, `<name>.<domain>` when the CA has a
 * domain, the operator's static address and every address its agent leased or saw and its OS reported.
 * A hostname the machine reports about itself is not enough (a machine could claim any name).
 */
export function knownNames(m: Pick<Machine, 'name' | 'address' | 'addresses'>, domain?: string): string[] {
  const names = [m.name, ...(domain ? [`${m.name}.${domain}`] : [])];
  const addrs = [...(m.address ? [m.address] : []), ...(m.addresses ?? []).map((a) => a.address)].filter((a) => isIP(a) && !unusable(a));
  return [...new Set([...names, ...addrs].map(norm))];
}

/** The requested names that are not known (empty: every one is). */
export function unknownNames(requested: string[], known: string[]): string[] {
  const k = new Set(known.map(norm));
  return requested.filter((r) => !k.has(norm(r)));
}
