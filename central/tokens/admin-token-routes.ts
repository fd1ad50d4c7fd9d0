import { createRoute, type OpenAPIHono } from '@hono/zod-openapi';
import { z } from 'zod';
import { ErrorBody } from '../../shared/api/common.js';
import { AdminTokenRotate, AdminTokenRotated } from '../../shared/api/resources.js';
import { ApiError } from '../api/api-error.js';
import type { ApiDeps } from '../api/deps.js';
import { AdminTokenConflictError, AdminTokenFile } from '../auth/admin-token.js';
import { requirePermission, type AuthVariables } from '../api/auth-middleware.js';

const json = (schema: z.ZodType) => ({ 'application/json': { schema } });
const err = (d: string) => ({ description: d, content: json(ErrorBody) });

/** POST /api/v1/admin-token/rotate: what `underlay central rotate-admin-token` calls. */
export function registerAdminTokenRoutes(app: OpenAPIHono, deps: ApiDeps): void {
  const file = new AdminTokenFile(deps.dataDir, deps.store, deps.tokens, deps.logger);
  app.openapi(
    createRoute({
      method: 'post', path: '/api/v1/admin-token/rotate', tags: ['Tokens'], security: [{ bearer: ['admin'] }], operationId: 'rotate_admin_token',
      summary: "Replace the central's own admin token (DATA/admin.token): the token in the file is revoked, a new one is written there and returned once",
      middleware: [requirePermission(deps.tokens, 'admin', { unscoped: 'rotating the admin token' })] as const,
      request: { body: { content: json(AdminTokenRotate), required: true } },
      responses: {
        200: { description: 'Rotated', content: json(AdminTokenRotated) }, 400: err('invalid body'), 401: err('unauthenticated'),
        403: err('forbidden (not an admin, or a site-scoped admin)'), 409: err('admin.token holds another token than `revoke` names'),
      },
    }),
    async (c) => {
      const caller = (c as unknown as { get: (k: 'token') => AuthVariables['token'] }).get('token');
      if (caller.site) throw new ApiError(403, 'forbidden', 'a site-scoped token may not rotate the central’s admin token');
      const body = c.req.valid('json') as z.infer<typeof AdminTokenRotate>;
      let rotated: Awaited<ReturnType<AdminTokenFile['rotate']>>;
      try {
        rotated = await file.rotate(body.revoke);
      } catch (e) {
        if (e instanceof AdminTokenConflictError) throw ApiError.conflict(e.message);
        throw e;
      }
      const { doc, token, revoked } = rotated;
      return c.json({ ...deps.tokens.view(doc), token, revokedId: revoked?.id ?? null } as never, 200);
    },
  );
}
