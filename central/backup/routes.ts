import { createRoute, type OpenAPIHono } from '@hono/zod-openapi';
import { z } from 'zod';
import { ErrorBody } from '../../shared/api/common.js';
import { requirePermission } from '../api/auth-middleware.js';
import type { ApiDeps } from '../api/deps.js';
import { snapshotStore } from './backup.js';

const json = (schema: z.ZodType) => ({ 'application/json': { schema } });
const err = (description: string) => ({ description, content: json(ErrorBody) });

/** `GET /api/v1/backup`: every document at one instant (admin, unscoped). Keys are never served: `underlay central backup` adds them from the data dir. */
export function registerBackupRoutes(app: OpenAPIHono, deps: ApiDeps): void {
  app.openapi(
    createRoute({
      method: 'get', path: '/api/v1/backup', tags: ['Operations'], security: [{ bearer: ['admin'] }], operationId: 'backup',
      summary: 'A consistent copy of the whole store (every collection at one instant) while the central serves; `underlay central backup FILE` adds the identity files and writes it',
      middleware: [requirePermission(deps.tokens, 'admin', { unscoped: 'backing up the whole store' })] as const,
      responses: { 200: { description: 'The backup document', content: json(z.object({ format: z.string(), schemaVersion: z.number(), createdAt: z.string(), collections: z.record(z.string(), z.array(z.unknown())) }).meta({ id: 'Backup' })) }, 401: err('Missing or invalid bearer token'), 403: err('Not an unscoped admin token') },
    }),
    (c) => {
      const b = snapshotStore(deps.store);
      deps.logger.info({ collections: Object.keys(b.collections).length, documents: Object.values(b.collections).reduce((n, d) => n + d.length, 0) }, 'backup taken');
      return c.json(b as never, 200);
    },
  );
}
