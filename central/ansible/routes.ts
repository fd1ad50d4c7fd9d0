import { createRoute, type OpenAPIHono } from '@hono/zod-openapi';
import { z } from 'zod';
import { ErrorBody } from '../../shared/api/common.js';
import { HostVarsSchema, InventoryDocumentSchema, InventoryQuery, type GroupRule } from '../../shared/api/ansible-inventory.js';
import type { Machine, ParamDef, Profile, Site } from '../../shared/api/resources.js';
import type { Service } from '../../shared/api/services.js';
import { ApiError } from '../api/api-error.js';
import { registerCrud } from '../api/crud.js';
import { inScope, requireVisible, scopeOf, type Scope } from '../auth/scope.js';
import type { ApiDeps } from '../api/deps.js';
import { requirePermission } from '../api/auth-middleware.js';
import type { Store } from '../store/types.js';
import { GROUP_RULES, groupRulesResource } from './group-rules.js';
import { IncrementalInventory } from './incremental.js';
import { HostBlockCache, InventoryContext, renderInventoryBody, UnknownGroupError, type InventorySource, type RenderedBody } from './render.js';
import { MACHINES } from '../machines/resources.js';
import { PARAMS } from '../params/resources.js';
import { PROFILES } from '../profiles/resources.js';
import { SERVICES } from '../services/registry.js';
import { SITES } from '../sites/resources.js';
import { SERVICE_CAS } from '../service-pki/resources.js';
import type { ServiceCa } from '../../shared/api/pki.js';

const all = <T>(store: Store, collection: string, present: Record<string, number>): T[] =>
  collection in present ? (store.list(collection).items as unknown as T[]) : [];

/** The store's collections as the renderer wants them (services only when the services feature runs). */
/** The collections the inventory is built from: the render cache is valid while none of them changed. */
export const INVENTORY_SOURCES = [SITES, PROFILES, PARAMS, MACHINES, GROUP_RULES, SERVICES, SERVICE_CAS];

export function sourceFromStore(store: Store, opts: { machines?: boolean } = {}): InventorySource {
  const present = store.counts();
  return {
    sites: all<Site>(store, SITES, present),
    profiles: all<Profile>(store, PROFILES, present),
    params: all<ParamDef>(store, PARAMS, present),
    machines: opts.machines === false ? [] : all<Machine>(store, MACHINES, present),
    rules: all<GroupRule>(store, GROUP_RULES, present),
    services: all<Service>(store, SERVICES, present),
    // Public fields only: the stored document also holds the CA's sealed key.
    cas: all<ServiceCa>(store, SERVICE_CAS, present).map((c) => ({ name: c.name, service: c.service, certificate: c.certificate, fingerprint: c.fingerprint, notAfter: c.notAfter })),
  };
}

/**
 * Rendered documents keyed by (change-feed index of INVENTORY_SOURCES, query). Every acknowledged write to those moves the index, so
 * an entry is valid exactly as long as the index it was rendered at is current; a conditional GET then
 * costs a map lookup and a string compare, no render. A few variants (prefix/site/group) are kept.
 */
export class InventoryCache {
  private index = -1;
  private readonly entries = new Map<string, RenderedBody>();
  /** Serialised hostvars of unchanged machines, reused across renders (filtered views). */
  readonly fragments = new HostBlockCache();
  /** The unfiltered document per group-name prefix, updated per changed machine (incremental.ts). */
  private readonly models = new Map<string, IncrementalInventory>();
  renders = 0;

  constructor(private readonly maxEntries = 32) {}

  /** The incremental model of the unfiltered view with this prefix (a few prefixes are kept). */
  model(prefix: string): IncrementalInventory {
    let m = this.models.get(prefix);
    if (!m) {
      if (this.models.size >= 2) this.models.delete(this.models.keys().next().value!);
      this.models.set(prefix, (m = new IncrementalInventory(prefix)));
    }
    return m;
  }

  get(index: number, key: string, render: () => RenderedBody): RenderedBody {
    if (index !== this.index) {
      this.entries.clear();
      this.index = index;
    }
    let hit = this.entries.get(key);
    if (!hit) {
      hit = render();
      this.renders++;
      if (this.entries.size >= this.maxEntries) this.entries.delete(this.entries.keys().next().value!);
      this.entries.set(key, hit);
    }
    return hit;
  }
}

function matchesEtag(header: string | undefined, etag: string): boolean {
  if (!header) return false;
  if (header.trim() === '*') return true;
  return header.split(',').some((t) => t.trim() === etag);
}

/**
 * What a site-scoped token's inventory is rendered from: its site, its machines, and the service members
 * that run on them (members without a machine are global); unscoped tokens get the whole source.
 */
function scopedSource(src: InventorySource, scope: Scope): InventorySource {
  if (scope === undefined) return src;
  const siteOf = new Map(src.machines.map((m) => [m.name, m.site]));
  return {
    ...src,
    sites: src.sites.filter((s) => inScope(scope, s.name)),
    machines: src.machines.filter((m) => inScope(scope, m.site)),
    services: src.services.map((s) => ({ ...s, members: s.members.filter((m) => !m.machine || inScope(scope, siteOf.get(m.machine))) })),
  };
}

