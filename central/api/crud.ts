import { createRoute, type OpenAPIHono } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { z } from 'zod';
import { ErrorBody, ListQueryParams, pageOf } from '../../shared/api/common.js';
import { newId } from '../auth/tokens.js';
import { requirePermission } from './auth-middleware.js';
import { requireVisible, requireWritableSite, scopedWhere, scopeOf, type Scope } from '../auth/scope.js';
import type { Doc, ListQuery, Store } from '../store/types.js';
import { ApiError } from './api-error.js';
import { ConflictError } from '../../shared/errors/domain-errors.js';
import { expandMergePatch, isMergePatch, MERGE_PATCH_TYPE } from './merge-patch.js';
import type { ApiDeps } from './deps.js';

/**
 * Documents of another resource that name one of this resource by its name (machines name their site
 * and profiles): such a document is in use and can be neither deleted nor renamed. The referring
 * feature exports it and central/features.ts hands it over, so the referred-to folder need not know it.
 */
export interface Referrer {
  /** Singular noun of the referring documents, e.g. "machine". */
  noun: string;
  /** How many of them name `name`. */
  count(store: Store, name: string): number;
}

/** Everything that makes one resource (sites, machines, profiles, params …) differ from the next. */
export interface ResourceSpec<D extends Doc> {
  collection: string;
  /** URL segment, e.g. "sites". */
  path: string;
  /** Singular, for messages and operation ids, e.g. "site". */
  label: string;
  tag: string;
  schema: z.ZodType<D>;
  createSchema: z.ZodType;
  patchSchema: z.ZodType;
  /** Extra list filters (query parameters) and how they map to store equality filters. */
  filters?: z.ZodObject;
  toWhere?: (query: Record<string, string | undefined>) => ListQuery['where'];
  /** Fields the list's `?q=` text searches (case-insensitive substring); no `q` without them. */
  searchFields?: string[];
  /** Builds a new document from a validated create body. */
  build: (input: Record<string, unknown>, ids: { id: string; now: string }) => D;
  /** Applies a validated patch; `null` in a patch removes an optional field. */
  merge?: (doc: D, patch: Record<string, unknown>, now: string) => D;
  /** Referential checks against the store; throw ApiError. */
  check?: (doc: D, deps: ApiDeps, before?: D) => void;
  beforeDelete?: (doc: D, deps: ApiDeps) => void;
  /** Last step before a write (after check): e.g. sealing secret param values. */
  transform?: (doc: D, deps: ApiDeps) => D;
  /** What responses show of a stored document (default: all of it). */
  view?: (doc: D, deps: ApiDeps) => unknown;
  /**
   * Other documents that change with this write, committed in the same durable store commit (e.g.
   * marking a param secret seals its existing values). Throw to refuse the whole write.
   */
  alsoWrite?: (doc: D, deps: ApiDeps, before?: D) => { collection: string; doc: Doc; before: Doc }[];
  /**
   * Site scope (central/auth/scope.ts): the field naming the site a document belongs to ('site', or
   * 'name' for sites themselves). Without it the collection is global: readable by every token, writable
   * only by unscoped ones.
   */
  siteField?: string;
  /** Site-owned collections whose create and delete still need an unscoped token (sites themselves). */
  unscopedCreateDelete?: boolean;
}

const errors = (...codes: number[]) =>
  Object.fromEntries(
    codes.map((c) => [c, { description: HTTP_TEXT[c] ?? 'error', content: { 'application/json': { schema: ErrorBody } } }]),
  );
const HTTP_TEXT: Record<number, string> = {
  400: 'Invalid request (details lists field paths)',
  401: 'Missing or invalid bearer token',
  403: 'The token’s role does not allow this',
  404: 'Not found',
  409: 'Conflicts with an existing object (duplicate name or MAC) or is still referenced',
  413: 'Body too large',
  415: 'Body must be application/json',
};

export function defaultMerge<D extends Doc>(doc: D, patch: Record<string, unknown>, now: string): D {
  const next: Record<string, unknown> = { ...doc };
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete next[k];
    else if (v !== undefined) next[k] = v;
  }
  next.updatedAt = now;
  return next as D;
}

