import type { OpenAPIHono } from '@hono/zod-openapi';
import { loadAssets, swaggerUiDir } from './assets.js';
import { pageHeaders } from './headers.js';

const SWAGGER_FILES = ['swagger-ui.css', 'swagger-ui-bundle.js', 'swagger-ui-standalone-preset.js'] as const;

const PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Underlay central API</title><link rel="stylesheet" href="/docs/assets/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="/docs/assets/swagger-ui-bundle.js"></script><script src="/docs/assets/init.js"></script></body></html>`;

// validatorUrl null: Swagger UI would otherwise send the document to validator.swagger.io.
const INIT = `window.ui = SwaggerUIBundle({ url: '/api/v1/openapi.json', dom_id: '#swagger-ui', validatorUrl: null, deepLinking: true, persistAuthorization: false });`;

/** `/docs`: Swagger UI from the swagger-ui-dist package (no CDN: the page works on an air-gapped site). */
export function registerDocsRoutes(app: OpenAPIHono, dir = swaggerUiDir()): void {
  const files = loadAssets(dir, SWAGGER_FILES);
  app.get('/docs', (c) => c.html(PAGE, 200, pageHeaders('docs')));
  app.get('/docs/assets/init.js', (c) => c.body(INIT, 200, { 'content-type': 'text/javascript; charset=utf-8', ...pageHeaders('docs') }));
  app.get('/docs/assets/:file', (c) => {
    const a = files.get(c.req.param('file'));
    if (!a) return c.json({ error: { code: 'not_found', message: `no docs asset "${c.req.param('file')}"` } }, 404);
    return c.body(a.body as Uint8Array<ArrayBuffer>, 200, { 'content-type': a.type, 'cache-control': 'max-age=3600', ...pageHeaders('docs') });
  });
}
