import { createHash } from 'node:crypto';
import type { Machine } from '../../shared/api/resources.js';
import { GLOBAL_PROFILE } from '../profiles/resources.js';
import { ByteWriter } from './byte-writer.js';
import { compact, DEFAULT_BLOCK_SIZE, nameHash, RenderedBody } from './body.js';
import { InventoryContext, type InventorySource, type Layer, type Params } from './context.js';
import { byString, KIND } from './plan.js';
import { allHold, compileRules, keyedValues, readPath, type CompiledRule } from './rules.js';
import { GroupNamer, groupName, normalisePrefix, slugPart } from './sanitize.js';

/**
 * The unfiltered `--list` document kept up to date between renders (issue 21: after one write, render
 * only what changed). It holds, per machine, the groups it is in; per group, its sorted hosts and its
 * serialised entry; the hostvars as the same content-defined blocks as `renderInventoryBody` (body.ts),
 * each with its bytes and sha256. A render diffs the machines by document identity (the store replaces a
 * document on every write, never changes one in place), moves the changed hosts between groups,
 * re-serialises the groups and blocks they touched, and hashes the head and block digests into the
 * ETag exactly as body.ts does, so the bytes and ETag equal a cold render's (property-tested).
 *
 * Anything but machines changing (sites, profiles, params, rules, services, CAs) rebuilds the whole
 * model: those change group vars, inherited params, memberships or rule results of many hosts at once.
 */

interface Group {
  key: string;
  /** The name it asks for (before clashes are resolved) and whether its raw value is exactly that. */
  wanted: string;
  exact: boolean;
  /** Exists even when empty (sites, profiles, services, conditional rules). */
  permanent: boolean;
  hosts: string[];
  vars?: Params;
  /** Final name, and `,"name":{"hosts":[…]…}` as UTF-8; null when it must be serialised again. */
  name: string;
  bytes: Buffer | null;
}

interface Host {
  m: Machine;
  name: string;
  layer: Layer;
  mems: string;
  groups: Group[];
  /** Ends a hostvars block (body.ts's content-defined boundary). */
  boundary: boolean;
  seen: number;
}

interface Block {
  hosts: Host[];
  bytes: Buffer | null;
  digest: Buffer | null;
}

