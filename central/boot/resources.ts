import { z } from 'zod';
import { BootEnvDoc, Reservation, ReservationCreate, Subnet, SubnetCreate, Template, TemplateCreate } from '../../shared/api/boot.js';
import { BootEnvSchema } from '../../shared/bootenv/schema.js';
import { checkBootEnvTemplates } from '../../shared/bootenv/check.js';
import { inCidr, parseCidr } from '../../shared/dhcp/ip.js';
import { ApiError } from '../api/api-error.js';
import { defaultMerge, type ResourceSpec } from '../api/crud.js';
import type { ApiDeps } from '../api/deps.js';
import type { Doc } from '../store/types.js';
import { MACHINES } from '../machines/resources.js';
import { SITES } from '../sites/resources.js';

type SubnetDoc = Doc & z.infer<typeof Subnet>;
type ReservationDoc = Doc & z.infer<typeof Reservation>;
type BootEnvDocT = Doc & z.infer<typeof BootEnvDoc>;
type TemplateDoc = Doc & z.infer<typeof Template>;

const requireSite = (site: string, deps: ApiDeps) => {
  if (!deps.store.findUnique(SITES, 'name', site)) throw ApiError.badRequest(`site "${site}" does not exist`, [{ path: 'site', message: 'unknown site' }]);
};
const reparse = <T>(schema: z.ZodType<T>, value: unknown): T => {
  const r = schema.safeParse(value);
  if (!r.success) {
    const details = r.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message }));
    throw ApiError.badRequest(details.map((d) => `${d.path}: ${d.message}`).join('; '), details);
  }
  return r.data;
};

/**
 * Merge for resources whose create schema has cross-field rules: apply the patch, then validate the whole
 * result against the create schema again (a patch cannot break a rule), keeping the stored-only fields
 * and re-deriving the ones computed from the body (e.g. a subnet's name).
 */
function mergeRevalidated<D extends Doc>(schema: z.ZodType, stored: readonly string[], derive: (body: Record<string, unknown>) => Record<string, unknown> = () => ({})) {
  return (doc: D, patch: Record<string, unknown>, now: string): D => {
    const merged = defaultMerge(doc, patch, now) as Record<string, unknown>;
    const body = Object.fromEntries(Object.entries(merged).filter(([k]) => !stored.includes(k)));
    const kept = Object.fromEntries(Object.entries(merged).filter(([k]) => stored.includes(k)));
    const valid = reparse(schema, body) as Record<string, unknown>;
    return { ...kept, ...valid, ...derive(valid) } as D;
  };
}

export const subnetsResource: ResourceSpec<SubnetDoc> = {
  collection: 'subnets',
  path: 'subnets',
  siteField: 'site',
  label: 'subnet',
  tag: 'Subnets',
  schema: Subnet as unknown as z.ZodType<SubnetDoc>,
  createSchema: SubnetCreate,
  patchSchema: z.record(z.string(), z.unknown()),
  filters: z.object({ site: z.string().optional() }),
  toWhere: (q) => (q.site ? { site: q.site } : undefined),
  build: (input, { id, now }) => ({ id, name: `${input.site}/${input.cidr}`, ...input, createdAt: now, updatedAt: now }) as SubnetDoc,
  merge: mergeRevalidated<SubnetDoc>(SubnetCreate, ['id', 'name', 'createdAt', 'updatedAt'], (b) => ({ name: `${b.site}/${b.cidr}` })),
  check: (s, deps) => {
    requireSite(s.site, deps);
    const cidr = parseCidr(s.cidr);
    for (const other of deps.store.list<SubnetDoc>('subnets', { where: { site: s.site } }).items) {
      if (other.id === s.id) continue;
      const o = parseCidr(other.cidr);
      if (inCidr(other.range.start, cidr) || inCidr(s.range.start, o)) throw ApiError.conflict(`subnet ${s.cidr} overlaps ${other.cidr} at site ${s.site}`);
    }
  },
};

export const reservationsResource: ResourceSpec<ReservationDoc> = {
  collection: 'reservations',
  path: 'reservations',
  siteField: 'site',
  label: 'reservation',
  tag: 'Subnets',
  schema: Reservation as unknown as z.ZodType<ReservationDoc>,
  createSchema: ReservationCreate,
  patchSchema: z.object({ address: z.string().optional(), hostname: z.string().nullable().optional() }).strict(),
  filters: z.object({ site: z.string().optional(), mac: z.string().optional() }),
  toWhere: (q) => ({ ...(q.site ? { site: q.site } : {}), ...(q.mac ? { mac: q.mac.toLowerCase() } : {}) }),
  build: (input, { id, now }) => ({ id, name: `${input.site}/${input.mac}`, ...input, createdAt: now, updatedAt: now }) as ReservationDoc,
  merge: mergeRevalidated<ReservationDoc>(ReservationCreate, ['id', 'name', 'createdAt', 'updatedAt'], (b) => ({ name: `${b.site}/${b.mac}` })),
  check: (r, deps) => {
    requireSite(r.site, deps);
    const subnets = deps.store.list<SubnetDoc>('subnets', { where: { site: r.site } }).items;
    if (subnets.length > 0 && !subnets.some((s) => inCidr(r.address, parseCidr(s.cidr)))) {
      throw ApiError.badRequest(`${r.address} is in none of site ${r.site}'s subnets`, [{ path: 'address', message: 'outside every subnet' }]);
    }
  },
};

export const bootenvsResource: ResourceSpec<BootEnvDocT> = {
  collection: 'bootenvs',
  path: 'bootenvs',
  label: 'bootenv',
  tag: 'Boot environments',
  schema: BootEnvDoc as unknown as z.ZodType<BootEnvDocT>,
  createSchema: BootEnvSchema,
  patchSchema: z.record(z.string(), z.unknown()),
  build: (input, { id, now }) => ({ id, ...input, createdAt: now, updatedAt: now }) as BootEnvDocT,
  merge: mergeRevalidated<BootEnvDocT>(BootEnvSchema, ['id', 'createdAt', 'updatedAt']),
  check: (env, deps) => {
    const snippets = Object.fromEntries(deps.store.list<TemplateDoc>('templates').items.map((t) => [t.name, t.text]));
    const problems = checkBootEnvTemplates(env as never, snippets);
    if (problems.length > 0) throw ApiError.badRequest(`boot environment ${env.name} has template errors: ${problems.join('; ')}`, problems.map((p) => ({ path: 'templates', message: p })));
  },
  beforeDelete: (env, deps) => {
    const used = deps.store.list(MACHINES, { where: { bootenv: env.name }, limit: 1 }).total;
    if (used > 0) throw ApiError.conflict(`boot environment ${env.name} is used by ${used} machine(s)`);
  },
};

export const templatesResource: ResourceSpec<TemplateDoc> = {
  collection: 'templates',
  path: 'templates',
  label: 'template',
  tag: 'Boot environments',
  schema: Template as unknown as z.ZodType<TemplateDoc>,
  createSchema: TemplateCreate,
  patchSchema: TemplateCreate.partial().strict(),
  build: (input, { id, now }) => ({ id, ...input, createdAt: now, updatedAt: now }) as TemplateDoc,
};
