import { createRoute, type OpenAPIHono } from '@hono/zod-openapi';
import { z } from 'zod';
import { ErrorBody } from '../../shared/api/common.js';
import type { Machine } from '../../shared/api/resources.js';
import { AddressLike, BlockingQuery, HealthUpdate, MemberId, MemberRegister, Service, ServiceCreate, ServiceList, ServiceMember, WaitQuery, WaitResult } from '../../shared/api/services.js';
import { parseDuration } from '../../shared/util/duration.js';
import { ApiError } from '../api/api-error.js';
import type { ApiDeps } from '../api/deps.js';
import { requirePermission } from '../api/auth-middleware.js';
import { inScope, requireVisible, requireWritableSite, scopeOf, type Scope } from '../auth/scope.js';
import { ForbiddenError } from '../../shared/errors/domain-errors.js';
import { MAX_WAIT_MS, type ServiceRegistry } from './registry.js';
import { MACHINES } from '../machines/resources.js';

const json = (schema: z.ZodType) => ({ 'application/json': { schema } });
const err = (description: string) => ({ description, content: json(ErrorBody) });
const E401 = err('Missing or invalid bearer token');
const E403 = err('The token’s role does not allow this');
const INDEX_HEADER = 'X-Underlay-Index';
const NameParam = z.object({ name: z.string().min(1).max(63).describe('service name') });
const MemberParams = NameParam.extend({ id: MemberId });

