import type { InventoryEndpoint } from '../../shared/api/ansible-inventory.js';
import type { Machine, ParamDef, Profile, Site } from '../../shared/api/resources.js';
import type { Service } from '../../shared/api/services.js';
import type { GroupRule } from '../../shared/api/ansible-inventory.js';
import { GLOBAL_PROFILE } from '../profiles/resources.js';
import { unsafeFacts } from './unsafe-facts.js';
import { hostTail, hostTailJson, keptTail } from './host-tail.js';
import type { ByteWriter } from './byte-writer.js';
import { jsonString } from './json-text.js';
import { bestAddress } from '../lifecycle/addresses.js';
import { pkiTemplateContext } from '../../shared/pki/template-context.js';

/**
 * What the renderer reads (the store's collections or a synthetic set) and what it derives from them
 * once per render: which params are secret, the inherited params of each site+profiles combination
 * (resolved and serialised once, not per host), service memberships. Secret params (ParamDef
 * `secret: true`) and sealed values are dropped here and never reach hostvars, group vars, keyed groups
 * or conditions. Machine-reported facts reach hostvars with every string marked unsafe (unsafe-facts.ts).
 */

export interface InventorySource {
  sites: readonly Site[];
  profiles: readonly Profile[];
  params: readonly ParamDef[];
  machines: readonly Machine[];
  rules: readonly GroupRule[];
  services: readonly Service[];
  /** Service CAs, public material only (central/service-pki); absent when that feature does not run. */
  cas?: readonly InventoryCa[];
}

/** What the inventory shows of a service CA. */
export interface InventoryCa {
  name: string;
  service: string;
  certificate: string;
  fingerprint: string;
  notAfter: string;
}

export type Params = Record<string, unknown>;

/** Hostvars the inventory sets itself; params with this prefix are not shown. */
export const RESERVED_PREFIX = 'underlay_';

/**
 * A value stored sealed to agents (`{ "$sealed": … }`, central/secrets/seal.ts). Its param is secret by
 * definition; this also hides it should the definition later stop saying so.
 */
function isSealedValue(v: unknown): boolean {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && Object.hasOwn(v, '$sealed');
}

/** What every machine of one site with one profile list inherits, resolved and serialised once. */
export interface Layer {
  /** Inherited non-secret params: profiles in order → site → global profile → param default. */
  readonly params: Params;
  /** `params` as JSON members, without braces ('' when empty). */
  readonly json: string;
  /** `json` as UTF-8. */
  readonly bytes: Uint8Array;
  /** `"underlay_site":"…"` */
  readonly siteJson: string;
  /** `"underlay_profiles":[…]` */
  readonly profilesJson: string;
}

interface LayerNode {
  layer?: Layer;
  next?: Map<string, LayerNode>;
}

