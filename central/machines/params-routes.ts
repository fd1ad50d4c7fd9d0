import { createRoute, type OpenAPIHono } from '@hono/zod-openapi';
import { z } from 'zod';
import { ErrorBody } from '../../shared/api/common.js';
import type { Machine, ParamDef, Profile, Site } from '../../shared/api/resources.js';
import { ParamError, redactSecrets, resolveParams } from '../../shared/params/resolve.js';
import { InvalidError } from '../../shared/errors/domain-errors.js';
import { lookupScoped } from '../api/crud.js';
import { scopeOf } from '../auth/scope.js';
import type { ApiDeps } from '../api/deps.js';
import { requirePermission } from '../api/auth-middleware.js';
import { PARAMS } from '../params/resources.js';
import { GLOBAL_PROFILE, PROFILES } from '../profiles/resources.js';
import { SITES } from '../sites/resources.js';
import { MACHINES } from './resources.js';

const Resolved = z
  .record(z.string(), z.object({ value: z.unknown(), source: z.string(), secret: z.boolean() }))
  .meta({ id: 'ResolvedParams', description: 'Each param’s winning value and where it came from: machine, profile:<name>, site:<name>, global or default. Secret values are masked.' });

/** Resolves a machine's params: machine → its profiles in order → site → global → definition default. */
export function resolveMachineParams(deps: ApiDeps, m: Machine) {
  // Secret values are stored sealed (validated before sealing): resolve them without re-validating.
  const defs = deps.store.list<ParamDef>(PARAMS).items.map((d) => ({ name: d.name, schema: d.secret ? {} : d.schema, default: d.default, secret: d.secret }));
  const profile = (n: string) => deps.store.findUnique<Profile>(PROFILES, 'name', n);
  const site = deps.store.findUnique<Site>(SITES, 'name', m.site);
  return resolveParams(defs, {
    machine: m.params,
    profiles: m.profiles.map(profile).filter((p): p is Profile => !!p).map((p) => ({ name: p.name, params: p.params })),
    site: { name: m.site, params: site?.params ?? {} },
    global: profile(GLOBAL_PROFILE)?.params ?? {},
  });
}

export function registerMachineParamRoutes(app: OpenAPIHono, deps: ApiDeps): void {
  app.openapi(
    createRoute({
      method: 'get', path: '/api/v1/machines/{ref}/params', tags: ['Machines'], operationId: 'get_machine_params', security: [{ bearer: [] }],
      summary: 'A machine’s params: its own, or (resolved=true) every param’s winning value with its source',
      middleware: [requirePermission(deps.tokens, 'read')] as const,
      request: { params: z.object({ ref: z.string().max(128) }), query: z.object({ resolved: z.enum(['true', 'false']).optional() }) },
      responses: {
        200: { description: 'Params', content: { 'application/json': { schema: Resolved } } },
        400: { description: 'A value fails its definition', content: { 'application/json': { schema: ErrorBody } } },
        401: { description: 'unauthenticated', content: { 'application/json': { schema: ErrorBody } } },
        403: { description: 'forbidden', content: { 'application/json': { schema: ErrorBody } } },
        404: { description: 'not found', content: { 'application/json': { schema: ErrorBody } } },
      },
    }),
    (c) => {
      const m = lookupScoped<Machine>(deps, MACHINES, 'machine', c.req.valid('param').ref, scopeOf(c));
      if (c.req.valid('query').resolved !== 'true') {
        const secret = new Set(deps.store.list<ParamDef>(PARAMS).items.filter((d) => d.secret).map((d) => d.name));
        return c.json(Object.fromEntries(Object.entries(m.params).map(([k, v]) => [k, { value: secret.has(k) ? '[secret]' : v, source: 'machine', secret: secret.has(k) }])) as never, 200);
      }
      try {
        return c.json(redactSecrets(resolveMachineParams(deps, m)) as never, 200);
      } catch (e) {
        if (e instanceof ParamError) throw new InvalidError(e.message, [{ path: `params.${e.param}`, message: e.reason }]);
        throw e;
      }
    },
  );
}
