import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { consoleDir } from './assets.js';
import { uiTestApp } from './ui-app.test-support.js';

type T = Awaited<ReturnType<typeof uiTestApp>>;
let t: T;
beforeAll(async () => {
  t = await uiTestApp();
});
afterAll(() => undefined);

const bearer = (token: string) => ({ headers: { authorization: `Bearer ${token}` } });

/** Reads an SSE response to its end (the stream closes at its ?timeout=) and returns the `change` notes. */
async function changesOf(res: Response): Promise<{ collection: string; id: string; state?: string }[]> {
  const text = await res.text();
  return text.split('\n\n').filter((b) => b.startsWith('event: change')).map((b) => JSON.parse(/^data: (.*)$/m.exec(b)![1]));
}

describe('console routes', () => {
  it('redirects / to /ui and serves the page for every client path, with a same-origin-only policy', async () => {
    const root = await t.app.request('/');
    expect(root.status).toBe(302);
    expect(root.headers.get('location')).toBe('/ui');
    expect(consoleDir(), 'the console bundle is built (npm run build)').toBeDefined();
    for (const p of ['/ui', '/ui/machines', '/ui/machines/m-1']) {
      const r = await t.app.request(p);
      expect(r.status, p).toBe(200);
      expect(r.headers.get('content-type')).toContain('text/html');
      const csp = r.headers.get('content-security-policy')!;
      expect(csp).toContain("script-src 'self'");
      expect(csp).toContain("connect-src 'self'");
      expect(csp).toContain("frame-ancestors 'none'");
      const html = await r.text();
      expect(html).toContain('/ui/assets/app.js');
      expect(html).not.toMatch(/https?:\/\//); // nothing from the internet
    }
    const js = await t.app.request('/ui/assets/app.js');
    expect(js.status).toBe(200);
    expect(js.headers.get('content-type')).toContain('javascript');
    expect(await js.text()).not.toContain('localStorage');
    expect((await t.app.request('/ui/assets/../../etc/passwd')).status).toBe(404);
    expect((await t.app.request('/ui/assets/nope.js')).status).toBe(404);
  });

  it('/docs is Swagger UI from the package: the page and its assets come from this server', async () => {
    const page = await t.app.request('/docs');
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).toContain('/docs/assets/swagger-ui-bundle.js');
    expect(html).not.toMatch(/https?:\/\//);
    const bundle = await t.app.request('/docs/assets/swagger-ui-bundle.js');
    expect(bundle.status).toBe(200);
    expect((await bundle.arrayBuffer()).byteLength).toBeGreaterThan(500_000);
    expect((await t.app.request('/docs/assets/swagger-ui.css')).status).toBe(200);
    const init = await (await t.app.request('/docs/assets/init.js')).text();
    expect(init).toContain("url: '/api/v1/openapi.json'");
    expect(init).toContain('validatorUrl: null'); // else the document goes to validator.swagger.io
  });

  it('whoami tells the role and site of the calling token, never its secret; 401 without one', async () => {
    const viewer = await t.token('viewer', 'dc2');
    const r = await t.app.request('/api/v1/whoami', bearer(viewer));
    expect(r.status).toBe(200);
    const me = (await r.json()) as Record<string, unknown>;
    expect(me).toMatchObject({ role: 'viewer', site: 'dc2' });
    expect(JSON.stringify(me)).not.toContain(viewer);
    expect(Object.keys(me)).not.toContain('hash');
    expect((await t.app.request('/api/v1/whoami')).status).toBe(401);
  });
});

describe('change stream', () => {
  it('needs a token; a bad timeout is a 400', async () => {
    expect((await t.app.request('/api/v1/changes/stream?timeout=1s')).status).toBe(401);
    const admin = await t.token('admin');
    expect((await t.app.request('/api/v1/changes/stream?timeout=soon', bearer(admin))).status).toBe(400);
  });

  it('streams the changes of tasks, runs, machines and agents as they are written; a site token hears only its site', async () => {
    const admin = await t.token('admin');
    const dc2 = await t.token('viewer', 'dc2');
    const all = t.app.request('/api/v1/changes/stream?timeout=1500ms', bearer(admin));
    const scoped = t.app.request('/api/v1/changes/stream?timeout=1500ms', bearer(dc2));
    await new Promise((r) => setTimeout(r, 200));
    await t.store.put('machines', { id: 'm-1', name: 'one', site: 'dc1', macs: [], profiles: [], state: 'ready' });
    await t.store.put('machines', { id: 'm-2', name: 'two', site: 'dc2', macs: [], profiles: [], state: 'deploying' });
    await t.store.put('profiles', { id: 'p-1', name: 'web' }); // not streamed
    const seenAll = await changesOf(await all);
    const seenScoped = await changesOf(await scoped);
    expect(seenAll).toEqual([
      { collection: 'machines', id: 'm-1', type: 'put', state: 'ready' },
      { collection: 'machines', id: 'm-2', type: 'put', state: 'deploying' },
    ]);
    expect(seenScoped).toEqual([{ collection: 'machines', id: 'm-2', type: 'put', state: 'deploying' }]);
  });
});
