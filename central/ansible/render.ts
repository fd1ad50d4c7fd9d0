import { createHash } from 'node:crypto';
import type { Condition, GroupRule, InventoryDocument, InventoryEndpoint, InventoryGroup } from '../../shared/api/inventory.js';
import type { Machine, ParamDef, Profile, Site } from '../../shared/api/resources.js';
import type { Service } from '../../shared/api/services.js';
import { GroupNamer, groupName, normalisePrefix, slugPart } from './sanitize.js';

/**
 * Renders Ansible's `--list` document from the inventory. Pure: the route feeds it the store's
 * collections, the benchmark a synthetic data set. Secret params (ParamDef `secret: true`) are dropped
 * at the first step (`clean`) and never reach hostvars, group vars, keyed groups or conditions.
 */

export interface InventorySource {
  sites: readonly Site[];
  profiles: readonly Profile[];
  params: readonly ParamDef[];
  machines: readonly Machine[];
  rules: readonly GroupRule[];
  services: readonly Service[];
}

/**
 * Serialised hostvars kept between renders, keyed by the machine document itself: store documents are
 * replaced on every write, never changed in place (the store's whole-document convention), so an
 * unchanged machine whose inherited params and service memberships serialise the same reuses its JSON.
 * Any change to which params are secret drops everything.
 */
export class HostFragmentCache {
  private map = new WeakMap<Machine, { base: string; mem: string; bytes: Buffer }>();
  private signature: string | null = null;
  /** The unfiltered view's hostvars in runs of `blockSize` hosts: bytes and digest, reused while every fragment in the run is. */
  blocks: { frags: Buffer[]; bytes: Buffer; digest: Buffer }[] = [];
  hits = 0;
  misses = 0;

  constructor(readonly blockSize = 256) {}

  /** Called once per render with the current secret signature. */
  begin(signature: string): void {
    if (signature !== this.signature) {
      this.map = new WeakMap();
      this.blocks = [];
      this.signature = signature;
    }
  }

  get(m: Machine, base: string, mem: string): Buffer | undefined {
    const e = this.map.get(m);
    if (e && e.base === base && e.mem === mem) {
      this.hits++;
      return e.bytes;
    }
    this.misses++;
    return undefined;
  }

  set(m: Machine, base: string, mem: string, bytes: Buffer): void {
    this.map.set(m, { base, mem, bytes });
  }
}

export interface RenderOptions {
  /** Prefix for every generated group name (not `all`/`ungrouped`). */
  prefix?: string;
  /** Only machines of this site. */
  site?: string;
  /** Only hosts of this group (its final, rendered name). */
  group?: string;
  /** Reuse serialised hostvars of unchanged machines from earlier renders (the route keeps one). */
  fragments?: HostFragmentCache;
}

export const GLOBAL_PROFILE = 'global';
/** Hostvars the inventory sets itself; params with this prefix are not shown. */
export const RESERVED_PREFIX = 'underlay_';

/**
 * A value stored sealed to agents (`{ "$sealed": … }`, central/secrets/seal.ts). Its param is secret by
 * definition; this also hides it should the definition later stop saying so.
 */
function isSealedValue(v: unknown): boolean {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && Object.hasOwn(v, '$sealed');
}

/** Thrown for `?group=` naming a group the inventory does not have. */
export class UnknownGroupError extends Error {}

type Params = Record<string, unknown>;

/** Kind order decides who keeps a clashing name: built-in groups before operator rules. */
const KIND = { site: '0site', rack: '1rack', profile: '2profile', bootenv: '3bootenv', state: '4state', service: '5service', keyed: '6keyed', cond: '7cond' } as const;

interface CompiledRule {
  rule: GroupRule;
  /** keyed: the path; condition: the conditions. */
  path?: string[];
  prefix?: string;
  when?: { path: string[]; op: Condition['op']; value: unknown; num?: number }[];
  /** Per render: keyed groups by value, or the conditional group. */
  groups?: Map<string, GroupAcc>;
  group?: GroupAcc;
}

/** What hostvars and rule evaluation need, built once per render (or per `--host`). */
export class InventoryContext {
  readonly secret = new Set<string>();
  private readonly defaults: Params = {};
  readonly sites = new Map<string, Site>();
  readonly profiles = new Map<string, Profile>();
  private readonly cleaned = new WeakMap<object, Params>();
  private readonly bases = new Map<string, Params>();
  /** machine name → service name → its own endpoints in that service. */
  readonly memberships = new Map<string, Record<string, InventoryEndpoint[]>>();
  readonly endpoints: Record<string, InventoryEndpoint[]> = {};

