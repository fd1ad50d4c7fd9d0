import { createRoute, type OpenAPIHono } from '@hono/zod-openapi';
import { z } from 'zod';
import { ErrorBody } from '../../shared/api/common.js';
import type { Machine } from '../../shared/api/resources.js';
import { lookupScoped } from '../api/crud.js';
import type { ApiDeps } from '../api/deps.js';
import { requirePermission } from '../api/auth-middleware.js';
import { MACHINES } from './resources.js';
import { scopeOf } from '../auth/scope.js';

const Rearmed = z
  .object({ id: z.string(), name: z.string(), secretsGeneration: z.number().int() })
  .meta({ id: 'MachineRearmed', description: 'The machine’s new secrets generation (reaches its agent in the desired state).' });

/**
 * `POST /api/v1/machines/{ref}/rearm`: lets the machine's agent serve a configuration that carries
 * secrets once more. The agent serves such a config to one boot session per `secretsGeneration` and
 * refuses later sessions (410 and an event) until this bumps the generation.
 */
export function registerMachineRearmRoute(app: OpenAPIHono, deps: ApiDeps): void {
  app.openapi(
    createRoute({
      method: 'post', path: '/api/v1/machines/{ref}/rearm', tags: ['Machines'], operationId: 'rearm_machine', security: [{ bearer: [] }],
      summary: 'Re-arm a machine’s secrets: its next boot session may receive its secret-carrying configs once',
      middleware: [requirePermission(deps.tokens, 'write')] as const,
      request: { params: z.object({ ref: z.string().max(128) }) },
      responses: {
        200: { description: 'Re-armed', content: { 'application/json': { schema: Rearmed } } },
        401: { description: 'unauthenticated', content: { 'application/json': { schema: ErrorBody } } },
        403: { description: 'forbidden', content: { 'application/json': { schema: ErrorBody } } },
        404: { description: 'not found', content: { 'application/json': { schema: ErrorBody } } },
      },
    }),
    async (c) => {
      const before = lookupScoped<Machine>(deps, MACHINES, 'machine', c.req.valid('param').ref, scopeOf(c));
      const doc: Machine = { ...before, secretsGeneration: (before.secretsGeneration ?? 0) + 1, updatedAt: new Date().toISOString() };
      await deps.store.put(MACHINES, doc);
      return c.json({ id: doc.id, name: doc.name, secretsGeneration: doc.secretsGeneration! }, 200);
    },
  );
}
