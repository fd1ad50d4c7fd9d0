import { Hono } from 'hono';
import { BootHttp, type BootHttpOptions } from './boot-http.js';
import { registerBootClaim } from './boot-claim.js';
import { registerBootFiles } from './boot-files.js';
import { registerBootScripts } from './boot-scripts.js';
import { machineErrorResponse, MachineHttpError } from './errors.js';
import { registerInstalledOsRoutes } from './installed-os-routes.js';
import { registerMachineConfigs } from './machine-configs.js';
import { registerMachineReports } from './machine-reports.js';
import { registerRunnerRoutes } from './runner-routes.js';

export type { BootHttpOptions } from './boot-http.js';

const STORAGE_ERRORS = new Set(['ENOSPC', 'EDQUOT', 'EIO', 'EROFS']);

/**
 * The agent's HTTP boot surface (docs/agent-http.md): iPXE entry and per-machine scripts, boot files
 * with Range, the boot-token claim, per-machine rendered configuration, discovery intake, service
 * health and the machine runner's task API. Plain HTTP (firmware has no trust store); machines prove
 * who they are with per-boot sessions (agent/http/boot-sessions.ts), never by MAC or source IP alone.
 */
export function createBootApp(o: BootHttpOptions): Hono {
  const app = new Hono();
  const h = new BootHttp(o);

  app.onError((err, c) => {
    if (err instanceof MachineHttpError) {
      const r = machineErrorResponse(err);
      return c.json(r.body, r.status as 400, r.headers);
    }
    const code = (err as NodeJS.ErrnoException).code;
    if (code && STORAGE_ERRORS.has(code)) {
      h.log.error({ err: err.message, code, path: c.req.path }, 'storage error on the boot surface; answering 503');
      return c.json({ error: { code: 'unavailable', message: 'the agent cannot write to its disk right now; retry later' } }, 503, { 'retry-after': '30' });
    }
    h.log.error({ err, path: c.req.path }, 'boot http error');
    return c.text('internal error\n', 500);
  });

  app.get('/healthz', (c) => c.json({ status: 'ok', stateVersion: o.rt.desiredState.version, outbox: o.rt.outbox.depth() }));
  registerBootScripts(app, h);
  registerBootFiles(app, h);
  registerBootClaim(app, h);
  registerMachineConfigs(app, h);
  registerMachineReports(app, h);
  registerRunnerRoutes(app, h);
  registerInstalledOsRoutes(app, h);
  return app;
}
