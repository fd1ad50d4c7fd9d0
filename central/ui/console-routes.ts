import type { OpenAPIHono } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { consoleDir, loadAssets, type Asset } from './assets.js';
import { pageHeaders } from './headers.js';

/** The files esbuild writes (scripts/build-ui.mjs). */
export const CONSOLE_FILES = ['index.html', 'app.js', 'app.css'] as const;

function send(c: Context, a: Asset, cache: string): Response {
  return c.body(a.body as Uint8Array<ArrayBuffer>, 200, { 'content-type': a.type, 'cache-control': cache, ...pageHeaders('console') });
}

/**
 * The operator console: `/` redirects to `/ui`; `/ui` and every client-side path under it get the page;
 * `/ui/assets/<file>` the bundle and stylesheet. The page holds no data: everything it shows comes from
 * the API with the signed-in token.
 */
export function registerConsoleRoutes(app: OpenAPIHono, dir = consoleDir()): void {
  const files = loadAssets(dir, CONSOLE_FILES);
  const page = files.get('index.html');
  app.get('/', (c) => c.redirect('/ui', 302));
  app.get('/ui/assets/:file', (c) => {
    const a = files.get(c.req.param('file'));
    if (!a || c.req.param('file') === 'index.html') return c.json({ error: { code: 'not_found', message: `no console asset "${c.req.param('file')}"` } }, 404);
    return send(c, a, 'no-cache');
  });
  const shell = (c: Context) => {
    if (!page) return c.text('The console is not built: run "npm run build" (it builds dist/central/ui/public).', 503);
    return send(c, page, 'no-store');
  };
  app.get('/ui', shell);
  app.get('/ui/*', shell);
}
