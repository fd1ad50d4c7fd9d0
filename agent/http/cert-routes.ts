import { randomBytes } from 'node:crypto';
import type { Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { MACHINE_CSR_EVENT, MachineCsrBody } from '../../shared/api/pki.js';
import { InvalidError, NotFoundError } from '../../shared/errors/domain-errors.js';
import { BOOT_ROUTES } from '../boot/urls.js';
import type { BootHttp } from './boot-http.js';
import { PayloadTooLargeError } from './errors.js';

const CA_NAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const REQUEST_ID = /^[A-Za-z0-9_-]{8,64}$/;

/**
 * Machine certificates (docs/pki.md):
 * - `POST /api/v1/runner/csr {ca, csr, ttl?}` (session credential): the runner's CSR goes to the central
 *   as a `machine-csr` event for the session's machine (through the durable outbox); 202 `{request}`.
 * - `GET /api/v1/runner/csr/<request>` (session credential): the central's answer from the site's desired
 *   state: 200 `{state: "issued", certificate, serial, notBefore, notAfter, caCertificate}` or
 *   `{state: "refused", reason}`; 202 `{state: "pending"}` until it arrives. A machine sees only its own.
 * - `GET /api/v1/pki/<ca>/ca.pem` and `/crl.pem`: the CA certificate and its current CRL, public.
 */
export function registerCertRoutes(app: Hono, h: BootHttp): void {
  const pki = () => h.o.rt.desiredState.current?.pki;

  app.post(
    BOOT_ROUTES.runnerCsr,
    async (c, next) => {
      const s = h.session(c);
      h.limits.health.take(s.mac, h.remote(c));
      await next();
    },
    bodyLimit({ maxSize: 32 * 1024, onError: () => { throw new PayloadTooLargeError('CSR body over 32 KiB'); } }),
    async (c) => {
      const s = h.session(c);
      let body: ReturnType<typeof MachineCsrBody.parse>;
      try {
        body = MachineCsrBody.parse(await c.req.json());
      } catch {
        throw new InvalidError('body must be {"ca": "<CA name>", "csr": "<PEM CSR>", "ttl"?: "<duration>"}');
      }
      const request = randomBytes(12).toString('base64url');
      await h.emit(MACHINE_CSR_EVENT, { request, machine: s.machine, ...body });
      h.log.info({ machine: s.machine, ca: body.ca, request }, 'forwarded a machine CSR to the central');
      return c.json({ request }, 202);
    },
  );

  app.get(BOOT_ROUTES.runnerCsrAnswer, (c) => {
    const s = h.session(c);
    const id = c.req.param('request');
    if (!REQUEST_ID.test(id)) throw new InvalidError('not a request id');
    const r = pki()?.requests.find((x) => x.request === id && x.machine === s.machine);
    if (!r) return c.json({ state: 'pending' }, 202);
    if (r.state === 'refused') return c.json({ state: 'refused', reason: r.reason ?? 'refused' }, 200);
    const ca = pki()?.cas.find((x) => x.name === r.ca);
    return c.json({ state: 'issued', certificate: r.certificate, serial: r.serial, notBefore: r.notBefore, notAfter: r.notAfter, caCertificate: ca?.certificate }, 200);
  });

  const caOf = (name: string) => {
    const ca = CA_NAME.test(name) ? pki()?.cas.find((x) => x.name === name) : undefined;
    if (!ca) throw new NotFoundError(`no CA "${name.slice(0, 63)}"`);
    return ca;
  };
  app.get(BOOT_ROUTES.pkiCaCert, (c) => {
    c.header('Content-Type', 'application/x-pem-file');
    return c.body(caOf(c.req.param('ca')).certificate);
  });
  app.get(BOOT_ROUTES.pkiCrl, (c) => {
    const ca = caOf(c.req.param('ca'));
    if (!ca.crl) throw new NotFoundError(`CA "${ca.name}" has no CRL yet`);
    c.header('Content-Type', 'application/pkix-crl');
    return c.body(ca.crl);
  });
}
