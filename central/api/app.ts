import { OpenAPIHono } from '@hono/zod-openapi';
import { isRawUpload, lazyBodyLimit } from './body-limit.js';
import { HTTPException } from 'hono/http-exception';
import { issuesToDetails } from '../../shared/api/issues.js';
import { requirePermission } from './auth-middleware.js';
import { ApiError } from './api-error.js';
import type { ApiDeps } from './deps.js';
import { mapDomainError } from './error-body.js';
import { completeOpenApi } from './openapi-complete.js';
import type { CentralFeature } from './feature.js';
import { Services } from './services.js';

export const API_VERSION = '0.1.0';
export const DEFAULT_BODY_LIMIT = 1024 * 1024;

export type { RouteModule } from './feature.js';

export interface AppOptions {
  bodyLimit?: number;
  /** Every resource and protocol the API serves (central/features.ts); set up here, then their routes registered in order. */
  features?: readonly CentralFeature[];
  /** Where features hand each other services (created if not given; the server keeps it for `attach`). */
  services?: Services;
}

/**
 * A request whose body was announced and not read (refused before reading it: 401, 403): the server then
 * closes the connection rather than draining a body nobody wants.
 */
function bodyPending(req: Request): boolean {
  return req.body !== null && !req.bodyUsed;
}

export function createApp(deps: ApiDeps, opts: AppOptions = {}): OpenAPIHono {
  const app = new OpenAPIHono({
    defaultHook: (result) => {
      if (!result.success) {
        const details = issuesToDetails(result.error.issues);
        throw new ApiError(400, 'invalid_request', details.map((d) => `${d.path}: ${d.message}`).join('; '), details);
      }
    },
  });

  // Metrics: count and time every request by its route pattern (not the raw path: bounded labels).
  app.use('*', async (c, next) => {
    const end = deps.metrics.httpDuration.startTimer();
    await next();
    const route = c.req.routePath || 'unmatched';
    end({ method: c.req.method, route });
    deps.metrics.httpRequests.inc({ method: c.req.method, route, status: String(c.res.status) });
  });

  // Artifact uploads stream raw bytes straight to disk (their own size limit and hash check).
  const jsonLimit = lazyBodyLimit(opts.bodyLimit ?? DEFAULT_BODY_LIMIT);
  app.use('/api/*', (c, next) => (isRawUpload(c.req.method, c.req.path) ? next() : jsonLimit(c, next)));
  app.use('/api/*', async (c, next) => {
    if (['POST', 'PUT', 'PATCH'].includes(c.req.method) && !isRawUpload(c.req.method, c.req.path)) {
      const type = c.req.header('content-type') ?? '';
      const hasBody = c.req.header('content-length') !== '0' && (c.req.header('content-length') !== undefined || c.req.header('transfer-encoding') !== undefined);
      if (hasBody && !/^application\/(merge-patch\+)?json\b/i.test(type)) {
        throw new ApiError(415, 'unsupported_media_type', `request body must be application/json (got "${type || 'none'}")`);
      }
    }
    await next();
  });

  app.onError((err, c) => {
    if (err instanceof ApiError) {
      // The body was not (fully) read: the server drops the connection afterwards, so tell keep-alive
      // clients not to reuse it (they would get ECONNRESET on their next request).
      if (err.status === 413 || err.status === 415 || (err.status === 401 && bodyPending(c.req.raw))) c.header('Connection', 'close');
      return c.json({ error: { code: err.code, message: err.message, ...(err.details !== undefined ? { details: err.details } : {}) } }, err.status);
    }
    // Domain errors (services) and storage errors: one mapping (error-body.ts).
    const mapped = mapDomainError(err);
    if (mapped) {
      if (mapped.status === 403 && bodyPending(c.req.raw)) c.header('Connection', 'close');
      for (const [k, v] of Object.entries(mapped.headers ?? {})) c.header(k, v);
      return c.json(mapped.body, mapped.status);
    }
    if (err instanceof HTTPException) {
      const code = err.status === 400 ? 'invalid_request' : `http_${err.status}`;
      return c.json({ error: { code, message: err.message || 'request failed' } }, err.status);
    }
    deps.logger.error({ err, path: c.req.path, method: c.req.method }, 'unhandled error');
    return c.json({ error: { code: 'internal', message: 'internal error; see the central log' } }, 500);
  });
  app.notFound((c) => c.json({ error: { code: 'not_found', message: `no route for ${c.req.method} ${c.req.path}` } }, 404));

  app.openAPIRegistry.registerComponent('securitySchemes', 'bearer', { type: 'http', scheme: 'bearer', description: 'An Underlay token (`underlay token create`)' });

  // 200 also when degraded: a restart would not free the disk, and reads are still served.
  app.get('/healthz', (c) => c.json(deps.store.health()));
  // Fleet-wide counts: a site-scoped token may not read them.
  app.get('/metrics', requirePermission(deps.tokens, 'read', { unscoped: 'reading fleet-wide metrics' }), async (c) => {
    for (const [collection, n] of Object.entries(deps.store.counts())) deps.metrics.objects.set({ collection }, n);
    return c.text(await deps.metrics.registry.metrics(), 200, { 'content-type': deps.metrics.registry.contentType });
  });

  const features = opts.features ?? [];
  const services = opts.services ?? new Services();
  for (const f of features) f.setup?.({ deps, services, features });
  for (const f of features) f.routes?.(app, deps, services);

  // Built once, on first request (every route is registered by then), with descriptions and examples filled in.
  let document: Record<string, unknown> | undefined;
  app.get('/api/v1/openapi.json', (c) => {
    document ??= completeOpenApi(app.getOpenAPI31Document({
      openapi: '3.1.0',
      info: { title: 'Underlay central API', version: API_VERSION, description: 'Inventory, boot configuration, tasks and services of an Underlay fleet.', license: { name: 'Apache-2.0', url: 'https://www.apache.org/licenses/LICENSE-2.0' } },
      servers: [{ url: '/', description: 'this central' }],
      security: [{ bearer: [] }],
    }) as unknown as Record<string, unknown>);
    return c.json(document);
  });
  return app;
}