  constructor(readonly src: InventorySource) {
    for (const d of src.params) {
      if (d.secret) this.secret.add(d.name);
      else if (d.default !== undefined) this.defaults[d.name] = d.default;
    }
    for (const s of src.sites) this.sites.set(s.name, s);
    for (const p of src.profiles) this.profiles.set(p.name, p);
    for (const svc of src.services) {
      const list: InventoryEndpoint[] = [];
      for (const m of svc.members) {
        const ep: InventoryEndpoint = { id: m.id, ...(m.machine ? { machine: m.machine } : {}), address: m.address, port: m.port, status: m.status };
        list.push(ep);
        if (m.machine) {
          let mine = this.memberships.get(m.machine);
          if (!mine) this.memberships.set(m.machine, (mine = {}));
          (mine[svc.name] ??= []).push({ id: m.id, address: m.address, port: m.port, status: m.status });
        }
      }
      this.endpoints[svc.name] = list;
    }
  }

  /** A param layer without its secret params and reserved names (cached per object). */
  clean(values: Params | undefined): Params {
    if (!values) return {};
    let c = this.cleaned.get(values);
    if (c) return c;
    c = {};
    for (const k in values) {
      const v = values[k];
      if (v !== undefined && !this.secret.has(k) && !k.startsWith(RESERVED_PREFIX) && !isSealedValue(v)) c[k] = v;
    }
    this.cleaned.set(values, c);
    return c;
  }

  private readonly basesByProfiles = new WeakMap<readonly string[], Map<string, Params>>();

  /** The inherited part of a machine's params: profiles in order → site → global profile → default (cached per site+profiles). */
  base(m: Machine): Params {
    // Fast path: the same profiles array (documents are replaced, not mutated) at the same site.
    let bySite = this.basesByProfiles.get(m.profiles);
    const hit = bySite?.get(m.site);
    if (hit) return hit;
    const key = m.profiles.length === 0 ? m.site : `${m.site}\0${m.profiles.join('\0')}`;
    let base = this.bases.get(key);
    if (!base) {
      base = Object.assign({}, this.defaults, this.clean(this.profiles.get(GLOBAL_PROFILE)?.params), this.clean(this.sites.get(m.site)?.params));
      for (let i = m.profiles.length - 1; i >= 0; i--) Object.assign(base, this.clean(this.profiles.get(m.profiles[i]!)?.params));
      this.bases.set(key, base);
    }
    if (!bySite) this.basesByProfiles.set(m.profiles, (bySite = new Map()));
    bySite.set(m.site, base);
    return base;
  }

  /** One resolved, non-secret param (without building the merged set). */
  param(m: Machine, base: Params, name: string): unknown {
    if (this.secret.has(name) || name.startsWith(RESERVED_PREFIX)) return undefined;
    const own = m.params[name];
    if (own !== undefined && Object.hasOwn(m.params, name)) return isSealedValue(own) ? undefined : own;
    return base[name];
  }

  /** Non-secret params of a machine: machine → profiles in order → site → global profile → default. */
  params(m: Machine, base: Params = this.base(m)): Params {
    const own = this.clean(m.params);
    let empty = true;
    for (const _k in own) {
      empty = false;
      break;
    }
    return empty ? base : Object.assign({}, base, own);
  }

  /**
   * A host's variables. Order: `ansible_host` (from the address, unless a param sets it), the params,
   * then the `underlay_*` facts (a reserved prefix: params named `underlay_*` are dropped).
   */
  hostVars(m: Machine, params: Params = this.params(m)): Record<string, unknown> {
    const hv: Record<string, unknown> = {};
    if (m.address && !Object.hasOwn(params, 'ansible_host')) hv.ansible_host = m.address;
    Object.assign(hv, params);
    hv.underlay_site = m.site;
    if (m.rack !== undefined) hv.underlay_rack = m.rack;
    hv.underlay_macs = m.macs;
    hv.underlay_boot_state = m.bootState;
    hv.underlay_bootenv = m.bootenv;
    hv.underlay_profiles = m.profiles;
    hv.underlay_facts = m.facts;
    hv.underlay_services = this.memberships.get(m.name) ?? {};
    return hv;
  }

  private readonly baseJsons = new WeakMap<Params, string>();

  /** The inherited params as JSON members (no braces), once per site+profiles combination. */
  baseJson(base: Params): string {
    let j = this.baseJsons.get(base);
    if (j === undefined) {
      j = JSON.stringify(base).slice(1, -1);
      this.baseJsons.set(base, j);
    }
    return j;
  }

