import { createRoute, type OpenAPIHono } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { z } from 'zod';
import { BootDeviceRequest, PowerRequest } from '../../shared/api/bmc.js';
import { ErrorBody } from '../../shared/api/common.js';
import type { Machine } from '../../shared/api/resources.js';
import { requirePermission } from '../api/auth-middleware.js';
import { lookupScoped } from '../api/crud.js';
import type { ApiDeps } from '../api/deps.js';
import { scopeOf } from '../auth/scope.js';
import type { TokenDoc } from '../auth/tokens.js';
import { MACHINES } from '../machines/resources.js';
import type { TaskDoc } from '../tasks/service.js';
import type { PowerService } from './service.js';

const json = (schema: z.ZodType) => ({ 'application/json': { schema } });
const err = (description: string) => ({ description, content: json(ErrorBody) });
const Ref = z.object({ ref: z.string().min(1).max(128).describe('machine id or name') });
const PowerAccepted = z
  .object({ machine: z.string(), task: z.object({ id: z.string(), kind: z.string(), state: z.string() }) })
  .meta({ id: 'PowerAccepted', description: 'The signed task queued for the machine’s agent; follow it with GET /tasks/{id}' });

/** `POST /machines/{ref}/power` and `/boot-device`: operator writes, scoped to the token's site. */
export function registerPowerRoutes(app: OpenAPIHono, deps: ApiDeps, power: () => PowerService): void {
  const write = requirePermission(deps.tokens, 'write');
  const security = [{ bearer: [] }];
  const tags = ['Machines'];
  const machineOf = (c: Context, ref: string) => lookupScoped<Machine>(deps, MACHINES, 'machine', ref, scopeOf(c));
  const caller = (c: Context) => ({ tokenId: (c.get('token') as TokenDoc | undefined)?.id });
  const accepted = (c: Context, m: Machine, t: TaskDoc) => c.json({ machine: m.name, task: { id: t.id, kind: t.kind, state: t.state } }, 202);
  const errors = { 400: err('Invalid request'), 401: err('Missing or invalid bearer token'), 403: err('The token’s role or site does not allow this'), 404: err('No such machine'), 409: err('The machine has no BMC, or its site has no agent'), 413: err('Body too large'), 415: err('Body must be application/json') };

  app.openapi(
    createRoute({
      method: 'post', path: '/api/v1/machines/{ref}/power', tags, security, operationId: 'power_machine',
      summary: 'Power on, off, cycle, reset or read the status through the machine’s BMC (a signed power task for its agent)',
      middleware: [write] as const,
      request: { params: Ref, body: { content: json(PowerRequest), required: true } },
      responses: { 202: { description: 'Queued', content: json(PowerAccepted) }, ...errors },
    }),
    async (c) => {
      const m = machineOf(c, c.req.valid('param').ref);
      return accepted(c, m, await power().power(m.id, (c.req.valid('json') as z.infer<typeof PowerRequest>).action, caller(c)));
    },
  );

  app.openapi(
    createRoute({
      method: 'post', path: '/api/v1/machines/{ref}/boot-device', tags, security, operationId: 'boot_device_machine',
      summary: 'Set the next boot device (pxe or disk; once or persistent) through the machine’s BMC',
      middleware: [write] as const,
      request: { params: Ref, body: { content: json(BootDeviceRequest), required: true } },
      responses: { 202: { description: 'Queued', content: json(PowerAccepted) }, ...errors },
    }),
    async (c) => {
      const m = machineOf(c, c.req.valid('param').ref);
      const b = c.req.valid('json') as z.infer<typeof BootDeviceRequest>;
      return accepted(c, m, await power().bootDevice(m.id, b.device, b.persistent, caller(c)));
    },
  );
}