/** Index of the first element of sorted `xs` that is ≥ `x`. */
function lowerBound(xs: readonly string[], x: string): number {
  let lo = 0;
  let hi = xs.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (xs[mid]! < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function sameItems(a: readonly unknown[] | undefined, b: readonly unknown[]): boolean {
  if (!a || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export class IncrementalInventory {
  private ctx: InventoryContext | null = null;
  /** What the model was built from (identity of every non-machine document; CAs by value). */
  private inputs: { sites?: readonly unknown[]; profiles?: readonly unknown[]; params?: readonly unknown[]; rules?: readonly unknown[]; services?: readonly unknown[]; cas?: string } = {};
  private rules: { r: CompiledRule; group?: Group; byValue: Map<string, Group> }[] = [];
  private groups = new Map<string, Group>();
  private byKind = { site: new Map<string, Group>(), rack: new Map<string, Group>(), profile: new Map<string, Group>(), bootenv: new Map<string, Group>(), state: new Map<string, Group>() };
  /** service group → machine names with a passing member (sorted); machine name → service groups naming it. */
  private servicePassing = new Map<Group, string[]>();
  private serviceOf = new Map<string, Group[]>();
  private hosts = new Map<string, Host>();
  private byName = new Map<string, Host>();
  private blocks: Block[] = [];
  private allVarsJson = '';
  private sorted: Group[] = [];
  private generation = 0;
  private readonly prefix: string;
  private readonly mask: number;
  /** Renders that rebuilt everything / applied changes only (for tests and metrics). */
  rebuilds = 0;
  updates = 0;

  constructor(
    prefix = '',
    readonly blockSize = DEFAULT_BLOCK_SIZE,
  ) {
    this.prefix = normalisePrefix(prefix);
    if (!Number.isInteger(Math.log2(blockSize))) throw new Error(`block size must be a power of two, not ${blockSize}`);
    this.mask = blockSize - 1;
  }

  render(src: InventorySource): RenderedBody {
    const cas = src.cas && src.cas.length > 0 ? JSON.stringify(src.cas) : '';
    const i = this.inputs;
    if (!this.ctx || !sameItems(i.sites, src.sites) || !sameItems(i.profiles, src.profiles) || !sameItems(i.params, src.params) || !sameItems(i.rules, src.rules) || !sameItems(i.services, src.services) || i.cas !== cas) {
      this.reset(src, cas);
      this.rebuilds++;
    } else this.updates++;
    return this.apply(src.machines);
  }

  private withPrefix(n: string): string {
    return this.prefix ? this.prefix + (n.startsWith('_') ? n.slice(1) : n) : n;
  }

  private want(key: string, kindPrefix: string, raw: string, permanent = false): Group {
    let g = this.groups.get(key);
    if (!g) {
      g = { key, wanted: this.withPrefix(groupName(kindPrefix, raw)), exact: slugPart(raw) === raw, permanent, hosts: [], name: '', bytes: null };
      this.groups.set(key, g);
      this.sorted = []; // the set of groups changed: names are resolved again
    }
    return g;
  }

  private reset(src: InventorySource, cas: string): void {
    const ctx = (this.ctx = new InventoryContext(src));
    this.inputs = { sites: [...src.sites], profiles: [...src.profiles], params: [...src.params], rules: [...src.rules], services: [...src.services], cas };
    this.groups = new Map();
    this.byKind = { site: new Map(), rack: new Map(), profile: new Map(), bootenv: new Map(), state: new Map() };
    this.hosts = new Map();
    this.byName = new Map();
    this.blocks = [];
    this.sorted = [];
    this.headStart = null;
    for (const s of src.sites) {
      const g = this.want(`${KIND.site}\0${s.name}`, 'site', s.name, true);
      this.byKind.site.set(s.name, g);
      const vars = ctx.clean(s.params);
      if (Object.keys(vars).length > 0) g.vars = vars;
    }
    for (const p of src.profiles) {
      const g = this.want(`${KIND.profile}\0${p.name}`, 'profile', p.name, true);
      this.byKind.profile.set(p.name, g);
      const vars = ctx.clean(p.params);
      if (Object.keys(vars).length > 0) g.vars = vars;
    }
    this.servicePassing = new Map();
    this.serviceOf = new Map();
    for (const svc of src.services) {
      const g = this.want(`${KIND.service}\0${svc.name}`, 'service', svc.name, true);
      const passing = new Set<string>();
      for (const mem of svc.members) if (mem.status === 'passing' && mem.machine) passing.add(mem.machine);
      this.servicePassing.set(g, [...passing].sort(byString));
      for (const name of passing) {
        const list = this.serviceOf.get(name);
        if (list) list.push(g);
        else this.serviceOf.set(name, [g]);
      }
    }
    this.rules = compileRules(src.rules).map((r) => ({ r, group: r.kind === 'condition' ? this.want(`${KIND.cond}\0${r.group}`, '', r.group, true) : undefined, byValue: new Map<string, Group>() }));
    const allVars: Params = { ...ctx.clean(ctx.profiles.get(GLOBAL_PROFILE)?.params), underlay_service_endpoints: ctx.endpoints };
    if (ctx.serviceCas) allVars.underlay_service_cas = ctx.serviceCas;
    this.allVarsJson = JSON.stringify(allVars);
  }

  private by(kind: keyof IncrementalInventory['byKind'], raw: string): Group {
    const cache = this.byKind[kind];
    let g = cache.get(raw);
    if (!g) cache.set(raw, (g = this.want(`${KIND[kind]}\0${raw}`, kind, raw)));
    return g;
  }

  /** The groups a machine is in (service groups aside), each once. */
  private groupsOf(m: Machine, layer: Layer): Group[] {
    const ctx = this.ctx!;
    const out: Group[] = [this.by('site', m.site)];
    if (m.rack !== undefined) out.push(this.by('rack', m.rack));
    for (const p of m.profiles) {
      const g = this.by('profile', p);
      if (!out.includes(g)) out.push(g);
    }
    out.push(this.by('bootenv', m.bootenv), this.by('state', m.state));
    for (const { r, group, byValue } of this.rules) {
      if (r.kind === 'keyed') {
        for (const value of keyedValues(readPath(ctx, m, layer.params, r.path))) {
          let g = byValue.get(value);
          if (!g) byValue.set(value, (g = this.want(`${KIND.keyed}\0${r.prefix}\0${value}`, r.prefix, value)));
          if (!out.includes(g)) out.push(g);
        }
      } else if (allHold(ctx, m, layer.params, r.when)) out.push(group!);
    }
    return out;
  }

  private static join(g: Group, name: string): void {
    const n = g.hosts.length;
    if (n === 0 || g.hosts[n - 1]! < name) g.hosts.push(name);
    else g.hosts.splice(lowerBound(g.hosts, name), 0, name);
    g.bytes = null;
  }

  private static leave(g: Group, name: string): void {
    const i = lowerBound(g.hosts, name);
    if (g.hosts[i] === name) g.hosts.splice(i, 1);
    g.bytes = null;
  }

  /** Applies the machines as they are now (diffed by document identity) and serialises the document. */
  private apply(machines: readonly Machine[]): RenderedBody {
    const gen = ++this.generation;
    const ctx = this.ctx!;
    const added: Machine[] = [];
    const removed: Host[] = [];
    for (const m of machines) {
      const h = this.hosts.get(m.id);
      if (h && h.m === m) h.seen = gen;
      else {
        if (h) removed.push(h);
        added.push(m);
      }
    }
    // Hosts neither seen nor replaced were deleted (replaced ones are already in `removed`).
    if (this.hosts.size + added.length - removed.length !== machines.length) {
      const replaced = new Set(removed);
      for (const h of this.hosts.values()) if (h.seen !== gen && !replaced.has(h)) removed.push(h);
    }
    const dirty = new Set<Block>();
    const touchedServices = new Set<Group>();
    for (const h of removed) {
      this.hosts.delete(h.m.id);
      this.byName.delete(h.name);
      for (const g of h.groups) IncrementalInventory.leave(g, h.name);
      for (const g of this.serviceOf.get(h.name) ?? []) touchedServices.add(g);
      this.removeFromBlock(h, dirty);
    }
    added.sort((a, b) => byString(a.name, b.name));
    for (const m of added) {
      const layer = ctx.layer(m);
      const mine = ctx.memberships.get(m.name);
      const h: Host = { m, name: m.name, layer, mems: mine ? JSON.stringify(mine) : '{}', groups: this.groupsOf(m, layer), boundary: (nameHash(m.name) & this.mask) === this.mask, seen: gen };
      this.hosts.set(m.id, h);
      this.byName.set(h.name, h);
      for (const g of h.groups) IncrementalInventory.join(g, h.name);
      for (const g of this.serviceOf.get(h.name) ?? []) touchedServices.add(g);
      this.addToBlock(h, dirty);
    }
    for (const g of touchedServices) {
      g.hosts = this.servicePassing.get(g)!.filter((n) => this.byName.has(n));
      g.bytes = null;
    }
    // Empty groups that only hosts made vanish (their name may have been taken by a clash loser).
    for (const h of removed)
      for (const g of h.groups)
        if (!g.permanent && g.hosts.length === 0 && this.groups.get(g.key) === g) {
          this.groups.delete(g.key);
          this.forget(g);
          this.sorted = [];
        }
    if (dirty.size > 0) this.resplit(dirty);
    return this.serialise();
  }

  /** Drops a vanished group from the per-kind lookups. */
  private forget(g: Group): void {
    for (const m of Object.values(this.byKind)) for (const [raw, x] of m) if (x === g) m.delete(raw);
    for (const r of this.rules) for (const [v, x] of r.byValue) if (x === g) r.byValue.delete(v);
  }

  /** Index of the block a host of this name belongs in (the last one starting at or before it). */
  private blockFor(name: string): number {
    let lo = 0;
    let hi = this.blocks.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (this.blocks[mid]!.hosts[0]!.name <= name) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  private addToBlock(h: Host, dirty: Set<Block>): void {
    if (this.blocks.length === 0) {
      const b: Block = { hosts: [h], bytes: null, digest: null };
      this.blocks.push(b);
      dirty.add(b);
      return;
    }
    const b = this.blocks[this.blockFor(h.name)]!;
    const hs = b.hosts;
    if (hs.length === 0 || hs[hs.length - 1]!.name < h.name) hs.push(h);
    else {
      let lo = 0;
      let hi = hs.length;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (hs[mid]!.name < h.name) lo = mid + 1;
        else hi = mid;
      }
      hs.splice(lo, 0, h);
    }
    b.bytes = null;
    dirty.add(b);
  }

  private removeFromBlock(h: Host, dirty: Set<Block>): void {
    const k = this.blockFor(h.name);
    const b = this.blocks[k]!;
    const i = b.hosts.indexOf(h);
    if (i >= 0) b.hosts.splice(i, 1);
    b.bytes = null;
    if (b.hosts.length > 0) {
      dirty.add(b);
      return;
    }
    // An empty block leaves; its neighbours' run is cut again.
    this.blocks.splice(k, 1);
    dirty.delete(b);
    if (k > 0) dirty.add(this.blocks[k - 1]!);
    if (k < this.blocks.length) dirty.add(this.blocks[k]!);
  }

  /**
   * Cuts the runs holding dirty blocks again by body.ts's rule: a block ends after a boundary host or at
   * 4 × blockSize hosts counted from the run's start (the host after a boundary), so the result is
   * what a cold render of the same hosts cuts.
   */
  private resplit(dirty: Set<Block>): void {
    const old = this.blocks;
    const out: Block[] = [];
    const endsRun = (b: Block) => b.hosts.length > 0 && b.hosts[b.hosts.length - 1]!.boundary;
    let i = 0;
    while (i < old.length) {
      const b = old[i]!;
      if (!dirty.has(b)) {
        out.push(b);
        i++;
        continue;
      }
      // Back to the start of this run: blocks already out that were cut by size, not at a boundary.
      const run: Host[] = [];
      const back: Block[] = [];
      while (out.length > 0 && !endsRun(out[out.length - 1]!)) back.unshift(out.pop()!);
      for (const x of back) for (const h of x.hosts) run.push(h);
      // Forward to the end of the run.
      let j = i;
      for (;;) {
        for (const h of old[j]!.hosts) run.push(h);
        j++;
        if (j >= old.length) break;
        if (run.length > 0 && run[run.length - 1]!.boundary) break;
      }
      i = j;
      let cur: Host[] = [];
      for (const h of run) {
        cur.push(h);
        if (h.boundary || cur.length >= 4 * this.blockSize) {
          out.push({ hosts: cur, bytes: null, digest: null });
          cur = [];
        }
      }
      if (cur.length > 0) out.push({ hosts: cur, bytes: null, digest: null });
    }
    this.blocks = out;
  }

  private serialise(): RenderedBody {
    const ctx = this.ctx!;
    if (this.sorted.length === 0 && this.groups.size > 0) {
      const namer = new GroupNamer();
      for (const g of this.groups.values()) namer.add(g.key, g.wanted, g.exact);
      const names = namer.resolve();
      for (const g of this.groups.values()) {
        const n = names.get(g.key)!;
        if (n !== g.name) (g.name = n), (g.bytes = null);
      }
      this.sorted = [...this.groups.values()].sort((a, b) => byString(a.name, b.name));
      this.headStart = null;
    }
    if (!this.headStart) {
      const children = ['ungrouped'];
      for (const g of this.sorted) children.push(g.name);
      this.headStart = Buffer.from(`{"all":{"children":${JSON.stringify(children)},"vars":${this.allVarsJson}},"ungrouped":{"hosts":[]}`, 'utf8');
    }
    const chunks: Buffer[] = [this.headStart];
    let headLen = this.headStart.length + HEAD_END.length;
    for (const g of this.sorted) {
      g.bytes ??= Buffer.from(`,${JSON.stringify(g.name)}:{"hosts":${JSON.stringify(g.hosts)}${g.vars ? `,"vars":${JSON.stringify(g.vars)}` : ''}}`, 'utf8');
      chunks.push(g.bytes);
      headLen += g.bytes.length;
    }
    chunks.push(HEAD_END);
    const etag = createHash('sha256');
    const len = Buffer.alloc(4);
    len.writeUInt32BE(headLen);
    etag.update(len);
    for (const c of chunks) etag.update(c);
    let hosts = 0;
    let fresh = 0;
    writer.reset();
    // A render with nothing to reuse (a start, or a change to anything but machines).
    const cold = this.blocks.length > 1 && this.blocks.every((x) => !x.bytes);
    for (let k = 0; k < this.blocks.length; k++) {
      const b = this.blocks[k]!;
      if (!b.bytes) {
        // Written straight as UTF-8 (no block-sized string flattened and copied again).
        for (const h of b.hosts) ctx.writeHost(writer, h.m, h.layer, h.mems, !cold);
        // As body.ts does: after the first block of a cold render, one buffer for all the rest.
        if (k === 0 && cold) writer.reserve(Math.ceil((writer.pending / b.hosts.length) * 1.1 * (this.hosts.size - b.hosts.length)) + writer.pending);
        b.bytes = writer.take();
        b.digest = createHash('sha256').update(b.bytes).digest();
        fresh++;
      }
      chunks.push(k === 0 ? b.bytes.subarray(1) : b.bytes);
      etag.update(b.digest!);
      hosts += b.hosts.length;
    }
    writer.reset();
    this.blocksSerialised += fresh;
    // Blocks of a cold render share one buffer: once most of it is replaced, the rest get their own.
    if (fresh > 0) compact(this.blocks);
    chunks.push(TAIL);
    etag.update(TAIL);
    return new RenderedBody(chunks, `"${etag.digest('base64url').slice(0, 32)}"`, hosts);
  }

  /** Hostvars blocks serialised over the model's life (tests: a write re-serialises its block only). */
  blocksSerialised = 0;
  private headStart: Buffer | null = null;
}

const writer = new ByteWriter();
const HEAD_END = Buffer.from(',"_meta":{"hostvars":{');
const TAIL = Buffer.from('}}}');
