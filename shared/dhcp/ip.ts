/**
 * IPv4 and MAC helpers. Pure functions with no node-only imports: `config.ts` (shared with the central and
 * the site's desired state) depends on them.
 */

const IPV4_RE = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
const MAC_RE = /^[0-9a-f]{2}([:-]?[0-9a-f]{2}){5}$/i;

export function isIpv4(s: string): boolean {
  return IPV4_RE.test(s);
}

export interface Cidr {
  network: number;
  prefix: number;
  mask: number;
}

/**
 * Dotted quad → unsigned 32-bit integer; accepts exactly what isIpv4 accepts. Hand-rolled (no regular
 * expression, no arrays): the DHCP server calls it several times per packet (scripts/bench/boot).
 */
export function ipToInt(s: string): number {
  let n = 0;
  let part = 0;
  let digits = 0;
  let dots = 0;
  let lead = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 46) {
      if (digits === 0 || dots === 3) throw new Error(`not an IPv4 address: ${s}`);
      n = n * 256 + part;
      part = 0;
      digits = 0;
      dots++;
    } else if (c >= 48 && c <= 57) {
      if (digits === 0) lead = c;
      else if (lead === 48) throw new Error(`not an IPv4 address: ${s}`); // leading zero
      part = part * 10 + (c - 48);
      if (++digits > 3 || part > 255) throw new Error(`not an IPv4 address: ${s}`);
    } else {
      throw new Error(`not an IPv4 address: ${s}`);
    }
  }
  if (dots !== 3 || digits === 0) throw new Error(`not an IPv4 address: ${s}`);
  return n * 256 + part;
}

export function intToIp(n: number): string {
  return `${(n >>> 24) & 255}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

/** Parsed CIDRs, memoised: a server sees the same few subnet strings on every packet. */
const cidrs = new Map<string, Readonly<Cidr>>();

export function parseCidr(s: string): Readonly<Cidr> {
  const hit = cidrs.get(s);
  if (hit) return hit;
  const slash = s.indexOf('/');
  const pre = s.slice(slash + 1);
  if (slash <= 0 || !/^\d{1,2}$/.test(pre)) throw new Error(`not a CIDR: ${s}`);
  const prefix = Number(pre);
  if (prefix > 32) throw new Error(`bad prefix in ${s}`);
  const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  const c = Object.freeze({ network: (ipToInt(s.slice(0, slash)) & mask) >>> 0, prefix, mask });
  if (cidrs.size >= 4096) cidrs.clear();
  cidrs.set(s, c);
  return c;
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
