import { Readable } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import { createRoute, type OpenAPIHono } from '@hono/zod-openapi';
import type { HttpBindings } from '@hono/node-server';
import type { Context } from 'hono';
import { z } from 'zod';
import { ErrorBody, ListQueryParams, pageOf } from '../../shared/api/common.js';
import { ImageFormat } from '../../shared/api/images.js';
import { ApiError } from '../api/api-error.js';
import type { ApiDeps } from '../api/deps.js';
import { requirePermission } from '../api/auth-middleware.js';
import { AGENTS, type AgentDoc } from '../agents/collections.js';
import { parseByteRange } from './byte-range.js';
import { ARTIFACTS, ImageMeta, type ArtifactCatalog, type ArtifactDoc } from './catalog.js';
import { registerImageRoutes } from './image-routes.js';
import { ArtifactFiles, HashMismatch, SHA256_RE } from './store.js';

export { ARTIFACTS, type ArtifactDoc };
export const MAX_ARTIFACT_BYTES = 8 * 1024 * 1024 * 1024;

export const Artifact = z
  .object({ id: z.string(), sha256: z.string(), size: z.number(), urls: z.array(z.string()), name: z.string().optional(), image: ImageMeta.optional(), createdAt: z.string() })
  .meta({ id: 'Artifact', description: 'A boot artifact (kernel, initrd, disk image) stored content-addressed; agents pull it from here. Disk images carry a name and `image`.' });

const Sha = z.object({ sha256: z.string().regex(SHA256_RE, 'lower-case hex sha256') });

const PutQuery = z
  .object({
    url: z.union([z.string(), z.array(z.string())]).optional(),
    name: z.string().max(256).optional(),
    format: ImageFormat.optional(),
    rawSha256: z.string().regex(SHA256_RE, 'lower-case hex sha256').optional(),
    rawSize: z.coerce.number().int().min(512).max(Number.MAX_SAFE_INTEGER).optional(),
    replace: z.enum(['true', 'false']).optional(),
  })
  .refine((q) => [q.format, q.rawSha256, q.rawSize].every((v) => v === undefined) || [q.format, q.rawSha256, q.rawSize].every((v) => v !== undefined), {
    message: 'an image needs all of format, rawSha256 and rawSize',
    path: ['format'],
  });

/** A joined, unrevoked agent presenting its client certificate may download artifacts without a token. */
function agentOf(c: Context, deps: ApiDeps): AgentDoc | undefined {
  const sock = (c.env as HttpBindings | undefined)?.incoming?.socket as TLSSocket | undefined;
  if (!sock || typeof sock.getPeerCertificate !== 'function' || !sock.authorized) return undefined;
  const fp = sock.getPeerCertificate()?.fingerprint256?.replace(/:/g, '').toLowerCase();
  const a = fp ? deps.store.findUnique<AgentDoc>(AGENTS, 'certFingerprint', fp) : undefined;
  return a && !a.revokedAt ? a : undefined;
}

