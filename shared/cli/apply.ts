import { parseAllDocuments } from 'yaml';
import { ApiClientError, type ApiClient } from '../client/api-client.js';
import { normalizeCidr } from '../util/cidr.js';

/**
 * `underlay apply -f FILE`: declarative objects (YAML documents or JSON), each `kind: Site` (etc.) plus
 * the object's fields as its create body. An object that does not exist is created; one that exists gets
 * a PATCH of exactly the fields the file gives that differ (fields the file leaves out are left alone);
 * one that already matches is left untouched, so a second apply changes nothing. Objects go in dependency
 * order (param definitions, sites, subnets, templates, boot environments, profiles, machines,
 * reservations, workflows), whatever their order in the file.
 */
export const KINDS: readonly { kind: string; path: string; derive?: (o: Record<string, unknown>) => string }[] = [
  { kind: 'Param', path: 'params' },
  { kind: 'Site', path: 'sites' },
  // A subnet's and a reservation's name is made by the central from their fields.
  { kind: 'Subnet', path: 'subnets', derive: (o) => `${String(o.site)}/${normalizeCidr(String(o.cidr), 'ipv4')}` },
  { kind: 'Template', path: 'templates' },
  { kind: 'BootEnv', path: 'bootenvs' },
  { kind: 'Profile', path: 'profiles' },
  { kind: 'Machine', path: 'machines' },
  { kind: 'Reservation', path: 'reservations', derive: (o) => `${String(o.site)}/${String(o.mac).toLowerCase().replace(/-/g, ':')}` },
  { kind: 'Workflow', path: 'workflows' },
];

export interface ApplyObject {
  kind: string;
  name: string;
  body: Record<string, unknown>;
}

export type Change = { field: string; from: unknown; to: unknown };
export interface ApplyResult {
  ref: string;
  action: 'created' | 'configured' | 'unchanged';
  changes: Change[];
}

const MAX_OBJECTS = 10_000;
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The objects of a YAML (one or many `---` documents) or JSON file, validated, in dependency order. */
export function parseApplyFile(text: string, source = 'the file'): ApplyObject[] {
  const raw: unknown[] = [];
  for (const doc of parseAllDocuments(text)) {
    if (doc.errors.length) throw new Error(`${source}: ${doc.errors[0].message}`);
    const v = doc.toJS({ maxAliasCount: 100 }) as unknown;
    if (v === null || v === undefined) continue;
    if (Array.isArray(v)) raw.push(...v);
    else if (isObject(v) && v.kind === 'List' && Array.isArray(v.items)) raw.push(...v.items);
    else raw.push(v);
    if (raw.length > MAX_OBJECTS) throw new Error(`${source}: more than ${MAX_OBJECTS} objects`);
  }
  const seen = new Set<string>();
  const objects = raw.map((o, i): ApplyObject => {
    const where = `${source}, object ${i + 1}`;
    if (!isObject(o)) throw new Error(`${where}: not an object`);
    const { kind, ...body } = o;
    const k = KINDS.find((x) => x.kind.toLowerCase() === String(kind).toLowerCase());
    if (!k) throw new Error(`${where}: kind ${JSON.stringify(kind)} is not one of ${KINDS.map((x) => x.kind).join(', ')}`);
    let name = body.name;
    if (k.derive) {
      try {
        name = k.derive(body);
      } catch (e) {
        throw new Error(`${where} (${k.kind}): ${(e as Error).message}`);
      }
      delete body.name;
    }
    if (typeof name !== 'string' || !name) throw new Error(`${where} (${k.kind}): needs a name`);
    const ref = `${k.kind}/${name}`;
    if (seen.has(ref)) throw new Error(`${where}: ${ref} appears twice`);
    seen.add(ref);
    return { kind: k.kind, name, body };
  });
  const rank = (o: ApplyObject) => KINDS.findIndex((k) => k.kind === o.kind);
  return objects.map((o, i) => ({ o, i })).sort((a, b) => rank(a.o) - rank(b.o) || a.i - b.i).map(({ o }) => o);
}