  membershipJson(machine: string): string {
    const mine = this.memberships.get(machine);
    return mine ? JSON.stringify(mine) : '{}';
  }

  /** A signature of what makes params secret or hidden: a change invalidates cached host fragments. */
  secretSignature(): string {
    return [...this.secret].sort().join('\0');
  }

  /**
   * `JSON.stringify(hostVars(m))`, byte for byte, built from cached pieces: the inherited params are
   * serialised once per site+profiles combination, and no merged object is built when the machine's
   * own params do not override inherited ones.
   */
  hostVarsJson(m: Machine, base: Params = this.base(m), baseJson = this.baseJson(base), memJson = this.membershipJson(m.name)): string {
    const own = this.clean(m.params);
    let paramsJson = baseJson;
    let hasAnsibleHost = Object.hasOwn(base, 'ansible_host');
    let overlap = false;
    let anyOwn = false;
    for (const k in own) {
      anyOwn = true;
      if (Object.hasOwn(base, k)) overlap = true;
      if (k === 'ansible_host') hasAnsibleHost = true;
    }
    if (overlap) paramsJson = JSON.stringify(Object.assign({}, base, own)).slice(1, -1);
    else if (anyOwn) {
      const ownJson = JSON.stringify(own).slice(1, -1);
      paramsJson = baseJson ? `${baseJson},${ownJson}` : ownJson;
    }
    let out = '{';
    if (m.address && !hasAnsibleHost) out += `"ansible_host":${JSON.stringify(m.address)}${paramsJson ? ',' : ''}`;
    if (paramsJson) out += paramsJson;
    if (out.length > 1) out += ',';
    out += `"underlay_site":${JSON.stringify(m.site)}`;
    if (m.rack !== undefined) out += `,"underlay_rack":${JSON.stringify(m.rack)}`;
    out += `,"underlay_macs":${JSON.stringify(m.macs)},"underlay_boot_state":${JSON.stringify(m.bootState)},"underlay_bootenv":${JSON.stringify(m.bootenv)},"underlay_profiles":${JSON.stringify(m.profiles)},"underlay_facts":${JSON.stringify(m.facts)},"underlay_services":${memJson}}`;
    return out;
  }
}

function compileRules(rules: readonly GroupRule[]): CompiledRule[] {
  return [...rules]
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    .map((rule) => {
      if (rule.kind === 'keyed') return { rule, path: rule.key.split('.'), prefix: rule.prefix ?? rule.name, groups: new Map<string, GroupAcc>() };
      const list = Array.isArray(rule.when) ? rule.when : [rule.when];
      return { rule, when: list.map((c) => ({ path: c.path.split('.'), op: c.op, value: c.value, num: num(c.value) })) };
    });
}

function num(v: unknown): number | undefined {
  if (typeof v === 'number') return Number.isFinite(v) ? v : undefined;
  if (typeof v === 'string' && v.trim() !== '') {
    const n = Number(v);
    return Number.isFinite(n) ? n : undefined;
  }
  return undefined;
}

/** Reads a rule path off a machine: `facts.…`, `params.…` (non-secret resolved params) or a machine field. */
export function readPath(ctx: InventoryContext, m: Machine, base: Params, path: readonly string[]): unknown {
  let v: unknown;
  let i = 1;
  if (path[0] === 'facts') v = m.facts;
  else if (path[0] === 'params') {
    if (path.length < 2) return undefined;
    v = ctx.param(m, base, path[1]!);
    i = 2;
  } else v = (m as Record<string, unknown>)[path[0]!];
  for (; i < path.length; i++) {
    if (v === null || typeof v !== 'object') return undefined;
    const seg = path[i]!;
    v = Object.hasOwn(v, seg) ? (v as Record<string, unknown>)[seg] : undefined;
  }
  return v;
}

function same(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (a === undefined || b === undefined || a === null || b === null) return false;
  if (typeof a !== 'object' && typeof b !== 'object') return String(a) === String(b);
  return JSON.stringify(a) === JSON.stringify(b);
}

export function holds(v: unknown, c: { op: Condition['op']; value: unknown; num?: number }): boolean {
  switch (c.op) {
    case 'exists':
      return (v !== undefined && v !== null) === (c.value === undefined ? true : c.value === true);
    case 'eq':
      return same(v, c.value);
    case 'ne':
      return !same(v, c.value);
    case 'gt':
    case 'gte':
    case 'lt':
    case 'lte': {
      const x = num(v);
      const y = c.num ?? num(c.value);
      if (x === undefined || y === undefined) return false;
      return c.op === 'gt' ? x > y : c.op === 'gte' ? x >= y : c.op === 'lt' ? x < y : x <= y;
    }
    case 'in':
      if (!Array.isArray(c.value)) return false;
      if (Array.isArray(v)) return v.some((e) => (c.value as unknown[]).some((w) => same(e, w)));
      return (c.value as unknown[]).some((w) => same(v, w));
    case 'contains':
      if (Array.isArray(v)) return v.some((e) => same(e, c.value));
      if (typeof v === 'string') return v.includes(String(c.value));
      return false;
  }
}