export function registerArtifactRoutes(app: OpenAPIHono, deps: ApiDeps, files: ArtifactFiles, catalog: ArtifactCatalog): void {
  const read = requirePermission(deps.tokens, 'read');
  const json = (schema: z.ZodType) => ({ 'application/json': { schema } });
  const err = (d: string) => ({ description: d, content: json(ErrorBody) });
  const tags = ['Artifacts'];
  const security = [{ bearer: [] }];

  app.openapi(
    createRoute({
      method: 'get', path: '/api/v1/artifacts', tags, security, operationId: 'list_artifacts', summary: 'List stored artifacts',
      middleware: [read] as const, request: { query: ListQueryParams },
      responses: { 200: { description: 'Artifacts', content: json(pageOf(Artifact, 'ArtifactPage')) }, 401: err('unauthenticated'), 403: err('forbidden') },
    }),
    (c) => {
      const q = c.req.valid('query');
      return c.json(deps.store.list(ARTIFACTS, { limit: q.limit, offset: q.offset, sort: 'createdAt' }) as never, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'put', path: '/api/v1/artifacts/{sha256}', tags, security, operationId: 'put_artifact',
      summary: 'Upload an artifact; stored only if its content hashes to {sha256}',
      description:
        'Body: the raw bytes (application/octet-stream), streamed to disk and hashed; nothing is kept unless they hash to {sha256}. ' +
        'Query `url` (repeatable) records where it came from, so boot environments naming that URL are served from the site agent. ' +
        '`name` names it (unique; a relative path such as `discovery/vmlinuz` makes it stand in for that file in every agent\'s boot dir). ' +
        '`format`, `rawSha256`, `rawSize` (all three) make it a disk image (`underlay images push`). `replace=true` moves a name held by other bytes to these.',
      middleware: [requirePermission(deps.tokens, 'write', { unscoped: 'uploading an artifact (artifacts are global)' })] as const,
      request: { params: Sha, query: PutQuery },
      responses: { 201: { description: 'Stored', content: json(Artifact) }, 400: err('hash mismatch or bad body'), 401: err('unauthenticated'), 403: err('forbidden'), 409: err('name held by other bytes'), 413: err('too large') },
    }),
    async (c) => {
      const { sha256 } = c.req.valid('param');
      const q = c.req.valid('query');
      const urls = q.url === undefined ? [] : Array.isArray(q.url) ? q.url : [q.url];
      for (const u of urls) if (!/^https?:\/\//.test(u)) throw ApiError.badRequest(`url "${u}" is not http(s)`, [{ path: 'url', message: 'not http(s)' }]);
      const image = q.format !== undefined ? { format: q.format, rawSha256: q.rawSha256!, rawSize: q.rawSize! } : undefined;
      const rec = { sha256, urls, ...(q.name !== undefined ? { name: q.name } : {}), ...(image ? { image } : {}), replace: q.replace === 'true' };
      catalog.check(rec); // before reading a possibly huge body
      const incoming = (c.env as HttpBindings).incoming;
      let size: number;
      if (files.has(sha256)) {
        incoming.resume();
        size = files.size(sha256);
      } else {
        try {
          size = (await files.put(sha256, incoming, MAX_ARTIFACT_BYTES)).size;
        } catch (e) {
          if (e instanceof HashMismatch) throw ApiError.badRequest(e.message, [{ path: 'body', message: 'hash mismatch' }]);
          if (/limit/.test((e as Error).message)) throw new ApiError(413, 'payload_too_large', (e as Error).message);
          throw e;
        }
      }
      return c.json((await catalog.record({ ...rec, size })) as never, 201);
    },
  );

  // Download: agents (client certificate) or any reader token. Not an OpenAPI JSON route (binary body).
  // One byte range is honoured, so an agent resumes a large image after a dropped connection.
  app.get('/api/v1/artifacts/:sha256', async (c, next) => {
    if (!agentOf(c, deps)) return read(c as never, next);
    return next();
  }, (c) => {
    const sha = c.req.param('sha256');
    if (!SHA256_RE.test(sha) || !files.has(sha)) throw ApiError.notFound('artifact', sha);
    const size = files.size(sha);
    const headers = { 'content-type': 'application/octet-stream', 'accept-ranges': 'bytes', etag: `"${sha}"`, 'cache-control': 'public, max-age=31536000, immutable' };
    const range = parseByteRange(c.req.header('range'), size);
    if (range === 'unsatisfiable') return new Response(null, { status: 416, headers: { ...headers, 'content-range': `bytes */${size}` } });
    if (range)
      return new Response(Readable.toWeb(files.read(sha, range)) as ReadableStream, {
        status: 206,
        headers: { ...headers, 'content-length': String(range.end - range.start + 1), 'content-range': `bytes ${range.start}-${range.end}/${size}` },
      });
    return new Response(Readable.toWeb(files.read(sha)) as ReadableStream, { headers: { ...headers, 'content-length': String(size) } });
  });

  registerImageRoutes(app, deps, files, catalog);
}