export class InventoryContext {
  readonly secret = new Set<string>();
  private readonly defaults: Params = {};
  readonly sites = new Map<string, Site>();
  readonly profiles = new Map<string, Profile>();
  private readonly cleaned = new WeakMap<object, Params>();
  /** site → profile → profile → … → layer: found without building a key string per host. */
  private readonly layers = new Map<string, LayerNode>();
  /** machine name → service name → its own endpoints in that service. */
  readonly memberships = new Map<string, Record<string, InventoryEndpoint[]>>();
  readonly endpoints: Record<string, InventoryEndpoint[]> = {};
  /** service name → `"<service>":"<PEM of its CAs>"`: the trust bundle of its members (several CAs while one is rotated). */
  private readonly caBundles = new Map<string, string>();
  /** service name → the PEM of its CAs. */
  private readonly caBundlePem = new Map<string, string>();
  /** `underlay_service_cas` of `all.vars` (undefined when there is no CA). */
  readonly serviceCas?: Record<string, { service: string; fingerprint: string; not_after: string; certificate: string }>;
  /** `JSON.stringify` of short strings that repeat across hosts (param names). */
  private readonly strings = new Map<string, string>();

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
    if (src.cas && src.cas.length > 0) {
      // The same bundles (and PEM) as the templates' `pki` object.
      const pki = pkiTemplateContext(src.cas, 'os');
      const catalogue: NonNullable<InventoryContext['serviceCas']> = {};
      for (const ca of src.cas) catalogue[ca.name] = { service: ca.service, fingerprint: ca.fingerprint, not_after: ca.notAfter, certificate: pki.cas[ca.name]!.ca_pem };
      for (const svc in pki.bundles) {
        this.caBundlePem.set(svc, pki.bundles[svc]!);
        this.caBundles.set(svc, `${JSON.stringify(svc)}:${JSON.stringify(pki.bundles[svc])}`);
      }
      this.serviceCas = Object.fromEntries(Object.keys(catalogue).sort().map((k) => [k, catalogue[k]!]));
    }
  }

  /**
   * `underlay_ca_bundles` of a machine as JSON members (`"svc":"PEM…"`, '' when none): for each service it
   * is a member of that has CAs, the PEM of those CAs, in the order of its memberships.
   */
  private caBundlesJson(machine: string): string {
    const mine = this.memberships.get(machine);
    if (!mine || this.caBundles.size === 0) return '';
    let out = '';
    for (const svc in mine) {
      const b = this.caBundles.get(svc);
      if (b !== undefined) out += out ? `,${b}` : b;
    }
    return out;
  }

  /** Whether a param of this name and value may be shown. */
  private shown(k: string, v: unknown): boolean {
    return v !== undefined && !this.secret.has(k) && !k.startsWith(RESERVED_PREFIX) && !isSealedValue(v);
  }

  /** The params of a layer that may be shown (a new object). */
  private visible(values: Params): Params {
    const c: Params = {};
    for (const k in values) if (this.shown(k, values[k])) c[k] = values[k];
    return c;
  }

  /** A param layer without its secret params and reserved names (cached per object). */
  clean(values: Params | undefined): Params {
    if (!values) return {};
    let c = this.cleaned.get(values);
    if (!c) this.cleaned.set(values, (c = this.visible(values)));
    return c;
  }

  /** The inherited params of a machine's site + profiles, and their JSON (built once per combination). */
  layer(m: Machine): Layer {
    let node: LayerNode | undefined = this.layers.get(m.site);
    if (!node) this.layers.set(m.site, (node = {}));
    for (const p of m.profiles) {
      let next: LayerNode | undefined = node.next?.get(p);
      if (!next) (node.next ??= new Map()).set(p, (next = {}));
      node = next;
    }
    return (node.layer ??= this.buildLayer(m.site, m.profiles));
  }

  private buildLayer(site: string, profiles: readonly string[]): Layer {
    const params = Object.assign({}, this.defaults, this.clean(this.profiles.get(GLOBAL_PROFILE)?.params), this.clean(this.sites.get(site)?.params));
    for (let i = profiles.length - 1; i >= 0; i--) Object.assign(params, this.clean(this.profiles.get(profiles[i]!)?.params));
    const json = JSON.stringify(params).slice(1, -1);
    return { params, json, bytes: Buffer.from(json, 'utf8'), siteJson: `"underlay_site":${JSON.stringify(site)}`, profilesJson: `"underlay_profiles":${JSON.stringify(profiles)}` };
  }

  /** The inherited part of a machine's params. */
  base(m: Machine): Params {
    return this.layer(m).params;
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
    for (const _k in own) return Object.assign({}, base, own);
    return base;
  }

  /**
   * A host's variables. Order: `ansible_host` (the best current address, central/lifecycle/addresses.ts, unless a param sets it), the params,
   * then the `underlay_*` facts (a reserved prefix: params named `underlay_*` are dropped).
   */
  hostVars(m: Machine, params: Params = this.params(m)): Record<string, unknown> {
    const hv: Record<string, unknown> = {};
    const host = bestAddress(m);
    if (host && !Object.hasOwn(params, 'ansible_host')) hv.ansible_host = host;
    Object.assign(hv, params);
    hv.underlay_site = m.site;
    if (m.rack !== undefined) hv.underlay_rack = m.rack;
    hv.underlay_macs = m.macs;
    hv.underlay_state = m.state;
    hv.underlay_bootenv = m.bootenv;
    hv.underlay_profiles = m.profiles;
    hv.underlay_facts = unsafeFacts(m.facts);
    hv.underlay_services = this.memberships.get(m.name) ?? {};
    const bundles: Record<string, string> = {};
    let any = false;
    for (const svc in this.memberships.get(m.name) ?? {}) {
      const pem = this.caBundlePem.get(svc);
      if (pem !== undefined) (bundles[svc] = pem), (any = true);
    }
    if (any) hv.underlay_ca_bundles = bundles;
    return hv;
  }

  /** The machine's service memberships as JSON (`{}` for most hosts). */
  membershipJson(machine: string): string {
    const mine = this.memberships.get(machine);
    return mine ? JSON.stringify(mine) : '{}';
  }

  /** A signature of what makes params secret or hidden, and of the CA bundles: a change invalidates cached host fragments. */
  secretSignature(): string {
    return [...this.secret].sort().join('\0') + '\u0001' + [...this.caBundles.values()].join('\0');
  }

  private str(s: string): string {
    let j = this.strings.get(s);
    if (j === undefined) this.strings.set(s, (j = jsonString(s)));
    return j;
  }

  /**
   * `JSON.stringify(hostVars(m))`, byte for byte: the head, the machine's tail (host-tail.ts) and the
   * end. For tests and the object form; the render writes the same pieces with `writeHost`.
   */
  hostVarsJson(m: Machine, layer: Layer = this.layer(m), memJson = this.membershipJson(m.name)): string {
    return this.hostHeadJson(m, layer) + hostTailJson(m) + this.hostEndJson(m.name, memJson);
  }

  /**
   * `,"<name>":` + the host's variables, written as UTF-8: the head and end built here, the tail (two
   * thirds of the bytes) copied from the machine document's kept bytes. A host without kept bytes gets
   * its tail written as text, and kept as well when `keep` (a render of a few changed hosts): a render of
   * every host does not make them, as a buffer per host and the extra copy cost more than they save
   * in that render (the central makes them in the background after a start, feature.ts).
   */
  writeHost(w: ByteWriter, m: Machine, layer: Layer, memJson: string, keep: boolean): void {
    const tail = keep ? hostTail(m) : keptTail(m);
    if (!tail) {
      w.write(`,${jsonString(m.name)}:${this.hostHeadJson(m, layer)}${hostTailJson(m)}${this.hostEndJson(m.name, memJson)}`);
      return;
    }
    const p = this.paramsAfterLayer(m, layer);
    if (p.merged || !layer.json) w.write(`,${jsonString(m.name)}:${this.headOf(m, layer, p)}`);
    else {
      // The layer's params (the bulk of the head, the same for every host of the layer) as its bytes.
      w.write(`,${jsonString(m.name)}:{${this.ansibleHostJson(m, p.hasAnsibleHost)}`);
      w.bytes(layer.bytes);
      w.write(p.json ? `,${p.json},${layer.siteJson}` : `,${layer.siteJson}`);
    }
    w.bytes(tail);
    w.write(this.hostEndJson(m.name, memJson));
  }

  /** `underlay_services`' value, the CA bundles and the closing brace. */
  private hostEndJson(name: string, memJson: string): string {
    if (memJson === '{}') return '{}}';
    const cas = this.caBundlesJson(name);
    return cas ? `${memJson},"underlay_ca_bundles":{${cas}}}` : `${memJson}}`;
  }

  /**
   * `{` + `ansible_host` + the params + `"underlay_site":…`, built from the layer's pre-serialised
   * pieces: no merged params object unless the machine's own params override inherited ones, no per-host
   * object for its own params unless some of them must be hidden.
   */
  private hostHeadJson(m: Machine, layer: Layer): string {
    return this.headOf(m, layer, this.paramsAfterLayer(m, layer));
  }

  private headOf(m: Machine, layer: Layer, p: OwnParams): string {
    const paramsJson = p.merged ? p.json : layer.json && p.json ? `${layer.json},${p.json}` : layer.json || p.json;
    return `{${this.ansibleHostJson(m, p.hasAnsibleHost)}${paramsJson ? `${paramsJson},` : ''}${layer.siteJson}`;
  }

  /** `"ansible_host":"…",` unless a param sets it or the machine has no address. */
  private ansibleHostJson(m: Machine, hasAnsibleHost: boolean): string {
    const host = hasAnsibleHost ? undefined : bestAddress(m);
    return host ? `"ansible_host":${jsonString(host)},` : '';
  }

  /**
   * The machine's shown own params as JSON members written after the layer's (no filtered copy, no
   * object serialised and sliced), or, when they override inherited ones, all its params merged.
   */
  private paramsAfterLayer(m: Machine, layer: Layer): OwnParams {
    const own = m.params;
    const base = layer.params;
    let hasAnsibleHost = Object.hasOwn(base, 'ansible_host');
    let overlap = false;
    let shown = 0;
    let hidden = 0;
    for (const k in own) {
      if (!this.shown(k, own[k])) {
        hidden++;
        continue;
      }
      shown++;
      if (Object.hasOwn(base, k)) overlap = true;
      if (k === 'ansible_host') hasAnsibleHost = true;
    }
    if (shown === 0) return { json: '', merged: false, hasAnsibleHost };
    if (overlap) return { json: JSON.stringify(Object.assign({}, base, hidden > 0 ? this.visible(own) : own)).slice(1, -1), merged: true, hasAnsibleHost };
    let json = '';
    for (const k in own) {
      const v = own[k];
      if (hidden > 0 && !this.shown(k, v)) continue;
      const j = typeof v === 'string' ? jsonString(v) : JSON.stringify(v);
      if (j === undefined) continue; // what JSON.stringify leaves out of an object (a function)
      json += json ? `,${this.str(k)}:${j}` : `${this.str(k)}:${j}`;
    }
    return { json, merged: false, hasAnsibleHost };
  }
}

/** A host's own params as written after its layer's, or (`merged`) all its params when they override inherited ones. */
interface OwnParams {
  json: string;
  merged: boolean;
  hasAnsibleHost: boolean;
}