/** The values a keyed rule makes groups from: scalars, each scalar of an array, `key_value` of an object. */
function keyedValues(v: unknown): string[] {
  if (v === undefined || v === null || v === '') return [];
  if (Array.isArray(v)) return v.filter((e) => e !== null && e !== undefined && e !== '' && typeof e !== 'object').map(String);
  if (typeof v === 'object') {
    return Object.entries(v as Record<string, unknown>)
      .filter(([, e]) => e !== null && e !== undefined && typeof e !== 'object')
      .map(([k, e]) => `${k}_${String(e)}`);
  }
  return [String(v)];
}

interface GroupAcc {
  key: string;
  hosts: string[];
  vars?: Params;
}

function byString(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

interface Plan {
  ctx: InventoryContext;
  machines: Machine[];
  bases: Params[];
  /** Final groups, sorted by name, already filtered to the selected hosts. */
  groups: [string, GroupAcc, string[]][];
  selected: Set<string> | null;
  allVars: Params;
}

/** Everything but the serialisation: group membership, names, the selected hosts. */
function plan(src: InventorySource, opts: RenderOptions): Plan {
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

  const rules = compileRules(src.rules);
  // A conditional group exists even when no host matches (its name is known from the rule).
  for (const r of rules) if (r.when) r.group = want(`${KIND.cond}\0${(r.rule as { group: string }).group}`, '', (r.rule as { group: string }).group);

  const machines = [...src.machines].sort((a, b) => byString(a.name, b.name));
  const known = new Set<string>();
  const bases = new Array<Params>(machines.length);
  // Per-render caches of group accumulators by raw value (avoid building keys per host).
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
    known.add(m.name);
    const base = ctx.base(m);
    bases[i] = base;
    by(siteG, KIND.site, 'site', m.site).hosts.push(m.name);
    if (m.rack !== undefined) by(rackG, KIND.rack, 'rack', m.rack).hosts.push(m.name);
    for (const p of m.profiles) join(by(profileG, KIND.profile, 'profile', p), m.name);
    by(bootenvG, KIND.bootenv, 'bootenv', m.bootenv).hosts.push(m.name);
    by(stateG, KIND.state, 'state', m.bootState).hosts.push(m.name);
    for (const r of rules) {
      if (r.path) {
        for (const value of keyedValues(readPath(ctx, m, base, r.path))) {
          let g = r.groups!.get(value);
          if (!g) r.groups!.set(value, (g = want(`${KIND.keyed}\0${r.prefix}\0${value}`, r.prefix!, value)));
          join(g, m.name);
        }
      } else if (r.when!.every((c) => holds(readPath(ctx, m, base, c.path), c))) join(r.group!, m.name);
    }
  }
  // Service groups: machines with a passing member (deduplicated, in name order).
  for (const svc of src.services) {
    const g = groups.get(`${KIND.service}\0${svc.name}`)!;
    const hosts = new Set<string>();
    for (const mem of svc.members) if (mem.status === 'passing' && mem.machine && known.has(mem.machine)) hosts.add(mem.machine);
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
  return { ctx, machines, bases, groups: out, selected, allVars };
}

/** Renders the `--list` document as objects. Deterministic: same inventory and options → same document. */
export function renderInventory(src: InventorySource, opts: RenderOptions = {}): InventoryDocument {
  const p = plan(src, opts);
  const doc: Record<string, unknown> = {
    all: { children: ['ungrouped', ...p.groups.map(([n]) => n)], vars: p.allVars },
    ungrouped: { hosts: [] },
  };
  for (const [n, g, hosts] of p.groups) doc[n] = g.vars ? { hosts, vars: g.vars } : { hosts };
  const hostvars: Record<string, Record<string, unknown>> = {};
  for (let i = 0; i < p.machines.length; i++) {
    const m = p.machines[i]!;
    if (p.selected && !p.selected.has(m.name)) continue;
    hostvars[m.name] = p.ctx.hostVars(m, p.ctx.params(m, p.bases[i]));
  }
  doc._meta = { hostvars };
  return doc as InventoryDocument;
}

/** The `--host NAME` variables of one machine, or undefined. */
export function renderHostVars(src: InventorySource, name: string): Record<string, unknown> | undefined {
  const m = src.machines.find((x) => x.name === name);
  if (!m) return undefined;
  return new InventoryContext(src).hostVars(m);
}

/** A rendered document: UTF-8 chunks (sent as they are, no final copy), its length and strong ETag. */
export class RenderedBody {
  constructor(
    readonly chunks: Buffer[],
    readonly etag: string,
    readonly hosts: number,
  ) {
    this.length = chunks.reduce((n, c) => n + c.length, 0);
  }
  readonly length: number;
  /** The whole document in one buffer (a copy; for tests and small documents). */
  get bytes(): Buffer {
    return Buffer.concat(this.chunks, this.length);
  }
}

/**
 * Renders straight to JSON text, byte for byte `JSON.stringify(renderInventory(src, opts))`, without
 * building the hostvars objects; the ETag is a strong validator (sha256) over the exact bytes.
 */
export function renderInventoryBody(src: InventorySource, opts: RenderOptions = {}): RenderedBody {
  const p = plan(src, opts);
  // Built as UTF-8 chunks: each host is `,"name":{…}` (the first without its comma), cached per machine.
  let head = `{"all":${JSON.stringify({ children: ['ungrouped', ...p.groups.map(([n]) => n)], vars: p.allVars })},"ungrouped":{"hosts":[]}`;
  for (const [n, g, hosts] of p.groups) head += `,${JSON.stringify(n)}:{"hosts":${JSON.stringify(hosts)}${g.vars ? `,"vars":${JSON.stringify(g.vars)}` : ''}}`;
  const headBytes = Buffer.from(head + ',"_meta":{"hostvars":{', 'utf8');
  const tail = Buffer.from('}}}');
  const frags: Buffer[] = [];
  const cache = opts.fragments;
  cache?.begin(p.ctx.secretSignature());
  for (let i = 0; i < p.machines.length; i++) {
    const m = p.machines[i]!;
    if (p.selected && !p.selected.has(m.name)) continue;
    const base = p.bases[i]!;
    let frag: Buffer | undefined;
    if (cache) {
      const baseJson = p.ctx.baseJson(base);
      const memJson = p.ctx.membershipJson(m.name);
      frag = cache.get(m, baseJson, memJson);
      if (frag === undefined) cache.set(m, baseJson, memJson, (frag = Buffer.from(`,${JSON.stringify(m.name)}:${p.ctx.hostVarsJson(m, base, baseJson, memJson)}`, 'utf8')));
    } else frag = Buffer.from(`,${JSON.stringify(m.name)}:${p.ctx.hostVarsJson(m, base)}`, 'utf8');
    frags.push(frag);
  }
  const hosts = frags.length;
  if (!cache || p.selected) {
    if (hosts > 0) frags[0] = frags[0]!.subarray(1);
    const chunks = [headBytes, ...frags, tail];
    const h = createHash('sha256');
    for (const c of chunks) h.update(c);
    return new RenderedBody(chunks, `"${h.digest('base64url').slice(0, 32)}"`, hosts);
  }
  // The unfiltered view with a cache: hostvars in blocks whose bytes and sha256 are reused while all their
  // fragments are; the ETag is sha256 over the head, the block digests and the tail (still a strong
  // validator: any byte that changes changes a block digest or the head).
  const size = cache.blockSize;
  const prev = cache.blocks;
  const next: typeof prev = [];
  const etagHash = createHash('sha256').update(headBytes);
  const out: Buffer[] = [headBytes];
  for (let b = 0; b * size < hosts; b++) {
    const slice = frags.slice(b * size, (b + 1) * size);
    const old = prev[b];
    let block = old && old.frags.length === slice.length && old.frags.every((f, j) => f === slice[j]) ? old : undefined;
    if (!block) {
      const bytes = Buffer.concat(b === 0 ? [slice[0]!.subarray(1), ...slice.slice(1)] : slice);
      block = { frags: slice, bytes, digest: createHash('sha256').update(bytes).digest() };
    }
    next.push(block);
    out.push(block.bytes);
    etagHash.update(block.digest);
  }
  cache.blocks = next;
  out.push(tail);
  etagHash.update(tail);
  return new RenderedBody(out, `"${etagHash.digest('base64url').slice(0, 32)}"`, hosts);
}

export function etagOf(body: string | Buffer): string {
  return `"${createHash('sha256').update(body).digest('base64url').slice(0, 32)}"`;
}
