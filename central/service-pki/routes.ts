import { createRoute, type OpenAPIHono } from '@hono/zod-openapi';
import { z } from 'zod';
import { ErrorBody } from '../../shared/api/common.js';
import { IssuedCert, ServiceCa, ServiceCaCreate } from '../../shared/api/pki.js';
import { requirePermission } from '../api/auth-middleware.js';
import type { ApiDeps } from '../api/deps.js';
import { requireVisible, requireWritableSite, scopeOf } from '../auth/scope.js';
import type { ServicePki } from './service.js';

const json = (schema: z.ZodType) => ({ 'application/json': { schema } });
const err = (description: string) => ({ description, content: json(ErrorBody) });
const E401 = err('Missing or invalid bearer token');
const E403 = err('The token’s role does not allow this');
const NameParam = z.object({ name: z.string().min(1).max(63).describe('CA name') });
const SerialParam = z.object({ serial: z.string().regex(/^[0-9a-fA-F]{1,64}$/).describe('certificate serial (hex)') });
const CertQuery = z.object({ ca: z.string().max(63).optional(), machine: z.string().max(64).optional() });

/**
 * `/api/v1/pki`: service CAs (global: creating and deleting one needs an unscoped token) and the
 * certificates they issued (a site-scoped token sees and revokes only its site's machines').
 */
export function registerServicePkiRoutes(app: OpenAPIHono, deps: ApiDeps, pki: ServicePki): void {
  const read = requirePermission(deps.tokens, 'read');
  const write = requirePermission(deps.tokens, 'write');
  const writeGlobal = requirePermission(deps.tokens, 'write', { unscoped: 'creating or deleting a CA' });
  const security = [{ bearer: [] }];
  const tags = ['PKI'];

  app.openapi(
    createRoute({
      method: 'post', path: '/api/v1/pki/cas', tags, security, operationId: 'create_ca', summary: 'Create a service CA',
      middleware: [writeGlobal] as const,
      request: { body: { content: json(ServiceCaCreate), required: true } },
      responses: { 201: { description: 'Created', content: json(ServiceCa) }, 400: err('Invalid request'), 401: E401, 403: E403, 409: err('A CA of that name exists') },
    }),
    async (c) => c.json((await pki.createCa(c.req.valid('json') as z.infer<typeof ServiceCaCreate>)) as never, 201),
  );
  app.openapi(
    createRoute({
      method: 'get', path: '/api/v1/pki/cas', tags, security, operationId: 'list_cas', summary: 'List service CAs',
      middleware: [read] as const,
      responses: { 200: { description: 'All CAs', content: json(z.object({ items: z.array(ServiceCa), total: z.number() })) }, 401: E401, 403: E403 },
    }),
    (c) => {
      const items = pki.listCas();
      return c.json({ items, total: items.length } as never, 200);
    },
  );
  app.openapi(
    createRoute({
      method: 'get', path: '/api/v1/pki/cas/{name}', tags, security, operationId: 'get_ca', summary: 'Show a service CA',
      middleware: [read] as const,
      request: { params: NameParam },
      responses: { 200: { description: 'The CA', content: json(ServiceCa) }, 401: E401, 403: E403, 404: err('No such CA') },
    }),
    (c) => c.json(pki.getCa(c.req.valid('param').name) as never, 200),
  );
  app.openapi(
    createRoute({
      method: 'get', path: '/api/v1/pki/cas/{name}/crl', tags, security, operationId: 'get_ca_crl', summary: 'The CA’s current CRL (PEM)',
      middleware: [read] as const,
      request: { params: NameParam },
      responses: { 200: { description: 'CRL', content: { 'application/pkix-crl': { schema: z.string() } } }, 401: E401, 403: E403, 404: err('No such CA') },
    }),
    (c) => {
      const ca = pki.getCa(c.req.valid('param').name);
      c.header('Content-Type', 'application/pkix-crl');
      return c.body(ca.crl ?? '', 200) as never;
    },
  );
  app.openapi(
    createRoute({
      method: 'delete', path: '/api/v1/pki/cas/{name}', tags, security, operationId: 'delete_ca', summary: 'Delete a service CA with its certificates',
      middleware: [writeGlobal] as const,
      request: { params: NameParam },
      responses: { 204: { description: 'Deleted' }, 401: E401, 403: E403, 404: err('No such CA') },
    }),
    async (c) => {
      await pki.deleteCa(c.req.valid('param').name);
      return c.body(null, 204);
    },
  );
  app.openapi(
    createRoute({
      method: 'get', path: '/api/v1/pki/certs', tags, security, operationId: 'list_certs', summary: 'Certificates issued to machines',
      middleware: [read] as const,
      request: { query: CertQuery },
      responses: { 200: { description: 'Certificates', content: json(z.object({ items: z.array(IssuedCert), total: z.number() })) }, 401: E401, 403: E403 },
    }),
    (c) => {
      const q = c.req.valid('query');
      const scope = scopeOf(c);
      const items = pki.listCerts({ ...q, ...(scope !== undefined ? { site: scope } : {}) });
      return c.json({ items, total: items.length } as never, 200);
    },
  );
  app.openapi(
    createRoute({
      method: 'get', path: '/api/v1/pki/certs/{serial}', tags, security, operationId: 'get_cert', summary: 'Show an issued certificate',
      middleware: [read] as const,
      request: { params: SerialParam },
      responses: { 200: { description: 'The certificate', content: json(IssuedCert) }, 401: E401, 403: E403, 404: err('No such certificate') },
    }),
    (c) => {
      const cert = pki.getCert(c.req.valid('param').serial);
      requireVisible(scopeOf(c), cert.site, 'certificate', cert.serial);
      return c.json(cert as never, 200);
    },
  );
  app.openapi(
    createRoute({
      method: 'post', path: '/api/v1/pki/certs/{serial}/revoke', tags, security, operationId: 'revoke_cert', summary: 'Revoke a certificate (its CA’s CRL is re-signed and reaches the agents)',
      middleware: [write] as const,
      request: { params: SerialParam },
      responses: { 200: { description: 'Revoked', content: json(IssuedCert) }, 401: E401, 403: E403, 404: err('No such certificate') },
    }),
    async (c) => {
      const scope = scopeOf(c);
      const cert = pki.getCert(c.req.valid('param').serial);
      requireVisible(scope, cert.site, 'certificate', cert.serial);
      requireWritableSite(scope, cert.site, 'certificates of site');
      return c.json((await pki.revoke(cert.serial)) as never, 200);
    },
  );
}
