import { describe, expect, it } from 'vitest';
import { MACHINE_CERT_DIR, pkiTemplateContext } from './template-context.js';

const pem = (tag: string) => `-----BEGIN CERTIFICATE-----\n${tag}\n-----END CERTIFICATE-----`;

describe('pkiTemplateContext', () => {
  it('gives each CA the files cert.sh writes (installed OS: /etc/underlay/certs) and its PEM; a service’s bundle is all its CAs by name', () => {
    const p = pkiTemplateContext([{ name: 'etcd-2', service: 'etcd', certificate: pem('B') }, { name: 'etcd', service: 'etcd', certificate: pem('A') + '\n' }, { name: 'web', certificate: pem('W') }], 'os');
    expect(p.dir).toBe('/etc/underlay/certs');
    expect(p.cas.etcd).toEqual({ service: 'etcd', dir: '/etc/underlay/certs/etcd', key: '/etc/underlay/certs/etcd/key.pem', cert: '/etc/underlay/certs/etcd/cert.pem', ca: '/etc/underlay/certs/etcd/ca.pem', crl: '/etc/underlay/certs/etcd/crl.pem', ca_pem: `${pem('A')}\n` });
    expect(p.bundles).toEqual({ etcd: `${pem('A')}\n${pem('B')}\n`, web: `${pem('W')}\n` }); // a CA without a service is its own
    expect(Object.keys(p.cas)).toEqual(['etcd', 'etcd-2', 'web']);
  });

  it('uses the discovery environment’s directory (cert.sh: $UL_STATE/certs) there; no CA: empty maps', () => {
    expect(pkiTemplateContext([{ name: 'x', certificate: 'P' }], 'discovery').cas.x!.cert).toBe(`${MACHINE_CERT_DIR.discovery}/x/cert.pem`);
    expect(pkiTemplateContext([], 'os')).toEqual({ dir: '/etc/underlay/certs', cas: {}, bundles: {} });
  });
});
