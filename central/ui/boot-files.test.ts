import { describe, expect, it } from 'vitest';
import { MASK, PREVIEW_TOKEN } from './boot-files.js';
import { uiTestApp } from './ui-app.test-support.js';


describe('boot files preview', () => {
  it('renders the iPXE script and every file of the machine’s boot environment, secret params masked, placeholder token', async () => {
    const t = await uiTestApp();
    await t.store.put('sites', { id: 's1', name: 'dc1', params: { ntp: 'ntp.dc1' } });
    await t.store.put('params', { id: 'p1', name: 'api_key', secret: true });
    await t.store.put('bootenvs', {
      id: 'b1',
      name: 'tiny',
      os: { family: 'test' },
      kernel: { url: 'tiny/vmlinuz' },
      bootParams: 'console=ttyS0 url={{ agent.httpUrl }} token={{ token }}',
      templates: [
        { name: 'cfg', path: 'config.txt', template: 'ntp={{ params.ntp }} key={{ params.api_key }} bmc={{ params.bmc_password }}' },
        { name: 'broken', path: 'broken.txt', template: 'need={{ params.missing | required }}' },
      ],
    });
    // A secret param's value and a BMC password as stored: sealed boxes (never their plaintext at the central).
    await t.store.put('machines', { id: 'm1', name: 'web-1', site: 'dc1', macs: ['52:54:00:00:00:01'], profiles: [], bootenv: 'tiny', params: { api_key: { $sealed: 'c2VhbGVk' }, bmc_password: { $sealed: 'c2VhbGVk' } }, state: 'ready' });
    const viewer = await t.token('viewer');
    const r = await t.app.request('/api/v1/machines/web-1/boot-files', { headers: { authorization: `Bearer ${viewer}` } });
    expect(r.status).toBe(200);
    const body = (await r.json()) as { bootenv: string; files: { path: string; text?: string; error?: string }[] };
    expect(body.bootenv).toBe('tiny');
    const byPath = Object.fromEntries(body.files.map((f) => [f.path, f]));
    expect(byPath['boot.ipxe'].text).toContain(`token=${PREVIEW_TOKEN}`);
    expect(byPath['config.txt'].text).toBe(`ntp=ntp.dc1 key=${MASK} bmc=${MASK}`);
    expect(byPath['broken.txt'].error).toBeTruthy();
    expect(JSON.stringify(body)).not.toContain('$sealed');
    expect((await t.app.request('/api/v1/machines/nope/boot-files', { headers: { authorization: `Bearer ${viewer}` } })).status).toBe(404);
    const other = await t.token('viewer', 'dc2');
    expect((await t.app.request('/api/v1/machines/web-1/boot-files', { headers: { authorization: `Bearer ${other}` } })).status).toBe(404);
    expect((await t.app.request('/api/v1/machines/web-1/boot-files')).status).toBe(401);
  });

  it('renders the built-in discovery environment with the central’s task-signing key as the pinned key', async () => {
    const t = await uiTestApp();
    const key = Buffer.alloc(32, 9).toString('base64');
    t.deps.central.signingPublicKey = key;
    await t.store.put('sites', { id: 's1', name: 'lab', params: {} });
    await t.store.put('machines', { id: 'm1', name: 'new-1', site: 'lab', macs: ['52:54:00:00:00:02'], profiles: [], bootenv: 'discovery', params: {}, state: 'discovered' });
    const r = await t.app.request('/api/v1/machines/new-1/boot-files', { headers: { authorization: `Bearer ${await t.token('viewer')}` } });
    const body = (await r.json()) as { bootenv: string; files: { path: string; text?: string; error?: string }[] };
    expect(body.bootenv).toBe('discovery');
    expect(body.files[0].error).toBeUndefined();
    expect(body.files[0].text).toContain(`underlay.pubkey=${key}`);
  });
});
