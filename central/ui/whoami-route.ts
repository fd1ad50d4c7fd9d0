import { createRoute, type OpenAPIHono } from '@hono/zod-openapi';
import { z } from 'zod';
import { ErrorBody } from '../../shared/api/common.js';
import { requirePermission } from '../api/auth-middleware.js';
import type { ApiDeps } from '../api/deps.js';
import type { TokenDoc } from '../auth/tokens.js';

export const Whoami = z
  .object({
    id: z.string(),
    name: z.string().optional(),
    role: z.enum(['admin', 'operator', 'viewer', 'agent-join']),
    site: z.string().optional().describe('the one site this token sees; absent: every site'),
    expiresAt: z.string().optional(),
  })
  .meta({ id: 'Whoami', example: { id: 'tok_01J9Z', name: 'alice', role: 'operator', site: 'dc1' } });

/**
 * `GET /api/v1/whoami`: the calling token's role and site scope (never its secret). The console signs in
 * with it and shows only the actions the role allows; the API still decides every request itself.
 */
export function registerWhoamiRoute(app: OpenAPIHono, deps: ApiDeps): void {
  app.openapi(
    createRoute({
      method: 'get', path: '/api/v1/whoami', tags: ['Tokens'], security: [{ bearer: [] }], operationId: 'whoami',
      summary: 'Show the calling token’s role and site scope',
      description: 'What the token presented in the Authorization header may do: its role (admin, operator, viewer) and, for a site-scoped token, its site. The secret is never returned.',
      middleware: [requirePermission(deps.tokens, 'read')] as const,
      responses: {
        200: { description: 'The calling token', content: { 'application/json': { schema: Whoami } } },
        401: { description: 'unauthenticated', content: { 'application/json': { schema: ErrorBody } } },
      },
    }),
    (c) => {
      const t = c.get('token') as TokenDoc;
      return c.json({ id: t.id, ...(t.name ? { name: t.name } : {}), role: t.role, ...(t.site ? { site: t.site } : {}), ...(t.expiresAt ? { expiresAt: t.expiresAt } : {}) } as never, 200);
    },
  );
}