/** What the central would store for a value the file gives (MACs lower-case, CIDRs without host bits). */
function normalized(v: unknown): unknown {
  if (typeof v === 'string') {
    if (/^([0-9a-f]{2}[:-]){5}[0-9a-f]{2}$/i.test(v)) return v.toLowerCase().replace(/-/g, ':');
    if (/^[0-9a-f.:]+\/\d{1,3}$/i.test(v)) {
      try {
        return normalizeCidr(v);
      } catch {
        return v;
      }
    }
    return v;
  }
  if (Array.isArray(v)) return v.map(normalized);
  if (isObject(v)) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, normalized(x)]));
  return v;
}

/** A secret as the API shows it (never its value): `[secret]` or `{ $sealed: [...] }`. */
function isRedacted(v: unknown): boolean {
  return v === '[secret]' || (isObject(v) && '$sealed' in v);
}

function same(want: unknown, have: unknown): boolean {
  if (isRedacted(have)) return true; // a secret that is set: apply cannot compare it, and does not resend it
  if (Array.isArray(want)) return Array.isArray(have) && want.length === have.length && want.every((w, i) => same(w, have[i]));
  if (isObject(want)) {
    if (!isObject(have)) return false;
    const keys = new Set([...Object.keys(want), ...Object.keys(have)]);
    return [...keys].every((k) => same(want[k], have[k]));
  }
  return JSON.stringify(normalized(want)) === JSON.stringify(normalized(have));
}

/** The fields of `desired` that differ from `current` (a field the file leaves out is not compared). */
export function diffObject(desired: Record<string, unknown>, current: Record<string, unknown>): Change[] {
  return Object.entries(desired)
    .filter(([k, v]) => !same(v, current[k]))
    .map(([field, to]) => ({ field, from: current[field], to }));
}

/** Applies the objects in order; with `dryRun` it only reads. Stops at the first error (later objects may depend on it). */
export async function applyObjects(client: ApiClient, objects: ApplyObject[], dryRun: boolean, onResult: (r: ApplyResult) => void = () => undefined): Promise<ApplyResult[]> {
  const results: ApplyResult[] = [];
  for (const o of objects) {
    const path = `/api/v1/${KINDS.find((k) => k.kind === o.kind)!.path}/${encodeURIComponent(o.name)}`;
    const ref = `${o.kind.toLowerCase()}/${o.name}`;
    let current: Record<string, unknown> | undefined;
    try {
      current = await client.call<Record<string, unknown>>('GET', path);
    } catch (e) {
      if (!(e instanceof ApiClientError && e.status === 404)) throw e;
    }
    let result: ApplyResult;
    if (!current) {
      if (!dryRun) await client.call('POST', path.slice(0, path.lastIndexOf('/')), o.body);
      result = { ref, action: 'created', changes: Object.entries(o.body).map(([field, to]) => ({ field, from: undefined, to })) };
    } else {
      const changes = diffObject(o.body, current);
      if (changes.length && !dryRun) {
        await client.call('PATCH', path, Object.fromEntries(changes.map((c) => [c.field, c.to])), { 'if-match': `"${String(current.updatedAt)}"` });
      }
      result = { ref, action: changes.length ? 'configured' : 'unchanged', changes };
    }
    results.push(result);
    onResult(result);
  }
  return results;
}

const show = (v: unknown) => (v === undefined ? '(none)' : JSON.stringify(v));

/** kubectl-style lines: `machine/m1 configured` and, for a dry run or --diff, each changed field. */
export function formatResult(r: ApplyResult, opts: { dryRun: boolean; diff: boolean }): string {
  const lines = [`${r.ref} ${r.action}${opts.dryRun ? ' (dry run)' : ''}`];
  if (opts.diff && r.action !== 'unchanged') {
    for (const c of r.changes) {
      if (r.action === 'created') lines.push(`  + ${c.field}: ${show(c.to)}`);
      else lines.push(`  - ${c.field}: ${show(c.from)}`, `  + ${c.field}: ${show(c.to)}`);
    }
  }
  return lines.join('\n') + '\n';
}
