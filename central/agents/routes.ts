import { randomUUID, X509Certificate } from 'node:crypto';
import { createRoute, type OpenAPIHono } from '@hono/zod-openapi';
import { z } from 'zod';
import { Agent, AgentJoinRequest, AgentJoinResponse } from '../../shared/api/agents.js';
import { ErrorBody, ListQueryParams, pageOf } from '../../shared/api/common.js';
import { ApiError } from '../api/api-error.js';
import type { ApiDeps } from '../api/deps.js';
import { requirePermission, type AuthVariables } from '../api/auth-middleware.js';
import { TOKENS, type TokenDoc } from '../auth/tokens.js';
import { requireVisible, scopedWhere, scopeOf, type Scope } from '../auth/scope.js';
import { fingerprint, signCsr } from '../pki/ca.js';
import { AGENTS, type AgentDoc } from './collections.js';
import type { AgentHub } from './hub.js';

const json = (schema: z.ZodType) => ({ 'application/json': { schema } });
const err = (d: string) => ({ description: d, content: json(ErrorBody) });

export function registerAgentRoutes(app: OpenAPIHono, deps: ApiDeps, hub: () => AgentHub | undefined): void {
  const view = (a: AgentDoc) => ({
    id: a.id,
    site: a.site,
    name: a.name,
    agentVersion: a.agentVersion,
    connected: hub()?.isConnected(a.id) ?? false,
    ...(a.lastSeenAt ? { lastSeenAt: a.lastSeenAt } : {}),
    createdAt: a.createdAt,
    ...(a.revokedAt ? { revokedAt: a.revokedAt } : {}),
    certFingerprint: a.certFingerprint,
    certSerial: a.certSerial,
    ...(a.certExpiresAt ? { certExpiresAt: a.certExpiresAt } : {}),
  });
  const find = (ref: string, scope: Scope) => {
    const a = deps.store.get<AgentDoc>(AGENTS, ref) ?? deps.store.list<AgentDoc>(AGENTS, { where: scopedWhere(scope, { name: ref }) }).items[0];
    if (!a) throw ApiError.notFound('agent', ref);
    requireVisible(scope, a.site, 'agent', ref);
    return a;
  };

  app.openapi(
    createRoute({
      method: 'post', path: '/api/v1/agents/join', tags: ['Agents'], operationId: 'join_agent', security: [{ bearer: [] }],
      summary: 'Join an agent with a one-time agent-join token: the central signs its CSR',
      description: 'Needs an agent-join token (role agent-join); the token is consumed.',
      middleware: [requirePermission(deps.tokens, 'join')] as const,
      request: { body: { content: json(AgentJoinRequest), required: true } },
      responses: { 201: { description: 'Joined', content: json(AgentJoinResponse) }, 400: err('invalid CSR or body'), 401: err('bad token'), 403: err('not a join token') },
    }),
    async (c) => {
      const body = c.req.valid('json') as z.infer<typeof AgentJoinRequest>;
      const token = (c as unknown as { get: (k: 'token') => AuthVariables['token'] }).get('token');
      const site = token.site;
      if (!site || !deps.store.findUnique('sites', 'name', site)) throw ApiError.badRequest(`the join token's site "${site}" no longer exists`);
      const id = randomUUID();
      let certPem: string;
      try {
        certPem = signCsr(deps.identity.ca, body.csr, { commonName: `agent:${id}`, usage: 'client', lifetimeMs: deps.central.agentCertLifetimeMs });
      } catch (e) {
        throw ApiError.badRequest(`CSR rejected: ${(e as Error).message}`, [{ path: 'csr', message: (e as Error).message }]);
      }
      const now = new Date().toISOString();
      const fresh = deps.store.get<TokenDoc>(TOKENS, token.id);
      if (!fresh || fresh.usedAt) throw new ApiError(401, 'unauthenticated', 'this one-time token has already been used');
      const doc: AgentDoc = {
        id,
        site,
        name: body.name,
        certFingerprint: fingerprint(certPem),
        certSerial: new X509Certificate(certPem).serialNumber,
        certExpiresAt: new Date(Date.parse(new X509Certificate(certPem).validTo)).toISOString(),
        sealPublicKey: body.sealPublicKey,
        agentVersion: body.agentVersion,
        nextSeq: 1,
        createdAt: now,
        updatedAt: now,
      };
      // Consume the token and register the agent atomically: a token joins exactly one agent.
      await deps.store.commit([
        { type: 'put', collection: TOKENS, doc: { ...fresh, usedAt: now } },
        { type: 'put', collection: AGENTS, doc },
      ]);
      deps.logger.info({ agent: id, site, name: body.name }, 'agent joined');
      return c.json(
        {
          agent: { id, site },
          certificate: certPem,
          caCertificate: deps.identity.ca.certPem,
          signingPublicKey: deps.central.signingPublicKey,
          centralUrl: deps.central.publicUrl,
        } as never,
        201,
      );
    },
  );

  const read = requirePermission(deps.tokens, 'read');
  app.openapi(
    createRoute({
      method: 'get', path: '/api/v1/agents', tags: ['Agents'], operationId: 'list_agents', security: [{ bearer: [] }], summary: 'List agents',
      middleware: [read] as const, request: { query: ListQueryParams.extend({ site: z.string().optional() }) },
      responses: { 200: { description: 'Agents', content: json(pageOf(Agent, 'AgentPage')) }, 401: err('unauthenticated'), 403: err('forbidden') },
    }),
    (c) => {
      const q = c.req.valid('query');
      const page = deps.store.list<AgentDoc>(AGENTS, { where: scopedWhere(scopeOf(c), q.site ? { site: q.site } : undefined), limit: q.limit, offset: q.offset });
      return c.json({ ...page, items: page.items.map(view) } as never, 200);
    },
  );
  app.openapi(
    createRoute({
      method: 'get', path: '/api/v1/agents/{ref}', tags: ['Agents'], operationId: 'get_agent', security: [{ bearer: [] }], summary: 'Show an agent',
      middleware: [read] as const, request: { params: z.object({ ref: z.string().max(253) }) },
      responses: { 200: { description: 'Agent', content: json(Agent) }, 401: err('unauthenticated'), 403: err('forbidden'), 404: err('not found') },
    }),
    (c) => c.json(view(find(c.req.valid('param').ref, scopeOf(c))) as never, 200),
  );
  app.openapi(
    createRoute({
      method: 'post', path: '/api/v1/agents/{ref}/revoke', tags: ['Agents'], operationId: 'revoke_agent', security: [{ bearer: [] }],
      summary: 'Revoke an agent: its connection closes and its certificate is refused from then on',
      middleware: [requirePermission(deps.tokens, 'admin')] as const, request: { params: z.object({ ref: z.string().max(253) }) },
      responses: { 200: { description: 'Revoked', content: json(Agent) }, 401: err('unauthenticated'), 403: err('forbidden'), 404: err('not found') },
    }),
    async (c) => {
      const a = find(c.req.valid('param').ref, scopeOf(c));
      const next = { ...a, revokedAt: a.revokedAt ?? new Date().toISOString(), updatedAt: new Date().toISOString() };
      await deps.store.put(AGENTS, next);
      hub()?.disconnect(a.id, 'revoked');
      return c.json(view(next) as never, 200);
    },
  );
}
