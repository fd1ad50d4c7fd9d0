import { createRoute, type OpenAPIHono } from '@hono/zod-openapi';
import { z } from 'zod';
import { ErrorBody, ListQueryParams, pageOf } from '../../shared/api/common.js';
import { formatJoinToken } from '../../shared/api/join-token.js';
import { Token, TokenCreate, TokenCreated } from '../../shared/api/resources.js';
import { ApiError } from '../api/api-error.js';
import type { ApiDeps } from '../api/deps.js';
import { requirePermission } from '../api/auth-middleware.js';
import { requireVisible, requireWritableSite, scopedWhere, scopeOf } from '../auth/scope.js';
import { TOKENS, type TokenDoc } from '../auth/tokens.js';
import { SITES } from '../sites/resources.js';

const json = (schema: z.ZodType) => ({ 'application/json': { schema } });
const err = (d: string) => ({ description: d, content: json(ErrorBody) });
const Ref = z.object({ id: z.string().min(1).max(64) });

/** Token management: admin only. An agent-join token's `token` is a join token carrying the CA fingerprint. */
export function registerTokenRoutes(app: OpenAPIHono, deps: ApiDeps): void {
  const admin = requirePermission(deps.tokens, 'admin');
  const security = [{ bearer: [] }];
  const tags = ['Tokens'];

  app.openapi(
    createRoute({
      method: 'get', path: '/api/v1/tokens', tags, security, operationId: 'list_tokens', summary: 'List tokens (never their secrets)',
      middleware: [admin] as const,
      request: { query: ListQueryParams.extend({ role: z.string().optional(), site: z.string().optional() }) },
      responses: { 200: { description: 'Tokens', content: json(pageOf(Token, 'TokenPage')) }, 401: err('unauthenticated'), 403: err('forbidden') },
    }),
    (c) => {
      const q = c.req.valid('query');
      const where: Record<string, string> = {};
      if (q.role) where.role = q.role;
      if (q.site) where.site = q.site;
      const page = deps.store.list<TokenDoc>(TOKENS, { where: scopedWhere(scopeOf(c), where), limit: q.limit, offset: q.offset, sort: 'createdAt' });
      return c.json({ ...page, items: page.items.map((t) => deps.tokens.view(t)) } as never, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'get', path: '/api/v1/tokens/{id}', tags, security, operationId: 'get_token', summary: 'Show a token',
      middleware: [admin] as const, request: { params: Ref },
      responses: { 200: { description: 'Token', content: json(Token) }, 401: err('unauthenticated'), 403: err('forbidden'), 404: err('not found') },
    }),
    (c) => {
      const doc = deps.tokens.get(c.req.valid('param').id);
      if (!doc) throw ApiError.notFound('token', c.req.valid('param').id);
      requireVisible(scopeOf(c), doc.site, 'token', doc.id);
      return c.json(deps.tokens.view(doc) as never, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'post', path: '/api/v1/tokens', tags, security, operationId: 'create_token',
      summary: 'Create a token; the secret is in the response once and never again',
      middleware: [admin] as const,
      request: { body: { content: json(TokenCreate), required: true } },
      responses: { 201: { description: 'Created', content: json(TokenCreated) }, 400: err('invalid'), 401: err('unauthenticated'), 403: err('forbidden') },
    }),
    async (c) => {
      const body = c.req.valid('json') as z.infer<typeof TokenCreate>;
      // A site-scoped admin mints tokens for its own site only (never unscoped ones).
      if (scopeOf(c) !== undefined) requireWritableSite(scopeOf(c), body.site ?? '(none: an unscoped token)');
      if (body.role === 'agent-join' && !body.site) throw ApiError.badRequest('an agent-join token needs a site', [{ path: 'site', message: 'required for agent-join' }]);
      if (body.site && !deps.store.findUnique(SITES, 'name', body.site)) throw ApiError.badRequest(`site "${body.site}" does not exist`, [{ path: 'site', message: 'unknown site' }]);
      const { doc, token } = await deps.tokens.create(body);
      const shown = doc.role === 'agent-join' ? formatJoinToken(token, deps.central.caFingerprint, deps.central.joinUrls) : token;
      deps.logger.info({ id: doc.id, role: doc.role, site: doc.site, expiresAt: doc.expiresAt ?? 'never' }, 'token created');
      if (doc.role === 'agent-join' && !doc.expiresAt) deps.logger.warn({ id: doc.id, site: doc.site }, 'an agent-join token that never expires was created (--ttl never)');
      return c.json({ ...deps.tokens.view(doc), token: shown } as never, 201);
    },
  );

  app.openapi(
    createRoute({
      method: 'delete', path: '/api/v1/tokens/{id}', tags, security, operationId: 'revoke_token', summary: 'Revoke a token',
      middleware: [admin] as const, request: { params: Ref },
      responses: { 200: { description: 'Revoked', content: json(Token) }, 401: err('unauthenticated'), 403: err('forbidden'), 404: err('not found') },
    }),
    async (c) => {
      const found = deps.tokens.get(c.req.valid('param').id);
      if (!found) throw ApiError.notFound('token', c.req.valid('param').id);
      requireVisible(scopeOf(c), found.site, 'token', found.id);
      const doc = await deps.tokens.revoke(found.id);
      if (!doc) throw ApiError.notFound('token', c.req.valid('param').id);
      return c.json(deps.tokens.view(doc) as never, 200);
    },
  );
}
