import { Hono, type Context } from 'hono';
import { BootHttp, type BootHttpOptions } from './boot-http.js';
import { registerBootClaim } from './boot-claim.js';
import { registerBootFiles } from './boot-files.js';
import { registerBootScripts } from './boot-scripts.js';
import { NotFoundError } from '../../shared/errors/domain-errors.js';
import { errorResponse } from './errors.js';
import { registerInstalledOsRoutes } from './installed-os-routes.js';
import { registerMachineConfigs } from './machine-configs.js';
import { registerMachineReports } from './machine-reports.js';
import { registerRunnerRoutes } from './runner-routes.js';
import { registerCertRoutes } from './cert-routes.js';
import { BOOT_ROUTES } from '../boot/urls.js';

export type { BootHttpOptions } from './boot-http.js';

/**
 * The agent's HTTP boot surface (docs/agent-http.md): iPXE entry and per-machine scripts, boot files
 * with Range, the boot-token claim, per-machine rendered configuration, discovery intake, service
 * health and the machine runner's task API. Plain HTTP (firmware has no trust store); machines prove
 * who they are with per-boot sessions (agent/http/boot-sessions.ts), never by MAC or source IP alone.
 */
export function createBootApp(o: BootHttpOptions): Hono {
  const app = new Hono();
  const h = new BootHttp(o);

  const answer = (err: unknown, c: Context) => {
    const r = errorResponse(err);
    if (r.log === 'storage') h.log.error({ err: (err as Error).message, code: (err as NodeJS.ErrnoException).code, path: c.req.path }, 'storage error on the boot surface; answering 503');
    if (r.log === 'internal') h.log.error({ err, path: c.req.path }, 'boot http error');
    return c.json(r.body, r.status as 500, r.headers);
  };
  if (o.onRequest) {
    const count = o.onRequest;
    app.use('*', async (c, next) => {
      await next();
      const route = c.req.routePath;
      count(!route || route === '*' || route === '/*' ? 'unmatched' : route, c.res.status);
    });
  }
  app.onError(answer);
  app.notFound((c) => answer(new NotFoundError('no such path on this agent'), c));

  app.get(BOOT_ROUTES.health, (c) => c.json({ status: 'ok', stateVersion: o.rt.desiredState.version, outbox: o.rt.outbox.depth() }));
  registerBootScripts(app, h);
  registerBootFiles(app, h);
  registerBootClaim(app, h);
  registerMachineConfigs(app, h);
  registerMachineReports(app, h);
  registerRunnerRoutes(app, h);
  registerInstalledOsRoutes(app, h);
  registerCertRoutes(app, h);
  return app;
}
