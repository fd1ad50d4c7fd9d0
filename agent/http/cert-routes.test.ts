import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DesiredState } from '../../shared/protocol/desired-state.js';
import { bootRuntime, machine, siteState, tokenIn } from './boot-http.test-support.js';

const M1 = '52:54:00:c0:00:01';
const M2 = '52:54:00:c0:00:02';
const CSR = `-----BEGIN CERTIFICATE REQUEST-----\n${'A'.repeat(200)}\n-----END CERTIFICATE REQUEST-----\n`;
const CA_PEM = '-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n';
const CRL_PEM = '-----BEGIN X509 CRL-----\nCRL\n-----END X509 CRL-----\n';

describe('agent certificate routes', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ul-cert-routes-'));
  let rt: Awaited<ReturnType<typeof bootRuntime>>;
  const machines = [machine('id-m1', 'm1', M1), machine('id-m2', 'm2', M2)];
  beforeAll(async () => {
    rt = await bootRuntime(dir, { state: siteState(machines, { pki: { cas: [{ name: 'demo', certificate: CA_PEM, crl: CRL_PEM }], requests: [] } }) });
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const session = async (mac: string) => {
    const script = await (await rt.app.request(`/ipxe/script?mac=${mac}&platform=pcbios&buildarch=x86_64`)).text();
    const res = await rt.app.request('/api/v1/boot/claim', { method: 'POST', body: JSON.stringify({ token: tokenIn(script) }) });
    return ((await res.json()) as { session: string }).session;
  };
  const post = (body: unknown, s?: string) =>
    rt.app.request('/api/v1/runner/csr', { method: 'POST', body: typeof body === 'string' ? body : JSON.stringify(body), headers: s ? { authorization: `Bearer ${s}` } : {} });

  it('forwards a CSR as a machine-csr event for the session’s machine, and only with a session', async () => {
    expect((await post({ ca: 'demo', csr: CSR })).status).toBe(401);
    expect((await post({ ca: 'demo', csr: CSR }, 'not-a-session')).status).toBe(401);
    expect(rt.events('machine-csr')).toHaveLength(0);
    const s = await session(M1);
    const res = await post({ ca: 'demo', csr: CSR, ttl: '90s' }, s);
    expect(res.status).toBe(202);
    const { request } = (await res.json()) as { request: string };
    expect(rt.events('machine-csr').map((e) => e.data)).toEqual([{ request, machine: 'id-m1', ca: 'demo', csr: CSR, ttl: '90s' }]);
  });

  it('refuses malformed, oversized and extra-field bodies without forwarding anything', async () => {
    const s = await session(M2);
    const before = rt.events('machine-csr').length;
    for (const bad of ['{', '[]', { ca: 'demo' }, { ca: '../x', csr: CSR }, { ca: 'demo', csr: CSR, machine: 'id-m1' }, { ca: 'demo', csr: 'x'.repeat(20_000) }]) expect((await post(bad, s)).status).toBe(400);
    expect((await post({ ca: 'demo', csr: 'x'.repeat(40_000) }, s)).status).toBe(413);
    expect(rt.events('machine-csr')).toHaveLength(before);
  });

  it('answers a request from the site state, to its own machine only; pending until the answer arrives', async () => {
    const s1 = await session(M1);
    const s2 = await session(M2);
    expect((await rt.app.request('/api/v1/runner/csr/req-000001', { headers: { authorization: `Bearer ${s1}` } })).status).toBe(202);
    const pki = {
      cas: [{ name: 'demo', certificate: CA_PEM, crl: CRL_PEM }],
      requests: [
        { request: 'req-000001', machine: 'id-m1', ca: 'demo', state: 'issued', certificate: 'CERT', serial: '0a', notBefore: 'nb', notAfter: 'na' },
        { request: 'req-000002', machine: 'id-m1', ca: 'demo', state: 'refused', reason: 'the CSR names evil.example' },
      ],
    };
    await rt.cache.replace(DesiredState.parse(siteState(machines, { version: 'v2', pki })));
    const get = async (id: string, s: string) => {
      const r = await rt.app.request(`/api/v1/runner/csr/${id}`, { headers: { authorization: `Bearer ${s}` } });
      return { status: r.status, body: (await r.json()) as Record<string, unknown> };
    };
    expect(await get('req-000001', s1)).toEqual({ status: 200, body: { state: 'issued', certificate: 'CERT', serial: '0a', notBefore: 'nb', notAfter: 'na', caCertificate: CA_PEM } });
    expect(await get('req-000002', s1)).toEqual({ status: 200, body: { state: 'refused', reason: 'the CSR names evil.example' } });
    expect((await get('req-000001', s2)).body).toEqual({ state: 'pending' }); // m2 never sees m1's certificate
    expect((await get('..%2F..', s1)).status).toBe(400);
  });

  it('serves the CA certificate and CRL to anyone; unknown CAs are 404', async () => {
    expect(await (await rt.app.request('/api/v1/pki/demo/ca.pem')).text()).toBe(CA_PEM);
    const crl = await rt.app.request('/api/v1/pki/demo/crl.pem');
    expect(crl.headers.get('content-type')).toBe('application/pkix-crl');
    expect(await crl.text()).toBe(CRL_PEM);
    expect((await rt.app.request('/api/v1/pki/nope/crl.pem')).status).toBe(404);
    expect((await rt.app.request('/api/v1/pki/NOPE%00/ca.pem')).status).toBe(404);
  });
});
