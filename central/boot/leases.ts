import { createRoute, type OpenAPIHono } from '@hono/zod-openapi';
import { z } from 'zod';
import { Lease } from '../../shared/api/boot.js';
import { ErrorBody, ListQueryParams, pageOf } from '../../shared/api/common.js';
import { LeaseEventSchema } from '../../shared/dhcp/config.js';
import type { Logger } from '../../shared/log/logger.js';
import type { ApiDeps } from '../api/deps.js';
import { requirePermission } from '../api/auth-middleware.js';
import { scopedWhere, scopeOf } from '../auth/scope.js';
import type { EventHandler } from '../api/feature.js';
import { MACHINES } from '../machines/resources.js';
import type { Store } from '../store/types.js';
import type { Machine } from '../../shared/api/resources.js';

export const LEASES = 'leases';

/** Lease events from agents land here: one record per site and address, the latest state wins. */
export function leaseEventHandler(store: Store, logger: Logger): EventHandler {
  return async (agent, ev) => {
    const parsed = LeaseEventSchema.safeParse(ev.data);
    if (!parsed.success) {
      logger.warn({ agent: agent.id }, 'malformed lease event; ignored');
      return;
    }
    const l = parsed.data;
    // The agent that leased a machine serves it: its tasks go there (central/tasks/service.ts pickAgent).
    const m = l.type === 'lease' ? store.findUnique<Machine>(MACHINES, 'mac', l.mac.toLowerCase()) : undefined;
    if (m && m.site === agent.site && m.servedBy !== agent.id) {
      const next = { ...m, servedBy: agent.id, updatedAt: new Date().toISOString() };
      await store.put(MACHINES, next);
    }
    await store.put(LEASES, {
      id: `${agent.site}/${l.address}`,
      site: agent.site,
      agent: agent.id,
      mac: l.mac,
      address: l.address,
      ...(l.hostname ? { hostname: l.hostname } : {}),
      subnet: l.subnet,
      state: l.type,
      expiresAt: l.expiresAt,
      updatedAt: ev.at,
    });
  };
}

export function registerLeaseRoutes(app: OpenAPIHono, deps: ApiDeps): void {
  const json = (schema: z.ZodType) => ({ 'application/json': { schema } });
  app.openapi(
    createRoute({
      method: 'get', path: '/api/v1/leases', tags: ['Subnets'], operationId: 'list_leases', security: [{ bearer: [] }],
      summary: 'DHCP leases as the site agents report them',
      middleware: [requirePermission(deps.tokens, 'read')] as const,
      request: { query: ListQueryParams.extend({ site: z.string().optional(), mac: z.string().optional(), state: z.string().optional() }) },
      responses: { 200: { description: 'Leases', content: json(pageOf(Lease, 'LeasePage')) }, 401: { description: 'unauthenticated', content: json(ErrorBody) }, 403: { description: 'forbidden', content: json(ErrorBody) } },
    }),
    (c) => {
      const q = c.req.valid('query');
      const where: Record<string, string> = {};
      if (q.site) where.site = q.site;
      if (q.mac) where.mac = q.mac.toLowerCase();
      if (q.state) where.state = q.state;
      return c.json(deps.store.list(LEASES, { where: scopedWhere(scopeOf(c), where), limit: q.limit, offset: q.offset, sort: 'address' }) as never, 200);
    },
  );
}
