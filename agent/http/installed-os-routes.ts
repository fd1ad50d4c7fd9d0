import type { Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { z } from 'zod';
import { MACHINE_OS_EVENT, OsReport } from '../../shared/api/os-report.js';
import { BOOT_ROUTES } from '../boot/urls.js';
import type { BootHttp } from './boot-http.js';
import { ForbiddenError, InvalidError, UnavailableError } from '../../shared/errors/domain-errors.js';
import { PayloadTooLargeError } from './errors.js';

const CredentialRequest = z.object({ task: z.string().min(1).max(64) }).strict();
const DEPLOYING = new Set(['accepted', 'running']);

/**
 * The installed OS's side of the machine surface (docs/decisions.md, "Installed-OS credential"):
 * - `POST /api/v1/runner/os-credential {task}`: the deploy's runner (a live boot session that was handed
 *   image-deploy `task`, still running) gets the new OS's credential, once per deploy, plus the seed URL
 *   (`<agent>/m/<credential>/`) and the runner's replay floor. Anything else: 401/403/409, nothing issued.
 * - `POST /api/v1/runner/os-report`: the installed runner's OsReport (installed-OS credential only),
 *   forwarded to the central as a `machine-os` agent event.
 * The credential also opens `/m/<credential>/…` (machine-configs.ts) and the runner's task routes.
 */
export function registerInstalledOsRoutes(app: Hono, h: BootHttp): void {
  app.post(
    BOOT_ROUTES.osCredential,
    bodyLimit({ maxSize: 1024, onError: () => { throw new PayloadTooLargeError('body over 1 KiB'); } }),
    async (c) => {
      const s = h.bootSession(c);
      const creds = h.o.osCredentials;
      if (!creds) throw new UnavailableError('this agent issues no installed-OS credentials');
      let body: z.infer<typeof CredentialRequest>;
      try {
        body = CredentialRequest.parse(await c.req.json());
      } catch {
        throw new InvalidError('body must be {"task": "<image-deploy task id>"}');
      }
      const t = h.o.rt.taskLog.get(body.task);
      if (!h.sessions.wasHandedTo(s, body.task) || !t || t.kind !== 'image-deploy' || t.machine !== s.machine || !DEPLOYING.has(t.state)) {
        h.log.warn({ machine: s.machine, mac: s.mac, task: body.task, remote: h.remote(c) }, 'refused an installed-OS credential: not this session\'s running image-deploy');
        throw new ForbiddenError('an installed-OS credential is issued only to the session running that image-deploy task');
      }
      const credential = await creds.issue(s.machine, s.mac, body.task);
      h.log.info({ machine: s.machine, mac: s.mac, task: body.task }, 'issued the installed-OS credential of a deploy');
      return c.json({
        credential,
        machine: s.machine,
        seedUrl: `${h.o.agent.httpUrl}/m/${credential}/`,
        seqFloor: h.sessions.seqFloor(s.machine),
        ...(h.o.agentId ? { agent: h.o.agentId } : {}),
      });
    },
  );

  app.post(
    BOOT_ROUTES.osReport,
    async (c, next) => {
      const cred = h.o.osCredentials?.find(h.bearer(c));
      if (!cred) {
        h.session(c); // 401 for anything that is no credential at all
        throw new ForbiddenError('only an installed OS reports its OS');
      }
      h.limits.health.take(cred.mac, h.remote(c));
      await next();
    },
    bodyLimit({ maxSize: 64 * 1024, onError: () => { throw new PayloadTooLargeError('report over 64 KiB'); } }),
    async (c) => {
      const cred = h.o.osCredentials!.find(h.bearer(c))!;
      let report: OsReport;
      try {
        report = OsReport.parse(await c.req.json());
      } catch {
        throw new InvalidError('body must be an OsReport (shared/api/os-report.ts)');
      }
      if (report.machineId !== cred.machine) throw new ForbiddenError('this credential belongs to another machine');
      await h.emit(MACHINE_OS_EVENT, { ...report, deployTaskId: cred.task });
      h.log.info({ machine: cred.machine, os: report.os.id, kernel: report.kernel }, 'installed OS reported');
      return c.json({ ok: true });
    },
  );
}
