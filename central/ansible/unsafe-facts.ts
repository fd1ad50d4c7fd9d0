import { ANSIBLE_UNSAFE_KEY } from '../../shared/api/ansible-inventory.js';
import { jsonString } from './json-text.js';

/**
 * A machine's facts as Ansible must see them: data, never templates. Every string becomes
 * `{"__ansible_unsafe": "…"}`, which Ansible's JSON decoder (script inventories, `--host`, and our
 * inventory plugin) turns into an unsafe string that is never templated (ansible-core 2.14:
 * `AnsibleUnsafeText`; 2.19+: a string not trusted as a template). The marker must wrap a string, not an
 * object: ansible-core 2.19+ rejects a non-string `__ansible_unsafe` value, so each string is wrapped.
 * Numbers, booleans and null stay as they are. Keys are not marked (JSON cannot mark a key, and Ansible
 * never templates dict keys); keys starting with `__ansible` are dropped, so stored facts cannot smuggle
 * a marker of their own (`__ansible_vault` would be decrypted with the controller's vault secrets).
 *
 * Speed: the inventory serialises the facts of every host on a cold render (100k hosts), so facts of
 * the shape the collector sends (shared/api/facts.ts; the store holds nothing else since facts are
 * validated at every edge) are written by straight-line code in a fixed key order. Anything else (facts
 * stored before the strict schema, odd types) falls back to a generic walk in the object's own key order.
 */

const OPEN = `{"${ANSIBLE_UNSAFE_KEY}":`;
/** Deeper than any fact the schema admits (3 levels); deeper stored values are rendered as null. */
const MAX_DEPTH = 32;

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function keyCount(o: Obj): number {
  let n = 0;
  for (const _ in o) n++;
  return n;
}

/** Any JSON value with its strings marked, own key order, marker-like keys dropped. */
function anyJson(v: unknown, depth: number): string {
  if (typeof v === 'string') return OPEN + jsonString(v) + '}';
  if (typeof v === 'number') return Number.isFinite(v) ? '' + v : 'null';
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (v === null || typeof v !== 'object' || depth >= MAX_DEPTH) return 'null';
  let s = '';
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) s += (i ? ',' : '') + (v[i] === undefined ? 'null' : anyJson(v[i], depth + 1));
    return `[${s}]`;
  }
  for (const k in v) {
    const x = (v as Obj)[k];
    if (x === undefined || typeof x === 'function' || k.startsWith('__ansible')) continue;
    s += `,${jsonString(k)}:${anyJson(x, depth + 1)}`;
  }
  return `{${s.slice(1)}}`;
}

const str = (v: unknown): string => (typeof v === 'string' ? OPEN + jsonString(v) + '}' : anyJson(v, 2));
const num = (v: unknown): string => (typeof v === 'number' && Number.isFinite(v) ? '' + v : anyJson(v, 2));
const bool = (v: unknown): string => (v === true ? 'true' : v === false ? 'false' : anyJson(v, 2));

/**
 * Marked strings of the fields that repeat across a fleet (vendor, product, CPU and disk models, NIC
 * names and drivers, firmware): looked up instead of escaped and concatenated again for every host. A
 * pure function of the value, so never stale; bounded (cleared when full) so a field that does not
 * repeat after all only costs lookups.
 */
const shared = new Map<string, string>();
const SHARED_MAX = 4096;
function common(v: unknown): string {
  if (typeof v !== 'string') return anyJson(v, 2);
  let j = shared.get(v);
  if (j === undefined) {
    if (shared.size >= SHARED_MAX) shared.clear();
    shared.set(v, (j = OPEN + jsonString(v) + '}'));
  }
  return j;
}

/** Thrown inside the fast path when the facts are not of the collector's shape. */
const ODD = Symbol('odd');

/*
 * The writers below build each object as `{` + members + `}` with the separator chosen per member: no
 * `slice` of the joined members, which would flatten (copy) every nested object once more per level.
 */

function system(s: Obj): string {
  let o = '{';
  let n = 0;
  if (s.uuid !== undefined) o += (n++ ? ',"uuid":' : '"uuid":') + str(s.uuid);
  if (s.serial !== undefined) o += (n++ ? ',"serial":' : '"serial":') + str(s.serial);
  if (s.vendor !== undefined) o += (n++ ? ',"vendor":' : '"vendor":') + common(s.vendor);
  if (s.product !== undefined) o += (n++ ? ',"product":' : '"product":') + common(s.product);
  if (n !== keyCount(s)) throw ODD;
  return o + '}';
}

