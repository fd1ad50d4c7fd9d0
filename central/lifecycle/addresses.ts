import type { HardwareFacts } from '../../shared/api/facts.js';
import type { AddressSource, MachineAddress } from '../../shared/api/lifecycle.js';
import type { OsReport } from '../../shared/api/os-report.js';

/** Which source wins for `ansible_host`: what the installed OS says, then the agent's lease, then discovery. */
const PRIORITY: AddressSource[] = ['os', 'lease', 'discovery'];

/** The machine's addresses with every entry of `source` replaced by `incoming` (order kept, duplicates dropped). */
export function replaceSource(current: MachineAddress[] | undefined, source: AddressSource, incoming: Omit<MachineAddress, 'source' | 'at'>[], at: string): MachineAddress[] {
  const seen = new Set<string>();
  const fresh = incoming.filter((a) => !seen.has(a.address) && seen.add(a.address)).map((a) => ({ ...a, source, at }));
  return [...(current ?? []).filter((a) => a.source !== source), ...fresh];
}

/** The machine's addresses without `address` of `source` (a lease released or expired). */
export function removeAddress(current: MachineAddress[] | undefined, source: AddressSource, address: string): MachineAddress[] {
  return (current ?? []).filter((a) => !(a.source === source && a.address === address));
}

/** Same addresses, ignoring when they were seen (so an unchanged report writes nothing). */
export function sameAddresses(a: MachineAddress[] | undefined, b: MachineAddress[] | undefined): boolean {
  const key = (l: MachineAddress[] | undefined) => JSON.stringify((l ?? []).map(({ at: _at, ...rest }) => rest));
  return key(a) === key(b);
}

/** Loopback, link-local and unspecified addresses never reach a host from outside it. */
function usable(address: string): boolean {
  const a = address.toLowerCase();
  return !(a.startsWith('127.') || a === '::1' || a.startsWith('fe80:') || a.startsWith('169.254.') || a === '0.0.0.0' || a === '::');
}

/**
 * The address Ansible should use: the installed OS's first, then the agent's lease, then the discovery
 * report; IPv4 before IPv6 within a source; the operator's static `address` field last.
 */
export function bestAddress(m: { addresses?: MachineAddress[]; address?: string }): string | undefined {
  // Allocation-free: the inventory asks this for every host of a render.
  const list = m.addresses;
  if (list === undefined || list.length === 0) return m.address;
  for (const source of PRIORITY) {
    let first: string | undefined;
    for (const a of list) {
      if (a.source !== source || !usable(a.address)) continue;
      if (!a.address.includes(':')) return a.address;
      first ??= a.address;
    }
    if (first !== undefined) return first;
  }
  return m.address;
}

const withoutPrefix = (a: string) => a.replace(/\/\d{1,3}$/, '');

/** Addresses from a discovery report: every interface with the addresses it had (proxy mode: the site's DHCP leased them). */
export function discoveryAddresses(facts: HardwareFacts): Omit<MachineAddress, 'source' | 'at'>[] {
  return (facts.nics ?? []).flatMap((n) =>
    (n.addresses ?? []).map((a) => ({ address: withoutPrefix(a), ...(n.name ? { interface: n.name } : {}), ...(n.mac ? { mac: n.mac.toLowerCase() } : {}) })),
  );
}

/** Addresses the installed OS reported. */
export function osAddresses(r: OsReport): Omit<MachineAddress, 'source' | 'at'>[] {
  return r.addresses.map((a) => ({ address: withoutPrefix(a.address), interface: a.interface, ...(a.mac ? { mac: a.mac } : {}) }));
}
