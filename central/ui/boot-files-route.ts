import { createRoute, type OpenAPIHono } from '@hono/zod-openapi';
import { z } from 'zod';
import { ErrorBody } from '../../shared/api/common.js';
import type { Machine } from '../../shared/api/resources.js';
import { requirePermission } from '../api/auth-middleware.js';
import { lookupScoped } from '../api/crud.js';
import type { ApiDeps } from '../api/deps.js';
import { scopeOf } from '../auth/scope.js';
import { MACHINES } from '../machines/resources.js';
import { MASK, previewBootFiles, PREVIEW_TOKEN } from './boot-files.js';

const BootFiles = z
  .object({
    bootenv: z.string().nullable().describe('the boot environment rendered (discovery for a machine that has none), null if none applies'),
    files: z.array(z.object({ path: z.string(), text: z.string().optional(), error: z.string().optional().describe('why the agent would not serve this file') })),
  })
  .meta({ id: 'BootFilePreview', example: { bootenv: 'debian-cloud', files: [{ path: 'boot.ipxe', text: '#!ipxe\nkernel …' }, { path: 'user-data', text: '#cloud-config\npassword: ********' }] } });

const err = (d: string) => ({ description: d, content: { 'application/json': { schema: ErrorBody } } });

/** `GET /api/v1/machines/{ref}/boot-files`: the machine's rendered boot files, secrets masked (central/ui/boot-files.ts). */
export function registerBootFilesRoute(app: OpenAPIHono, deps: ApiDeps): void {
  app.openapi(
    createRoute({
      method: 'get', path: '/api/v1/machines/{ref}/boot-files', tags: ['Machines'], security: [{ bearer: [] }], operationId: 'preview_machine_boot_files',
      summary: 'Preview a machine’s rendered boot files (secrets masked)',
      description: `The iPXE script and every per-machine file of the machine's boot environment as its site agent would render them now, each with the error that would stop it being served. Secret params show as "${MASK}", the single-use boot token as "${PREVIEW_TOKEN}" and the agent's address as a placeholder: the real ones exist only on the agent at boot.`,
      middleware: [requirePermission(deps.tokens, 'read')] as const,
      request: { params: z.object({ ref: z.string().max(128) }) },
      responses: { 200: { description: 'The rendered files', content: { 'application/json': { schema: BootFiles } } }, 401: err('unauthenticated'), 403: err('forbidden'), 404: err('no such machine') },
    }),
    (c) => {
      const m = lookupScoped<Machine & { id: string }>(deps, MACHINES, 'machine', c.req.valid('param').ref, scopeOf(c));
      return c.json(previewBootFiles(deps, m) as never, 200);
    },
  );
}