/** `/api/v1/services`: services, members, TTL health, blocking queries and `wait` (cluster linking). */
export function registerServiceRoutes(app: OpenAPIHono, deps: ApiDeps, reg: ServiceRegistry): void {
  const read = requirePermission(deps.tokens, 'read');
  const write = requirePermission(deps.tokens, 'write');
  const writeGlobal = requirePermission(deps.tokens, 'write', { unscoped: 'creating or deleting a service' });
  const security = [{ bearer: [] }];
  const tags = ['Services'];
  /**
   * Services are global (every token sees them; creating and deleting one needs an unscoped token). A
   * site-scoped token sees only the members that run on a machine of its site, and registers,
   * deregisters and heartbeats only those; a member of another site's machine is not found (404), and
   * a member without a machine is changed only by unscoped tokens (403).
   */
  const siteOfMachine = (machine: string | undefined) => (machine ? deps.store.findUnique<Machine>(MACHINES, 'name', machine)?.site : undefined);
  const memberVisible = (scope: Scope) => (m: { machine?: string }) => scope === undefined || !m.machine || inScope(scope, siteOfMachine(m.machine));
  const visibleMembers = <S extends { members: { machine?: string }[] }>(scope: Scope, s: S): S => (scope === undefined ? s : { ...s, members: s.members.filter(memberVisible(scope)) });
  const requireMemberScope = (scope: Scope, machine: string | undefined) => {
    if (scope === undefined) return;
    if (!machine) throw new ForbiddenError(`this token is scoped to site "${scope}": it may only manage members that run on a machine of that site`);
    requireWritableSite(scope, siteOfMachine(machine), `members on machine "${machine}" of site`);
  };
  const requireExistingMemberScope = (scope: Scope, service: string, id: string) => {
    if (scope === undefined) return;
    const member = reg.get(service)?.members.find((m) => m.id === id);
    if (!member) return; // the registry answers 404 itself
    if (member.machine) requireVisible(scope, siteOfMachine(member.machine), 'member', id);
    requireMemberScope(scope, member.machine);
  };
  // While the central shuts down, blocking queries return at once; closing their connections lets the
  // server finish instead of serving a client's immediate retry on the same keep-alive connection.
  app.use('/api/v1/services/*', async (c, next) => {
    await next();
    if (reg.isStopped) c.header('Connection', 'close');
  });
  app.use('/api/v1/services', async (c, next) => {
    await next();
    if (reg.isStopped) c.header('Connection', 'close');
  });

  app.openapi(
    createRoute({
      method: 'get',
      path: '/api/v1/services',
      tags,
      security,
      operationId: 'list_services',
      summary: 'List services (blocking with ?index=N&wait=30s)',
      middleware: [read] as const,
      request: { query: BlockingQuery },
      responses: { 200: { description: 'All services; X-Underlay-Index carries the current index', content: json(ServiceList) }, 400: err('Invalid request'), 401: E401, 403: E403 },
    }),
    async (c) => {
      const q = c.req.valid('query');
      const items = await reg.watchAll(q.index, reg.waitMs(q.wait), c.req.raw.signal);
      c.header(INDEX_HEADER, String(reg.currentIndex()));
      return c.json({ items: items.map((s) => visibleMembers(scopeOf(c), s)), total: items.length, index: reg.currentIndex() } as never, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'post',
      path: '/api/v1/services',
      tags,
      security,
      operationId: 'create_service',
      summary: 'Create a service (registering a member also creates it)',
      middleware: [writeGlobal] as const,
      request: { body: { content: json(ServiceCreate), required: true } },
      responses: { 201: { description: 'The service', content: json(Service) }, 400: err('Invalid request'), 401: E401, 403: E403, 409: err('A service with this name exists') },
    }),
    async (c) => {
      return c.json((await reg.create(c.req.valid('json') as z.infer<typeof ServiceCreate>)) as never, 201);
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/api/v1/services/{name}',
      tags,
      security,
      operationId: 'get_service',
      summary: 'Show a service; blocking query with ?index=N&wait=30s (returns when its index passes N, or at the timeout)',
      middleware: [read] as const,
      request: { params: NameParam, query: BlockingQuery },
      responses: { 200: { description: 'The service; X-Underlay-Index carries its index', content: json(Service) }, 400: err('Invalid request'), 401: E401, 403: E403, 404: err('No such service') },
    }),
    async (c) => {
      const { name } = c.req.valid('param');
      const q = c.req.valid('query');
      const s = await reg.watch(name, q.index, reg.waitMs(q.wait), c.req.raw.signal);
      c.header(INDEX_HEADER, String(s ? s.modifyIndex : reg.currentIndex()));
      if (!s) throw ApiError.notFound('service', name);
      return c.json(visibleMembers(scopeOf(c), s) as never, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'delete',
      path: '/api/v1/services/{name}',
      tags,
      security,
      operationId: 'delete_service',
      summary: 'Delete a service and all its members',
      middleware: [writeGlobal] as const,
      request: { params: NameParam },
      responses: { 204: { description: 'Deleted' }, 401: E401, 403: E403, 404: err('No such service') },
    }),
    async (c) => {
      await reg.delete(c.req.valid('param').name);
      return c.body(null, 204);
    },
  );

  app.openapi(
    createRoute({
      method: 'post',
      path: '/api/v1/services/{name}/members',
      tags,
      security,
      operationId: 'register_service_member',
      summary: 'Register (add or replace) a member; creates the service if needed',
      middleware: [write] as const,
      request: { params: NameParam, body: { content: json(MemberRegister), required: true } },
      responses: {
        200: { description: 'Replaced an existing member', content: json(ServiceMember) },
        201: { description: 'Added a member', content: json(ServiceMember) },
        400: err('Invalid request'),
        401: E401,
        403: E403,
      },
    }),
    async (c) => {
      const { name } = c.req.valid('param');
      if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name)) throw ApiError.badRequest('service names are letters, digits, ".", "_" and "-"', [{ path: 'name', message: 'invalid name' }]);
      const body = c.req.valid('json') as z.infer<typeof MemberRegister>;
      requireMemberScope(scopeOf(c), body.machine);
      if (body.id) requireExistingMemberScope(scopeOf(c), name, body.id);
      if (body.address !== undefined && !AddressLike.safeParse(body.address).success) throw ApiError.badRequest(`address "${body.address}" is not an IP address or host name`, [{ path: 'address', message: 'invalid address' }]);
      for (const [field, v] of [['ttl', body.ttl], ['deregisterCriticalAfter', body.deregisterCriticalAfter]] as const) {
        if (v !== undefined && parseDuration(v) <= 0) throw ApiError.badRequest(`${field} must be positive`, [{ path: field, message: 'must be positive' }]);
      }
      const { member, created } = await reg.register(name, body, (machine) => {
        const m = deps.store.findUnique<Machine>(MACHINES, 'name', machine);
        return m ? (m.address ?? undefined) : null;
      });
      return c.json(member as never, created ? 201 : 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'delete',
      path: '/api/v1/services/{name}/members/{id}',
      tags,
      security,
      operationId: 'deregister_service_member',
      summary: 'Deregister a member',
      middleware: [write] as const,
      request: { params: MemberParams },
      responses: { 204: { description: 'Deregistered' }, 401: E401, 403: E403, 404: err('No such service or member') },
    }),
    async (c) => {
      const p = c.req.valid('param');
      requireExistingMemberScope(scopeOf(c), p.name, p.id);
      await reg.deregister(p.name, p.id);
      return c.body(null, 204);
    },
  );

  for (const [check, status] of [['pass', 'passing'], ['warn', 'warning'], ['fail', 'critical']] as const) {
    app.openapi(
      createRoute({
        method: 'put',
        path: `/api/v1/services/{name}/members/{id}/${check}`,
        tags,
        security,
        operationId: `${check}_service_member`,
        summary: `TTL heartbeat: mark the member ${status} and restart its TTL (stored only when the status changes)`,
        middleware: [write] as const,
        request: { params: MemberParams, body: { content: json(HealthUpdate), required: false } },
        responses: { 200: { description: 'The member', content: json(ServiceMember) }, 400: err('Invalid request'), 401: E401, 403: E403, 404: err('No such service or member') },
      }),
      async (c) => {
        const p = c.req.valid('param');
        requireExistingMemberScope(scopeOf(c), p.name, p.id);
        const body = (c.req.valid('json') ?? {}) as { note?: string };
        return c.json((await reg.reportMemberStatus(p.name, p.id, status, body.note)) as never, 200);
      },
    );
  }

  app.openapi(
    createRoute({
      method: 'get',
      path: '/api/v1/services/{name}/wait',
      tags,
      security,
      operationId: 'wait_service',
      summary: 'Wait until the service has N passing members (cluster linking); 408 at the timeout',
      middleware: [read] as const,
      request: { params: NameParam, query: WaitQuery },
      responses: {
        200: { description: 'The service has enough passing members', content: json(WaitResult) },
        400: err('Invalid request'),
        401: E401,
        403: E403,
        408: err('Timed out; details carry the passing count'),
      },
    }),
    async (c) => {
      const { name } = c.req.valid('param');
      const q = c.req.valid('query');
      const timeout = Math.min(q.timeout ? parseDuration(q.timeout) : 5 * 60_000, MAX_WAIT_MS);
      const r = await reg.waitForPassing(name, q.passing, timeout, c.req.raw.signal, memberVisible(scopeOf(c)));
      c.header(INDEX_HEADER, String(r.index));
      if (!r.satisfied) {
        throw new ApiError(408, 'wait_timeout', `service "${name}" has ${r.passing} of ${q.passing} passing member(s) after ${q.timeout ?? '5m'}`, { passing: r.passing, wanted: q.passing, index: r.index });
      }
      return c.json(r as never, 200);
    },
  );
}