/** A site-scoped token's inventory is its site's (a `site=` naming another site yields no hosts). */
function siteForInventory(scope: Scope, asked: string | undefined): string | undefined {
  if (scope === undefined) return asked;
  return asked === undefined || inScope(scope, asked) ? scope : '\u0000none';
}

export interface InventoryRouteOptions {
  /** Default group-name prefix when the query gives none (UNDERLAY_INVENTORY_PREFIX). */
  defaultPrefix?: string;
}

export function registerAnsibleRoutes(app: OpenAPIHono, deps: ApiDeps, opts: InventoryRouteOptions = {}): InventoryCache {
  registerCrud(app, deps, groupRulesResource);
  const read = requirePermission(deps.tokens, 'read');
  const cache = new InventoryCache();
  // Scoped views render from a filtered source: their host blocks must never mix with unscoped ones.
  const scopedFragments = new HostBlockCache();
  const security = [{ bearer: [] }];
  const err = (description: string) => ({ description, content: { 'application/json': { schema: ErrorBody } } });

  app.openapi(
    createRoute({
      method: 'get',
      path: '/api/v1/inventory',
      tags: ['Inventory'],
      operationId: 'get_inventory',
      summary: "Ansible dynamic inventory (`--list` document with _meta.hostvars); ETag + If-None-Match → 304",
      security,
      middleware: [read] as const,
      request: { query: InventoryQuery, headers: z.object({ 'if-none-match': z.string().optional() }) },
      responses: {
        200: { description: 'The inventory', content: { 'application/json': { schema: InventoryDocumentSchema } } },
        304: { description: 'Unchanged since the ETag given in If-None-Match' },
        401: err('Missing or invalid bearer token'),
        403: err('The token’s role does not allow this'),
        404: err('No such group (`group=`)'),
      },
    }),
    (c) => {
      const q = c.req.valid('query');
      const prefix = q.prefix ?? opts.defaultPrefix ?? '';
      const site = siteForInventory(scopeOf(c), q.site);
      const scope = scopeOf(c);
      const key = `${scope === undefined ? '' : 'scoped'}\0${prefix}\0${site ?? ''}\0${q.group ?? ''}`;
      let rendered: RenderedBody;
      try {
        rendered = cache.get(deps.changes.indexOf(INVENTORY_SOURCES), key, () => {
          const t0 = performance.now();
          // The unfiltered, unscoped document (what Ansible asks for) is kept up to date per write; views render from scratch, reusing host blocks.
          const r =
            scope === undefined && site === undefined && q.group === undefined
              ? cache.model(prefix).render(sourceFromStore(deps.store))
              : renderInventoryBody(scopedSource(sourceFromStore(deps.store), scope), { prefix, site, group: q.group, fragments: scope === undefined ? cache.fragments : scopedFragments });
          deps.logger.debug({ hosts: r.hosts, bytes: r.length, ms: Math.round(performance.now() - t0) }, 'inventory rendered');
          return r;
        });
      } catch (e) {
        if (e instanceof UnknownGroupError) throw ApiError.notFound('group', q.group!);
        throw e;
      }
      c.header('ETag', rendered.etag);
      c.header('Cache-Control', 'no-cache');
      c.header('X-Underlay-Index', String(deps.changes.index));
      if (matchesEtag(c.req.header('if-none-match'), rendered.etag)) return c.body(null, 304);
      // The cached chunks go out as they are (no copy of a document that can be 100+ MB).
      const chunks = rendered.chunks;
      const stream = new ReadableStream<Uint8Array>({
        start(ctrl) {
          for (const ch of chunks) ctrl.enqueue(ch);
          ctrl.close();
        },
      });
      return c.body(stream, 200, { 'content-type': 'application/json; charset=utf-8', 'content-length': String(rendered.length) }) as never;
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/api/v1/inventory/hosts/{name}',
      tags: ['Inventory'],
      operationId: 'get_inventory_host',
      summary: 'Variables of one host (`--host NAME`)',
      security,
      middleware: [read] as const,
      request: { params: z.object({ name: z.string().min(1).max(128) }) },
      responses: {
        200: { description: 'The host’s variables', content: { 'application/json': { schema: HostVarsSchema } } },
        401: err('Missing or invalid bearer token'),
        403: err('The token’s role does not allow this'),
        404: err('No such host'),
      },
    }),
    (c) => {
      const name = c.req.valid('param').name;
      const m = deps.store.findUnique<Machine>(MACHINES, 'name', name);
      if (!m) throw ApiError.notFound('host', name);
      requireVisible(scopeOf(c), m.site, 'host', name);
      const src = scopedSource(sourceFromStore(deps.store, { machines: false }), scopeOf(c));
      return c.json(new InventoryContext(src).hostVars(m) as never, 200);
    },
  );
  return cache;
}
