import { Readable } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import { createRoute, type OpenAPIHono } from '@hono/zod-openapi';
import type { HttpBindings } from '@hono/node-server';
import type { Context } from 'hono';
import { z } from 'zod';
import { ErrorBody, ListQueryParams, pageOf } from '../../shared/api/common.js';
import { ApiError } from '../api/api-error.js';
import type { ApiDeps } from '../api/deps.js';
import { requirePermission } from '../api/auth-middleware.js';
import { AGENTS, type AgentDoc } from '../agents/collections.js';
import { ArtifactFiles, HashMismatch, SHA256_RE } from './store.js';

export const ARTIFACTS = 'artifacts';
export const MAX_ARTIFACT_BYTES = 8 * 1024 * 1024 * 1024;

export const Artifact = z
  .object({ id: z.string(), sha256: z.string(), size: z.number(), urls: z.array(z.string()), name: z.string().optional(), createdAt: z.string() })
  .meta({ id: 'Artifact', description: 'A boot artifact (kernel, initrd, image) stored content-addressed; agents pull it from here.' });
export type ArtifactDoc = z.infer<typeof Artifact> & { [k: string]: unknown };

const Sha = z.object({ sha256: z.string().regex(SHA256_RE, 'lower-case hex sha256') });

/** A joined, unrevoked agent presenting its client certificate may download artifacts without a token. */
function agentOf(c: Context, deps: ApiDeps): AgentDoc | undefined {
  const sock = (c.env as HttpBindings | undefined)?.incoming?.socket as TLSSocket | undefined;
  if (!sock || typeof sock.getPeerCertificate !== 'function' || !sock.authorized) return undefined;
  const fp = sock.getPeerCertificate()?.fingerprint256?.replace(/:/g, '').toLowerCase();
  const a = fp ? deps.store.findUnique<AgentDoc>(AGENTS, 'certFingerprint', fp) : undefined;
  return a && !a.revokedAt ? a : undefined;
}

export function registerArtifactRoutes(app: OpenAPIHono, deps: ApiDeps, files: ArtifactFiles): void {
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
      description: 'Body: the raw bytes (application/octet-stream). Query `url` (repeatable) records where it came from, so boot environments naming that URL are served from the site agent.',
      middleware: [requirePermission(deps.tokens, 'write', { unscoped: 'uploading an artifact (artifacts are global)' })] as const,
      request: { params: Sha, query: z.object({ url: z.union([z.string(), z.array(z.string())]).optional(), name: z.string().max(256).optional() }) },
      responses: { 201: { description: 'Stored', content: json(Artifact) }, 400: err('hash mismatch or bad body'), 401: err('unauthenticated'), 403: err('forbidden'), 413: err('too large') },
    }),
    async (c) => {
      const { sha256 } = c.req.valid('param');
      const q = c.req.valid('query');
      const urls = q.url === undefined ? [] : Array.isArray(q.url) ? q.url : [q.url];
      for (const u of urls) if (!/^https?:\/\//.test(u)) throw ApiError.badRequest(`url "${u}" is not http(s)`, [{ path: 'url', message: 'not http(s)' }]);
      const incoming = (c.env as HttpBindings).incoming;
      let size: number;
      if (files.has(sha256)) size = files.size(sha256);
      else {
        try {
          size = (await files.put(sha256, incoming, MAX_ARTIFACT_BYTES)).size;
        } catch (e) {
          if (e instanceof HashMismatch) throw ApiError.badRequest(e.message, [{ path: 'body', message: 'hash mismatch' }]);
          if (/limit/.test((e as Error).message)) throw new ApiError(413, 'payload_too_large', (e as Error).message);
          throw e;
        }
      }
      const prev = deps.store.get<ArtifactDoc>(ARTIFACTS, sha256);
      const doc: ArtifactDoc = {
        id: sha256,
        sha256,
        size,
        urls: [...new Set([...(prev?.urls ?? []), ...urls])],
        ...(q.name ?? prev?.name ? { name: q.name ?? prev?.name } : {}),
        createdAt: prev?.createdAt ?? new Date().toISOString(),
      };
      await deps.store.put(ARTIFACTS, doc);
      return c.json(doc as never, 201);
    },
  );

  // Download: agents (client certificate) or any reader token. Not an OpenAPI JSON route (binary body).
  app.get('/api/v1/artifacts/:sha256', async (c, next) => {
    if (!agentOf(c, deps)) return read(c as never, next);
    return next();
  }, (c) => {
    const sha = c.req.param('sha256');
    if (!SHA256_RE.test(sha) || !files.has(sha)) throw ApiError.notFound('artifact', sha);
    const size = files.size(sha);
    return new Response(Readable.toWeb(files.read(sha)) as ReadableStream, {
      headers: { 'content-type': 'application/octet-stream', 'content-length': String(size), etag: `"${sha}"`, 'cache-control': 'public, max-age=31536000, immutable' },
    });
  });
}
