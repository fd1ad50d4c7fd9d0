import type { Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { z } from 'zod';
import type { BootHttp } from './boot-http.js';
import { InvalidError, NotFoundError, UnavailableError } from '../../shared/errors/domain-errors.js';
import { FailureReason, TaskProgress } from '../../shared/protocol/task-progress.js';
import { applyHandOut, applyRunnerOutcome } from '../tasks/deploy-effects.js';
import { PayloadTooLargeError } from './errors.js';
import { BOOT_ROUTES } from '../boot/urls.js';

const RunnerEvent = z
  .object({
    state: z.enum(['running', 'succeeded', 'failed']),
    output: z.string().max(1_100_000).optional(),
    exitCode: z.number().int().optional(),
    /** Why it failed, as a short code (image-deploy: download-failed, hash-mismatch, write-failed, …). */
    reason: FailureReason.optional(),
    progress: TaskProgress.optional(),
  })
  .strict();

/**
 * The machine runner's task API. A task goes to the session that asks for it (recorded durably); a
 * report is accepted only from the session the task was handed to. Anything else is 404 and nothing is
 * recorded or forwarded to the central.
 */
export function registerRunnerRoutes(app: Hono, h: BootHttp): void {
  app.get(BOOT_ROUTES.runnerNext, async (c) => {
    const s = h.session(c);
    const wait = Math.min(Math.max(Number(c.req.query('wait') ?? 0) || 0, 0), h.o.maxWaitSec ?? 60);
    const task = await h.o.rt.machineQueue.waitFor(s.machine, wait * 1000);
    if (!task) return c.body(null, 204);
    await applyHandOut({ desiredState: h.o.rt.desiredState, osCredentials: h.o.osCredentials, logger: h.log }, { kind: task.kind, machine: s.machine });
    await h.sessions.recordHanded(s, task.id, h.o.rt.taskLog.get(task.id)?.seq ?? 0);
    h.log.info({ mac: s.mac, task: task.id, kind: task.kind, session: s.id }, 'handed a task to the machine runner');
    return c.json(task.signed, 200);
  });

  app.post(
    BOOT_ROUTES.runnerEvents,
    async (c, next) => {
      const s = h.session(c);
      if (!h.sessions.wasHandedTo(s, c.req.param('id'))) throw new NotFoundError('no such task for this session');
      await next();
    },
    bodyLimit({ maxSize: 2 * 1024 * 1024, onError: () => { throw new PayloadTooLargeError('report over 2 MiB'); } }),
    async (c) => {
      const id = c.req.param('id');
      let body: z.infer<typeof RunnerEvent>;
      try {
        body = RunnerEvent.parse(await c.req.json());
      } catch (e) {
        if (e instanceof PayloadTooLargeError) throw e;
        throw new InvalidError('body must be {"state": "running"|"succeeded"|"failed", "output"?: string, "exitCode"?: integer, "reason"?: code, "progress"?: {...}}');
      }
      const known = h.o.rt.taskLog.get(id);
      // Netboot off after a deploy (on after a release) is durable before the runner hears "ok" and reboots.
      if (known && known.state !== 'succeeded' && known.state !== 'failed') await applyRunnerOutcome({ desiredState: h.o.rt.desiredState, osCredentials: h.o.osCredentials, logger: h.log }, known, body.state);
      try {
        const { state: _, ...extra } = body;
        await h.o.rt.executor.report(id, body.state, extra);
      } catch (e) {
        h.log.error({ task: id, err: (e as Error).message }, 'could not queue a runner report; answering 503');
        throw new UnavailableError('the agent cannot record this report right now (outbox or disk full); retry later');
      }
      if (body.state !== 'running') {
        await h.o.rt.machineQueue.done(id);
        if (known) await h.o.rt.taskLog.record({ ...known, state: body.state, at: new Date().toISOString() });
      }
      return c.json({ ok: true });
    },
  );
}
