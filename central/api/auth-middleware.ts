import type { Context, MiddlewareHandler } from 'hono';
import { jsonTextDepth, MAX_JSON_DEPTH } from '../../shared/util/json-depth.js';
import { ApiError } from './api-error.js';
import { bodyReadError, isRawUpload } from './body-limit.js';
import { allows, type Permission } from '../auth/permissions.js';
import { requireUnscoped } from '../auth/scope.js';
import type { TokenDoc, TokenService } from '../auth/tokens.js';
import { WRITE_METHODS, writeContext } from './write-context.js';

export type AuthVariables = { token: TokenDoc };

const MESSAGES = {
  missing: 'authentication required: send "Authorization: Bearer <token>"',
  malformed: 'the bearer token is malformed',
  unknown: 'the bearer token is not valid',
  expired: 'the bearer token has expired',
  revoked: 'the bearer token has been revoked',
  used: 'this one-time token has already been used',
} as const;

/**
 * Reads a JSON request body only now that the caller is authenticated and allowed (an unauthenticated
 * request is answered 401 without its body being read), and refuses one nested deeper than
 * MAX_JSON_DEPTH before anything parses it. The validators then parse the cached text.
 */
async function checkJsonBody(c: Context): Promise<void> {
  if (!['POST', 'PUT', 'PATCH'].includes(c.req.method) || isRawUpload(c.req.method, c.req.path) || !/^application\/json\b/i.test(c.req.header('content-type') ?? '')) return;
  let text: string;
  try {
    text = await c.req.text();
  } catch (e) {
    throw bodyReadError(e) ?? e;
  }
  if (jsonTextDepth(text, MAX_JSON_DEPTH) > MAX_JSON_DEPTH) {
    throw new ApiError(400, 'invalid_request', `request body is nested deeper than ${MAX_JSON_DEPTH} levels`, [{ path: '(body)', message: `nested deeper than ${MAX_JSON_DEPTH} levels` }]);
  }
}

/**
 * Bearer authentication + role check for one route. `unscoped`: the route changes global objects, so a
 * site-scoped token is refused (403) before the body is read (central/auth/scope.ts).
 */
export function requirePermission(tokens: TokenService, need: Permission, opts: { unscoped?: string } = {}): MiddlewareHandler<{ Variables: AuthVariables }> {
  return async (c, next) => {
    const header = c.req.header('authorization');
    const bearer = header?.startsWith('Bearer ') ? header.slice(7).trim() : undefined;
    const result = tokens.authenticate(bearer);
    if (!result.ok) {
      c.header('WWW-Authenticate', 'Bearer realm="underlay"');
      throw new ApiError(401, `unauthenticated`, MESSAGES[result.reason]);
    }
    if (!allows(result.token.role, need)) {
      throw new ApiError(403, 'forbidden', `role "${result.token.role}" may not ${need === 'read' ? 'read this' : need === 'join' ? 'join agents' : need === 'admin' ? 'do this (admin only)' : 'change this'}`);
    }
    if (opts.unscoped) requireUnscoped(result.token.site, opts.unscoped);
    c.set('token', result.token);
    await checkJsonBody(c);
    if (!WRITE_METHODS.has(c.req.method)) return next();
    const t = result.token;
    // The store commits this request makes are audited with who made them (central/events/audit.ts).
    const ctx = { tokenId: t.id, ...(t.name ? { tokenName: t.name } : {}), role: t.role, ...(t.site ? { site: t.site } : {}), method: c.req.method, route: c.req.routePath, path: c.req.path, open: true };
    try {
      await writeContext.run(ctx, next);
    } finally {
      ctx.open = false; // timers the request started inherit the context: their later writes are not this request's
    }
  };
}
