import { describe, expect, it } from 'vitest';
import type { InventoryDocument } from '../../shared/api/ansible-inventory.js';
import { memoryStore } from '../all-collections.test-support.js';
import { SERVICE_CAS } from '../service-pki/resources.js';
import { fixture } from './render-fixture.test-support.js';
import { HostBlockCache, renderHostVars, renderInventory, renderInventoryBody, type InventorySource } from './render.js';
import { sourceFromStore } from './routes.js';

const pem = (tag: string) => `-----BEGIN CERTIFICATE-----\n${tag}\n-----END CERTIFICATE-----`;
const ca = (name: string, service: string) => ({ name, service, certificate: pem(name), fingerprint: `fp-${name}`, notAfter: '2036-01-01T00:00:00.000Z' });

/** etcd has two CAs (one being rotated in), web one; nobody is a member of web. */
function withCas(): InventorySource {
  return { ...fixture(), cas: [ca('etcd-new', 'etcd'), ca('web', 'web'), ca('etcd', 'etcd')] };
}

const doc = (src: InventorySource, cache?: HostBlockCache) => JSON.parse(renderInventoryBody(src, { fragments: cache }).bytes.toString('utf8')) as InventoryDocument;

describe('service CAs in the inventory', () => {
  it('gives each member the CA bundle of its services (every CA of the service, by CA name); non-members get none', () => {
    const hv = doc(withCas())._meta!.hostvars;
    const etcdBundle = `${pem('etcd')}\n${pem('etcd-new')}\n`;
    expect(hv['web-1']!.underlay_ca_bundles).toEqual({ etcd: etcdBundle }); // passing member
    expect(hv['db-1']!.underlay_ca_bundles).toEqual({ etcd: etcdBundle }); // critical member: still a member
    expect(hv['new-1']).not.toHaveProperty('underlay_ca_bundles');
    expect(renderHostVars(withCas(), 'web-1')!.underlay_ca_bundles).toEqual({ etcd: etcdBundle });
  });

  it('lists every CA (with its service and fingerprint) in all.vars, and nothing when there is no CA', () => {
    const vars = doc(withCas()).all!.vars as Record<string, unknown>;
    expect(vars.underlay_service_cas).toEqual({
      etcd: { service: 'etcd', fingerprint: 'fp-etcd', not_after: '2036-01-01T00:00:00.000Z', certificate: `${pem('etcd')}\n` },
      'etcd-new': { service: 'etcd', fingerprint: 'fp-etcd-new', not_after: '2036-01-01T00:00:00.000Z', certificate: `${pem('etcd-new')}\n` },
      web: { service: 'web', fingerprint: 'fp-web', not_after: '2036-01-01T00:00:00.000Z', certificate: `${pem('web')}\n` },
    });
    expect(doc(fixture()).all!.vars).not.toHaveProperty('underlay_service_cas');
    expect(doc(fixture())._meta!.hostvars['web-1']).not.toHaveProperty('underlay_ca_bundles');
  });

  it('serves the same bytes as the object renderer', () => {
    expect(renderInventoryBody(withCas()).bytes.toString('utf8')).toBe(JSON.stringify(renderInventory(withCas())));
  });

  it('a new or rotated CA reaches hosts whose cached blocks were rendered before it', () => {
    // The same machine documents throughout: the cache reuses a block while its machines are unchanged.
    const base = fixture();
    const cache = new HostBlockCache();
    doc(base, cache);
    expect(doc({ ...base, cas: withCas().cas }, cache)._meta!.hostvars['web-1']!.underlay_ca_bundles).toBeDefined();
    const rotated = { ...base, cas: [ca('etcd-new', 'etcd')] };
    expect(doc(rotated, cache)._meta!.hostvars['web-1']!.underlay_ca_bundles).toEqual({ etcd: `${pem('etcd-new')}\n` });
    expect(cache.hits).toBe(0);
    doc(rotated, cache);
    expect(cache.hits).toBeGreaterThan(0); // unchanged CAs: blocks are reused
  });

  it('reads the CAs from the store without their sealed keys', async () => {
    const store = memoryStore();
    const at = new Date().toISOString();
    await store.put(SERVICE_CAS, { id: 'ca1', ...ca('demo', 'demo'), keyType: 'ec-p256', maxCertTtl: '30d', crl: 'CRL', sealedKey: { alg: 'aes-256-gcm', iv: 'IVIVIV', tag: 'TAGTAG', data: 'SEALEDKEYDATA' }, createdAt: at, updatedAt: at });
    const src = sourceFromStore(store);
    expect(src.cas).toEqual([ca('demo', 'demo')]);
    const body = renderInventoryBody(src).bytes.toString('utf8');
    expect(body).toContain('fp-demo');
    expect(body).not.toMatch(/SEALEDKEYDATA|sealedKey|TAGTAG/);
  });
});