function cpu(c: Obj): string {
  let o = '{';
  let n = 0;
  if (c.model !== undefined) o += (n++ ? ',"model":' : '"model":') + common(c.model);
  if (c.sockets !== undefined) o += (n++ ? ',"sockets":' : '"sockets":') + num(c.sockets);
  if (c.cores !== undefined) o += (n++ ? ',"cores":' : '"cores":') + num(c.cores);
  if (c.threads !== undefined) o += (n++ ? ',"threads":' : '"threads":') + num(c.threads);
  if (n !== keyCount(c)) throw ODD;
  return o + '}';
}

function memory(m: Obj): string {
  if (m.totalBytes === undefined) {
    if (keyCount(m) !== 0) throw ODD;
    return '{}';
  }
  if (keyCount(m) !== 1) throw ODD;
  return '{"totalBytes":' + num(m.totalBytes) + '}';
}

function disk(d: Obj): string {
  let o = '{';
  let n = 0;
  if (d.name !== undefined) o += (n++ ? ',"name":' : '"name":') + common(d.name);
  if (d.sizeBytes !== undefined) o += (n++ ? ',"sizeBytes":' : '"sizeBytes":') + num(d.sizeBytes);
  if (d.model !== undefined) o += (n++ ? ',"model":' : '"model":') + common(d.model);
  if (d.serial !== undefined) o += (n++ ? ',"serial":' : '"serial":') + str(d.serial);
  if (d.rotational !== undefined) o += (n++ ? ',"rotational":' : '"rotational":') + bool(d.rotational);
  if (n !== keyCount(d)) throw ODD;
  return o + '}';
}

function nic(d: Obj): string {
  let o = '{';
  let n = 0;
  if (d.name !== undefined) o += (n++ ? ',"name":' : '"name":') + common(d.name);
  if (d.mac !== undefined) o += (n++ ? ',"mac":' : '"mac":') + str(d.mac);
  if (d.driver !== undefined) o += (n++ ? ',"driver":' : '"driver":') + common(d.driver);
  if (d.link !== undefined) o += (n++ ? ',"link":' : '"link":') + bool(d.link);
  if (d.speedMbps !== undefined) o += (n++ ? ',"speedMbps":' : '"speedMbps":') + num(d.speedMbps);
  if (d.addresses !== undefined) o += (n++ ? ',"addresses":' : '"addresses":') + anyJson(d.addresses, 2);
  if (n !== keyCount(d)) throw ODD;
  return o + '}';
}

function list(v: unknown, item: (o: Obj) => string): string {
  if (!Array.isArray(v)) throw ODD;
  let o = '[';
  for (let i = 0; i < v.length; i++) {
    const x: unknown = v[i];
    if (!isObj(x)) throw ODD;
    o += i ? ',' + item(x) : item(x);
  }
  return o + ']';
}

function obj(v: unknown, part: (o: Obj) => string): string {
  if (!isObj(v)) throw ODD;
  return part(v);
}

/** The collector's shape, in its key order; throws ODD for anything else. */
function collectorShape(f: Obj): string {
  let o = '{';
  let n = 0;
  if (f.system !== undefined) o += (n++ ? ',"system":' : '"system":') + obj(f.system, system);
  if (f.firmware !== undefined) o += (n++ ? ',"firmware":' : '"firmware":') + common(f.firmware);
  if (f.cpu !== undefined) o += (n++ ? ',"cpu":' : '"cpu":') + obj(f.cpu, cpu);
  if (f.memory !== undefined) o += (n++ ? ',"memory":' : '"memory":') + obj(f.memory, memory);
  if (f.disks !== undefined) o += (n++ ? ',"disks":' : '"disks":') + list(f.disks, disk);
  if (f.nics !== undefined) o += (n++ ? ',"nics":' : '"nics":') + list(f.nics, nic);
  if (f.bmc !== undefined) {
    const b = f.bmc;
    if (!isObj(b) || keyCount(b) !== (b.address === undefined ? 0 : 1)) throw ODD;
    o += (n++ ? ',"bmc":' : '"bmc":') + (b.address === undefined ? '{}' : '{"address":' + str(b.address) + '}');
  }
  if (f.bootMac !== undefined) o += (n++ ? ',"bootMac":' : '"bootMac":') + str(f.bootMac);
  if (n !== keyCount(f)) throw ODD;
  return o + '}';
}

/** `underlay_facts` as JSON text, every string marked unsafe. */
export function unsafeFactsJson(facts: unknown): string {
  if (!isObj(facts)) return anyJson(facts, 0);
  try {
    return collectorShape(facts);
  } catch (e) {
    if (e !== ODD) throw e;
    return anyJson(facts, 0);
  }
}

/** `underlay_facts` as a value (the same document as `unsafeFactsJson`, for `--host` and the object form). */
export function unsafeFacts(facts: unknown): unknown {
  return JSON.parse(unsafeFactsJson(facts));
}
