import { createRoute, type OpenAPIHono } from '@hono/zod-openapi';
import { z } from 'zod';
import { ErrorBody } from '../../shared/api/common.js';
import { ImageRef } from '../../shared/api/images.js';
import type { ApiDeps } from '../api/deps.js';
import { requirePermission } from '../api/auth-middleware.js';
import type { ArtifactCatalog } from './catalog.js';
import type { ArtifactFiles } from './store.js';

const ImageRefDoc = ImageRef.meta({ id: 'ImageRef', description: 'A disk image: the artifact agents serve (sha256, size, format) and the raw disk it decompresses to.' });
const Name = z.object({ name: z.string().min(1).max(128) });

/** Disk images are named artifacts (`underlay images push`): list, show, delete. Uploads go through PUT /artifacts. */
export function registerImageRoutes(app: OpenAPIHono, deps: ApiDeps, files: ArtifactFiles, catalog: ArtifactCatalog): void {
  const read = requirePermission(deps.tokens, 'read');
  const json = (schema: z.ZodType) => ({ 'application/json': { schema } });
  const err = (d: string) => ({ description: d, content: json(ErrorBody) });
  const tags = ['Images'];
  const security = [{ bearer: [] }];

  app.openapi(
    createRoute({
      method: 'get', path: '/api/v1/images', tags, security, operationId: 'list_images', summary: 'List disk images',
      middleware: [read] as const,
      responses: { 200: { description: 'Images', content: json(z.object({ items: z.array(ImageRefDoc) })) }, 401: err('unauthenticated'), 403: err('forbidden') },
    }),
    (c) => c.json({ items: catalog.images() }, 200),
  );

  app.openapi(
    createRoute({
      method: 'get', path: '/api/v1/images/{name}', tags, security, operationId: 'get_image', summary: 'Show a disk image',
      middleware: [read] as const, request: { params: Name },
      responses: { 200: { description: 'Image', content: json(ImageRefDoc) }, 401: err('unauthenticated'), 403: err('forbidden'), 404: err('no such image') },
    }),
    (c) => c.json(catalog.image(c.req.valid('param').name), 200),
  );

  app.openapi(
    createRoute({
      method: 'delete', path: '/api/v1/images/{name}', tags, security, operationId: 'delete_image', summary: 'Delete a disk image nothing uses (its record and its bytes)',
      middleware: [requirePermission(deps.tokens, 'write', { unscoped: 'deleting an image (images are global)' })] as const, request: { params: Name },
      responses: { 204: { description: 'Deleted' }, 401: err('unauthenticated'), 403: err('forbidden'), 404: err('no such image'), 409: err('in use') },
    }),
    async (c) => {
      const ref = await catalog.deleteImage(c.req.valid('param').name);
      await files.remove(ref.sha256);
      return c.body(null, 204);
    },
  );
}
