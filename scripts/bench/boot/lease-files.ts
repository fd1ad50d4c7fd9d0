/**
 * Reads the servers' own lease databases after a bench run, so that failures and duplicate addresses are
 * counted from what each server stored, not only from what the load generator saw:
 *   - the agent's lease journal (JSON lines of agent/dhcp/leases.ts's LeaseRecord),
 *   - Kea's memfile (CSV: address,hwaddr,client_id,valid_lifetime,expire,subnet_id,…,state,…; state 0 = bound).
 * Both are append-only logs of every change; a bench run starts from an empty database and never lets a lease
 * expire, so an address bound to two different MACs at any point of the run is a duplicate.
 */

export interface BoundLease {
  address: string;
  mac: string;
}

export interface LeaseAudit {
  /** Distinct MACs holding a bound lease at the end. */
  boundMacs: number;
  /** Distinct addresses bound at the end. */
  boundAddresses: number;
  /** Addresses bound to more than one MAC during the run. */
  duplicates: string[];
  /** MACs bound to more than one address at the end. */
  macsWithSeveral: number;
}

/** Bound records (in file order) of an agent lease journal. Torn or foreign lines are skipped. */
export function agentBound(text: string): { address: string; mac: string; state: string }[] {
  const out: { address: string; mac: string; state: string }[] = [];
  for (const line of text.split('\n')) {
    if (!line) continue;
    try {
      const r = JSON.parse(line) as { address?: unknown; mac?: unknown; state?: unknown };
      if (typeof r.address === 'string' && typeof r.mac === 'string' && typeof r.state === 'string') out.push({ address: r.address, mac: r.mac.toLowerCase(), state: r.state });
    } catch {
      /* a torn last line */
    }
  }
  return out;
}

/** Records (in file order) of a Kea 2.x memfile lease CSV, state 0 mapped to 'bound'. */
export function keaBound(text: string): { address: string; mac: string; state: string }[] {
  const lines = text.split('\n').filter(Boolean);
  if (lines.length === 0) return [];
  const head = lines[0]!.split(',');
  const ia = head.indexOf('address');
  const ih = head.indexOf('hwaddr');
  const is = head.indexOf('state');
  const iv = head.indexOf('valid_lifetime');
  if (ia < 0 || ih < 0 || is < 0) throw new Error(`not a Kea lease file header: ${lines[0]}`);
  return lines.slice(1).map((l) => {
    const f = l.split(',');
    // A lease with valid_lifetime 0 is Kea deleting it (a release or decline).
    const bound = f[is] === '0' && (iv < 0 || f[iv] !== '0');
    return { address: f[ia]!, mac: f[ih]!.toLowerCase(), state: bound ? 'bound' : `state-${f[is]}` };
  });
}

/** Audits a run's records (either parser's output). */
export function auditLeases(records: { address: string; mac: string; state: string }[]): LeaseAudit {
  const holders = new Map<string, Set<string>>();
  const last = new Map<string, { mac: string; state: string }>();
  for (const r of records) {
    last.set(r.address, r);
    if (r.state !== 'bound') continue;
    let s = holders.get(r.address);
    if (!s) holders.set(r.address, (s = new Set()));
    s.add(r.mac);
  }
  const byMac = new Map<string, number>();
  let boundAddresses = 0;
  for (const r of last.values()) {
    if (r.state !== 'bound') continue;
    boundAddresses++;
    byMac.set(r.mac, (byMac.get(r.mac) ?? 0) + 1);
  }
  return {
    boundMacs: byMac.size,
    boundAddresses,
    duplicates: [...holders].filter(([, s]) => s.size > 1).map(([a]) => a),
    macsWithSeveral: [...byMac.values()].filter((n) => n > 1).length,
  };
}
