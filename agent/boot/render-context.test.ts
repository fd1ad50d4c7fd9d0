import { describe, expect, it } from 'vitest';
import { renderContextFor } from './render-context.js';

const agent = { httpUrl: 'http://198.18.0.1:8080', tftpAddress: '198.18.0.1', pubkey: 'k' };
const files = (localArtifact?: (u: string) => string | undefined) =>
  renderContextFor({ state: null, machine: undefined, mac: '52:54:00:00:00:01', proposedId: 'p', token: 't', agent, ...(localArtifact ? { localArtifact } : {}) }).urls.files;

describe('bootContext urls.files', () => {
  const sha = 'a'.repeat(64);
  const pulled = (u: string) => (u === 'discovery/vmlinuz' || u === 'https://up.example/k' ? `sha256/${sha}` : undefined);

  it('serves a boot-dir path from the artifact named after it (the distributed discovery image)', () => {
    expect(files(pulled)('discovery/vmlinuz')).toBe(`${agent.httpUrl}/files/sha256/${sha}`);
  });

  it('falls back to the file in the boot dir when no artifact stands for the path', () => {
    expect(files(pulled)('discovery/initrd.img')).toBe(`${agent.httpUrl}/files/discovery/initrd.img`);
    expect(files()('discovery/vmlinuz')).toBe(`${agent.httpUrl}/files/discovery/vmlinuz`);
  });

  it('upstream URLs: the local copy if pulled, else the URL itself', () => {
    expect(files(pulled)('https://up.example/k')).toBe(`${agent.httpUrl}/files/sha256/${sha}`);
    expect(files(pulled)('https://up.example/other')).toBe('https://up.example/other');
  });
});

describe('bootContext serviceCas', () => {
  it('hands the site’s service CAs (public: name, service, certificate) to the templates; none without a pki section', () => {
    const state = { site: { name: 'dc1', params: {} }, machines: [], pki: { cas: [{ name: 'demo', service: 'web', certificate: 'PEM', crl: 'CRL' }], requests: [] } } as never;
    const ctx = renderContextFor({ state, machine: undefined, mac: '52:54:00:00:00:01', proposedId: 'p', token: 't', agent });
    expect(ctx.serviceCas).toEqual([{ name: 'demo', service: 'web', certificate: 'PEM' }]);
    expect(renderContextFor({ state: null, machine: undefined, mac: '52:54:00:00:00:01', proposedId: 'p', token: 't', agent }).serviceCas).toBeUndefined();
  });
});