/**
 * Optimistic concurrency for a read-modify-write client (the CLI's `--param`/`--add-mac` merges):
 * `If-Match: "<updatedAt the client read>"` makes the PATCH fail with 409 if the document changed since.
 */
export function requireUnchanged(ifMatch: string | undefined, before: Doc): void {
  if (ifMatch === undefined || ifMatch === '*') return;
  const seen = ifMatch.replace(/^W\//, '').replace(/^"|"$/g, '');
  if (seen !== String((before as { updatedAt?: string }).updatedAt)) throw new ConflictError(`it changed since it was read (If-Match ${ifMatch.slice(0, 64)}); read it again`);
}

/** Finds a document by id or by name. */
export function lookup<D extends Doc>(deps: ApiDeps, collection: string, label: string, ref: string): D {
  const doc = deps.store.get<D>(collection, ref) ?? deps.store.findUnique<D>(collection, 'name', ref);
  if (!doc) throw ApiError.notFound(label, ref);
  return doc;
}

/** Writes a document and what changes with it (spec.alsoWrite) in one store commit (the store announces each). */
async function commitWith<D extends Doc>(deps: ApiDeps, spec: ResourceSpec<D>, doc: D, before?: D): Promise<void> {
  const also = spec.alsoWrite?.(doc, deps, before) ?? [];
  await deps.store.commit([{ type: 'put', collection: spec.collection, doc }, ...also.map((a) => ({ type: 'put' as const, collection: a.collection, doc: a.doc }))]);
}

/** Finds a document by id or name that the caller's site scope may see (else 404). */
export function lookupScoped<D extends Doc>(deps: ApiDeps, collection: string, label: string, ref: string, scope: Scope, siteField = 'site'): D {
  const doc = lookup<D>(deps, collection, label, ref);
  requireVisible(scope, doc[siteField], label, ref);
  return doc;
}

/** Registers list/get/create/patch/delete with OpenAPI documentation for one resource. */
export function registerCrud<D extends Doc>(app: OpenAPIHono, deps: ApiDeps, spec: ResourceSpec<D>): void {
  const read = requirePermission(deps.tokens, 'read');
  const write = requirePermission(deps.tokens, 'write');
  // Global collections (no siteField) are changed only by unscoped tokens; sites are created and deleted only by them.
  const writeGlobal = requirePermission(deps.tokens, 'write', { unscoped: spec.siteField ? `creating or deleting ${spec.path}` : `changing ${spec.path} (global objects)` });
  const createOrDelete = spec.siteField && !spec.unscopedCreateDelete ? write : writeGlobal;
  const change = spec.siteField ? write : writeGlobal;
  const Ref = z.object({ ref: z.string().min(1).max(128).describe(`${spec.label} id or name`) });
  const base = `/api/v1/${spec.path}`;
  const json = (schema: z.ZodType) => ({ 'application/json': { schema } });
  const withFilters = spec.filters ? ListQueryParams.extend(spec.filters.shape) : ListQueryParams;
  const query = spec.searchFields
    ? withFilters.extend({ q: z.string().max(128).optional().describe(`text contained (any case) in one of: ${spec.searchFields.join(', ')}`) })
    : withFilters;
  const security = [{ bearer: [] }];
  const find = (c: Context, ref: string): D =>
    spec.siteField ? lookupScoped<D>(deps, spec.collection, spec.label, ref, scopeOf(c), spec.siteField) : lookup<D>(deps, spec.collection, spec.label, ref);

  app.openapi(
    createRoute({
      method: 'get',
      path: base,
      tags: [spec.tag],
      operationId: `list_${spec.path}`,
      summary: `List ${spec.path}`,
      security,
      middleware: [read] as const,
      request: { query: query.loose() },
      responses: { 200: { description: `A page of ${spec.path}`, content: json(pageOf(spec.schema, pageSchemaName(spec.path))) }, ...errors(400, 401, 403) },
    }),
    (c) => {
      const q = c.req.valid('query') as { limit: number; offset: number } & Record<string, string | undefined>;
      const filters = spec.toWhere ? spec.toWhere({ ...c.req.query() }) : undefined;
      const where = spec.siteField ? scopedWhere(scopeOf(c), filters, spec.siteField) : filters;
      const text = spec.searchFields ? q.q?.trim() : undefined;
      const search = text ? { text, fields: spec.searchFields! } : undefined;
      const page = deps.store.list<D>(spec.collection, { where, limit: q.limit, offset: q.offset, ...(search ? { search } : {}) });
      return c.json((spec.view ? { ...page, items: page.items.map((d) => spec.view!(d, deps)) } : page) as never, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: `${base}/{ref}`,
      tags: [spec.tag],
      operationId: `get_${spec.label}`,
      summary: `Show one ${spec.label}`,
      security,
      middleware: [read] as const,
      request: { params: Ref },
      responses: { 200: { description: `The ${spec.label}`, content: json(spec.schema) }, ...errors(401, 403, 404) },
    }),
    (c) => {
      const doc = find(c, c.req.valid('param').ref);
      return c.json((spec.view ? spec.view(doc, deps) : doc) as never, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'post',
      path: base,
      tags: [spec.tag],
      operationId: `create_${spec.label}`,
      summary: `Create a ${spec.label}`,
      security,
      middleware: [createOrDelete] as const,
      request: { body: { content: json(spec.createSchema), required: true } },
      responses: { 201: { description: `The created ${spec.label}`, content: json(spec.schema) }, ...errors(400, 401, 403, 409, 413, 415) },
    }),
    async (c) => {
      const now = new Date().toISOString();
      let doc = spec.build(c.req.valid('json') as Record<string, unknown>, { id: newId(), now });
      if (spec.siteField) requireWritableSite(scopeOf(c), doc[spec.siteField]);
      spec.check?.(doc, deps);
      if (spec.transform) doc = spec.transform(doc, deps);
      await commitWith(deps, spec, doc);
      return c.json((spec.view ? spec.view(doc, deps) : doc) as never, 201);
    },
  );

  app.openapi(
    createRoute({
      method: 'patch',
      path: `${base}/{ref}`,
      tags: [spec.tag],
      operationId: `update_${spec.label}`,
      summary: `Update a ${spec.label} (fields given replace, or merge as application/merge-patch+json; null removes; If-Match: "<updatedAt>" refuses with 409 if it changed since)`,
      security,
      middleware: [change] as const,
      request: { params: Ref, body: { content: { ...json(spec.patchSchema), [MERGE_PATCH_TYPE]: { schema: spec.patchSchema } }, required: true } },
      responses: { 200: { description: `The updated ${spec.label}`, content: json(spec.schema) }, ...errors(400, 401, 403, 404, 409, 413, 415) },
    }),
    async (c) => {
      const before = find(c, c.req.valid('param').ref);
      requireUnchanged(c.req.header('if-match'), before);
      const body = c.req.valid('json') as Record<string, unknown>;
      const patch = isMergePatch(c.req.header('content-type')) ? expandMergePatch(before as Record<string, unknown>, body) : body;
      let next = (spec.merge ?? defaultMerge)(before, patch, new Date().toISOString());
      if (spec.siteField) requireWritableSite(scopeOf(c), next[spec.siteField]);
      spec.check?.(next, deps, before);
      if (spec.transform) next = spec.transform(next, deps);
      await commitWith(deps, spec, next, before);
      return c.json((spec.view ? spec.view(next, deps) : next) as never, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'delete',
      path: `${base}/{ref}`,
      tags: [spec.tag],
      operationId: `delete_${spec.label}`,
      summary: `Delete a ${spec.label}`,
      security,
      middleware: [createOrDelete] as const,
      request: { params: Ref },
      responses: { 204: { description: 'Deleted' }, ...errors(401, 403, 404, 409) },
    }),
    async (c) => {
      const doc = find(c, c.req.valid('param').ref);
      spec.beforeDelete?.(doc, deps);
      await deps.store.delete(spec.collection, doc.id);
      return c.body(null, 204);
    },
  );
}

/** The OpenAPI name of a resource's list page: one per resource path (`group-rules` → `GroupRulesPage`), a valid component name. */
export function pageSchemaName(path: string): string {
  return `${path.split(/[^A-Za-z0-9]+/).map((w) => w.charAt(0).toUpperCase() + w.slice(1)).join('')}Page`;
}
