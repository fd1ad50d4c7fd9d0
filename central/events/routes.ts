import { createRoute, type OpenAPIHono } from '@hono/zod-openapi';
import { z } from 'zod';
import { ErrorBody } from '../../shared/api/common.js';
import { EventPage } from '../../shared/api/events.js';
import { InvalidError } from '../../shared/errors/domain-errors.js';
import { parseDuration } from '../../shared/util/duration.js';
import { requirePermission } from '../api/auth-middleware.js';
import type { ApiDeps } from '../api/deps.js';
import { scopeOf } from '../auth/scope.js';
import { queryEvents, watchEvents, type EventQuery } from './query.js';

const json = (schema: z.ZodType) => ({ 'application/json': { schema } });
const err = (description: string) => ({ description, content: json(ErrorBody) });

/** The longest a watch request waits for the next record (the CLI asks again). */
export const MAX_WATCH_WAIT_MS = 5 * 60_000;

const EventsQuery = z.object({
  object: z.string().max(200).optional().describe('records about one object: KIND/NAME, e.g. machine/m1, site/dc1, agent/ID'),
  kind: z.string().max(64).optional().describe('one kind: api-write (the audit log), lease, discovery, boot-claim-refused, task-rejected …'),
  since: z.string().max(32).optional().describe('only records of the last DURATION, e.g. 1h, 7d'),
  after: z.string().max(200).optional().describe('only records after this cursor (`next` of a previous answer): watch'),
  wait: z.string().max(32).optional().describe('with `after`: wait up to DURATION (at most 5m) for the next record'),
  limit: z.coerce.number().int().min(0).max(1000).default(100),
});

function duration(name: string, v: string): number {
  try {
    return parseDuration(v);
  } catch (e) {
    throw new InvalidError(`${name}: ${(e as Error).message}`, [{ path: name, message: 'not a duration' }]);
  }
}

/** `GET /api/v1/events`: the one event stream (agent events and the audit log of API writes), listed or watched. */
export function registerEventRoutes(app: OpenAPIHono, deps: ApiDeps): void {
  app.openapi(
    createRoute({
      method: 'get', path: '/api/v1/events', tags: ['Events'], security: [{ bearer: [] }], operationId: 'list_events',
      summary: 'The event stream, oldest first: agent events (leases, DHCP declines, boot-token claims, task rejections …) and the audit log of every API write (who, token, route, objects, before/after with secrets masked). With `after` and `wait`: a long-poll watch.',
      middleware: [requirePermission(deps.tokens, 'read')] as const,
      request: { query: EventsQuery },
      responses: { 200: { description: 'Records, oldest first', content: json(EventPage) }, 400: err('Invalid query'), 401: err('Missing or invalid bearer token'), 403: err('The token’s role does not allow this') },
    }),
    async (c) => {
      const p = c.req.valid('query');
      const q: EventQuery = {
        ...(p.object ? { object: p.object } : {}),
        ...(p.kind ? { kind: p.kind } : {}),
        ...(p.since ? { sinceMs: Date.now() - duration('since', p.since) } : {}),
        ...(p.after ? { after: p.after } : {}),
        limit: p.limit,
        scope: scopeOf(c),
      };
      const waitMs = p.after && p.wait ? Math.min(duration('wait', p.wait), MAX_WATCH_WAIT_MS) : 0;
      const page = waitMs > 0 ? await watchEvents(deps.store, deps.changes, q, waitMs, c.req.raw.signal) : queryEvents(deps.store, q);
      return c.json(page as never, 200);
    },
  );
}
