/**
 * IPv4 and MAC helpers. Pure functions with no node-only imports: `config.ts` (shared with the central and
 * the site's desired state) depends on them.
 */

const IPV4_RE = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
const MAC_RE = /^[0-9a-f]{2}([:-]?[0-9a-f]{2}){5}$/i;

export function isIpv4(s: string): boolean {
  return IPV4_RE.test(s);
}

/** Dotted quad → unsigned 32-bit integer. Throws on malformed input. */
export function ipToInt(s: string): number {
  if (!isIpv4(s)) throw new Error(`not an IPv4 address: ${s}`);
  const p = s.split('.').map(Number);
  return ((p[0]! << 24) >>> 0) + (p[1]! << 16) + (p[2]! << 8) + p[3]!;
}

export function intToIp(n: number): string {
  return [(n >>> 24) & 255, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

export interface Cidr {
  network: number;
  prefix: number;
  mask: number;
}

export function parseCidr(s: string): Cidr {
  const m = /^([^/]+)\/(\d{1,2})$/.exec(s);
  if (!m) throw new Error(`not a CIDR: ${s}`);
  const prefix = Number(m[2]);
  if (prefix > 32) throw new Error(`bad prefix in ${s}`);
  const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  return { network: (ipToInt(m[1]!) & mask) >>> 0, prefix, mask };
}

export function inCidr(ip: string | number, cidr: string | Cidr): boolean {
  const c = typeof cidr === 'string' ? parseCidr(cidr) : cidr;
  const n = typeof ip === 'string' ? ipToInt(ip) : ip;
  return ((n & c.mask) >>> 0) === c.network;
}

export function maskOf(cidr: string | Cidr): string {
  return intToIp((typeof cidr === 'string' ? parseCidr(cidr) : cidr).mask);
}

export function broadcastOf(cidr: string | Cidr): string {
  const c = typeof cidr === 'string' ? parseCidr(cidr) : cidr;
  return intToIp((c.network | (~c.mask >>> 0)) >>> 0);
}

export function isMac(s: string): boolean {
  return MAC_RE.test(s);
}

/** Canonical MAC form: lower case, colon separated (`52:54:00:00:00:01`). */
export function normalizeMac(s: string): string {
  if (!isMac(s)) throw new Error(`not a MAC address: ${s}`);
  const hex = s.replace(/[:-]/g, '').toLowerCase();
  return hex.match(/../g)!.join(':');
}
