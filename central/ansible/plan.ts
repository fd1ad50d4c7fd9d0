import type { Machine } from '../../shared/api/resources.js';
import { GLOBAL_PROFILE } from '../profiles/resources.js';
import { InventoryContext, type InventorySource, type Layer, type Params } from './context.js';
import { allHold, compileRules, keyedValues, readPath } from './rules.js';
import { GroupNamer, groupName, normalisePrefix, slugPart } from './sanitize.js';

/** Everything of a render but the serialisation: group membership, final group names, the hosts shown. */

export interface ViewOptions {
  /** Prefix for every generated group name (not `all`/`ungrouped`). */
  prefix?: string;
  /** Only machines of this site. */
  site?: string;
  /** Only hosts of this group (its final, rendered name). */
  group?: string;
}

/** Thrown for `?group=` naming a group the inventory does not have. */
export class UnknownGroupError extends Error {}

/** Kind order decides who keeps a clashing name: built-in groups before operator rules. */
export const KIND = { site: '0site', rack: '1rack', profile: '2profile', bootenv: '3bootenv', state: '4state', service: '5service', keyed: '6keyed', cond: '7cond' } as const;

export interface GroupAcc {
  key: string;
  hosts: string[];
  vars?: Params;
}

export interface Plan {
  ctx: InventoryContext;
  /** Machines in name order; `layers[i]` is what `machines[i]` inherits. */
  machines: Machine[];
  layers: Layer[];
  /** `mems[i]`: the service memberships of `machines[i]` as JSON (`{}` for most). */
  mems: string[];
  /** Final groups, sorted by name, already filtered to the selected hosts: [name, group, hosts]. */
  groups: [string, GroupAcc, string[]][];
  /** The hosts shown, or null for all. */
  selected: Set<string> | null;
  allVars: Params;
}

export function byString(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export function plan(src: InventorySource, opts: ViewOptions): Plan {
  const ctx = new InventoryContext(src);
  const gp = normalisePrefix(opts.prefix);
  const withPrefix = (n: string) => (gp ? gp + (n.startsWith('_') ? n.slice(1) : n) : n);
  const namer = new GroupNamer();
  const groups = new Map<string, GroupAcc>();
  const want = (key: string, kindPrefix: string, raw: string): GroupAcc => {
    let g = groups.get(key);
    if (!g) {
      g = { key, hosts: [] };
      groups.set(key, g);
      namer.add(key, withPrefix(groupName(kindPrefix, raw)), slugPart(raw) === raw);
    }
    return g;
  };
  const join = (g: GroupAcc, host: string) => {
    if (g.hosts[g.hosts.length - 1] !== host) g.hosts.push(host);
  };

  // Sites, profiles and services exist as groups even when empty: playbooks can name them, and their
  // names do not depend on which machines exist.
  for (const s of src.sites) {
    const g = want(`${KIND.site}\0${s.name}`, 'site', s.name);
    const vars = ctx.clean(s.params);
    if (Object.keys(vars).length > 0) g.vars = vars;
  }
  for (const p of src.profiles) {
    const g = want(`${KIND.profile}\0${p.name}`, 'profile', p.name);
    const vars = ctx.clean(p.params);
    if (Object.keys(vars).length > 0) g.vars = vars;
  }
  for (const svc of src.services) want(`${KIND.service}\0${svc.name}`, 'service', svc.name);

  const rules = compileRules(src.rules).map((r) => ({
    r,
    // A conditional group exists even when no host matches (its name is known from the rule).
    group: r.kind === 'condition' ? want(`${KIND.cond}\0${r.group}`, '', r.group) : undefined,
    byValue: new Map<string, GroupAcc>(),
  }));

  const machines = [...src.machines].sort((a, b) => byString(a.name, b.name));
  /** Machines that are service members (checked against the machines that exist). */
  const members = new Set<string>();
  const layers = new Array<Layer>(machines.length);
  const mems = new Array<string>(machines.length);
  // Group accumulators by raw value, per kind (no key string built per host).
  const siteG = new Map<string, GroupAcc>();
  const rackG = new Map<string, GroupAcc>();
  const profileG = new Map<string, GroupAcc>();
  const bootenvG = new Map<string, GroupAcc>();
  const stateG = new Map<string, GroupAcc>();
  const by = (cache: Map<string, GroupAcc>, kind: string, kindPrefix: string, raw: string) => {
    let g = cache.get(raw);
    if (!g) cache.set(raw, (g = want(`${kind}\0${raw}`, kindPrefix, raw)));
    return g;
  };

  for (let i = 0; i < machines.length; i++) {
    const m = machines[i]!;
    const mine = ctx.memberships.get(m.name);
    if (mine) members.add(m.name);
    mems[i] = mine ? JSON.stringify(mine) : '{}';
    const layer = ctx.layer(m);
    layers[i] = layer;
    by(siteG, KIND.site, 'site', m.site).hosts.push(m.name);
    if (m.rack !== undefined) by(rackG, KIND.rack, 'rack', m.rack).hosts.push(m.name);
    for (const p of m.profiles) join(by(profileG, KIND.profile, 'profile', p), m.name);
    by(bootenvG, KIND.bootenv, 'bootenv', m.bootenv).hosts.push(m.name);
    by(stateG, KIND.state, 'state', m.state).hosts.push(m.name);
    for (const { r, group, byValue } of rules) {
      if (r.kind === 'keyed') {
        for (const value of keyedValues(readPath(ctx, m, layer.params, r.path))) {
          let g = byValue.get(value);
          if (!g) byValue.set(value, (g = want(`${KIND.keyed}\0${r.prefix}\0${value}`, r.prefix, value)));
          join(g, m.name);
        }
      } else if (allHold(ctx, m, layer.params, r.when)) join(group!, m.name);
    }
  }
  // Service groups: machines with a passing member (deduplicated, in name order).
  for (const svc of src.services) {
    const g = groups.get(`${KIND.service}\0${svc.name}`)!;
    const hosts = new Set<string>();
    for (const mem of svc.members) if (mem.status === 'passing' && mem.machine && members.has(mem.machine)) hosts.add(mem.machine);
    g.hosts = [...hosts].sort(byString);
  }

  const names = namer.resolve();

  // Which hosts this view shows.
  let selected: Set<string> | null = null;
  if (opts.site !== undefined) selected = new Set(machines.filter((m) => m.site === opts.site).map((m) => m.name));
  if (opts.group !== undefined && opts.group !== 'all') {
    let found: GroupAcc | undefined;
    for (const g of groups.values()) if (names.get(g.key) === opts.group) found = g;
    if (!found) throw new UnknownGroupError(`no group "${opts.group}" in the inventory`);
    const inGroup = new Set(found.hosts);
    selected = selected ? new Set([...selected].filter((h) => inGroup.has(h))) : inGroup;
  }

  const out: [string, GroupAcc, string[]][] = [];
  for (const g of groups.values()) {
    const hosts = selected ? g.hosts.filter((h) => selected!.has(h)) : g.hosts;
    if (selected && hosts.length === 0) continue;
    out.push([names.get(g.key)!, g, hosts]);
  }
  out.sort((a, b) => byString(a[0], b[0]));
  const allVars: Params = { ...ctx.clean(ctx.profiles.get(GLOBAL_PROFILE)?.params), underlay_service_endpoints: ctx.endpoints };
  if (ctx.serviceCas) allVars.underlay_service_cas = ctx.serviceCas;
  return { ctx, machines, layers, mems, groups: out, selected, allVars };
}
