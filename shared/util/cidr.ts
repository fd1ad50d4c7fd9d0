import ipaddr from 'ipaddr.js';

export type IpFamily = 'ipv4' | 'ipv6';

/** An IPv4 address only in its four-part decimal form (ipaddr.js also takes `1.2.3`, `0x7f.1` …). */
function strictAddress(text: string): boolean {
  return text.includes(':') ? ipaddr.IPv6.isValid(text) : ipaddr.IPv4.isValidFourPartDecimal(text);
}

/**
 * A CIDR in its one stored form (ipaddr.js): host bits cleared, the address in its canonical text
 * (`198.18.0.0/24`, `2001:db8::/32`). `family` restricts it (DHCPv4 subnets are IPv4). Throws on junk.
 */
export function normalizeCidr(text: string, family?: IpFamily): string {
  const t = String(text).trim();
  if (t.length > 64) throw new Error('not a CIDR: too long');
  let parsed: [ipaddr.IPv4 | ipaddr.IPv6, number];
  try {
    if (!strictAddress(t.slice(0, t.indexOf('/')))) throw new Error('not an address');
    parsed = ipaddr.parseCIDR(t);
  } catch {
    throw new Error(`not a CIDR: ${t} (expected a.b.c.d/n or an IPv6 prefix like 2001:db8::/32)`);
  }
  const [addr, prefix] = parsed;
  if (family && addr.kind() !== family) throw new Error(`not an ${family === 'ipv4' ? 'IPv4' : 'IPv6'} CIDR: ${t}`);
  const net = addr.kind() === 'ipv4' ? ipaddr.IPv4.networkAddressFromCIDR(t) : ipaddr.IPv6.networkAddressFromCIDR(t);
  return `${net.toString()}/${prefix}`;
}

/** An interface address as machines report it: an IPv4 or IPv6 address, optionally with /prefix (host bits kept: it is data). */
export function isInterfaceAddress(text: string): boolean {
  if (typeof text !== 'string' || text.length > 64) return false;
  try {
    const slash = text.indexOf('/');
    if (!strictAddress(slash < 0 ? text : text.slice(0, slash))) return false;
    if (slash >= 0) ipaddr.parseCIDR(text);
    return /^[0-9A-Fa-f:.]+(\/\d{1,3})?$/.test(text);
  } catch {
    return false;
  }
}
