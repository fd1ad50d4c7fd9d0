import type { Context, Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { z } from 'zod';
import type { BootHttp } from './boot-http.js';
import type { BootSession, ClaimResult, ClaimVia } from './boot-sessions.js';
import { ForbiddenError, InvalidError } from '../../shared/errors/domain-errors.js';
import { ClaimRefusedError, PayloadTooLargeError } from './errors.js';
import { BOOT_ROUTES } from '../boot/urls.js';

const ClaimBody = z.object({ token: z.string().max(128) }).strict();

/**
 * Claims a boot token for the request's client, raising what must never be silent: a refused second
 * claim (`boot-claim-refused`) and a session superseded by a newer boot of the machine
 * (`boot-session-superseded`). Rate limited per source address and per MAC.
 */
export async function claimBoot(h: BootHttp, c: Context, token: string, via: ClaimVia): Promise<ClaimResult> {
  const remote = h.remote(c);
  // A URL client's later requests (same token, same address) are not claims: the config limiter covers them.
  const holder = h.sessions.sessionOfToken(token);
  if (!(via === 'url' && holder?.remote === remote)) h.limits.claim.take(h.sessions.macOf(token) ?? 'unknown-token', remote);
  let r: ClaimResult;
  try {
    r = await h.sessions.claim(token, remote, via);
  } catch (e) {
    if (e instanceof ClaimRefusedError) {
      h.log.warn({ machine: e.machineId, mac: e.mac, remote, holder: e.holderRemote, via }, 'refused a second claim of a boot token');
      await h.emit('boot-claim-refused', { machineId: e.machineId, mac: e.mac, remote, holderRemote: e.holderRemote, via });
    }
    throw e;
  }
  if (r.fresh) h.log.info({ machine: r.session.machine, mac: r.session.mac, remote, via, session: r.session.id }, 'boot token claimed');
  if (r.superseded) {
    await h.emit('boot-session-superseded', { machineId: r.session.machine, mac: r.session.mac, remote, previousRemote: r.superseded.remote, session: r.session.id, previous: r.superseded.id });
  }
  return r;
}

/** The session a `/m/<token>/…` request belongs to: its bearer's (for that token) or an implicit URL claim. */
export async function sessionForUrl(h: BootHttp, c: Context, token: string): Promise<BootSession> {
  if (h.bearer(c)) {
    const s = h.session(c);
    if (s.id !== h.sessions.sessionOfToken(token)?.id) throw new ForbiddenError('this session did not claim that boot token');
    return s;
  }
  return (await claimBoot(h, c, token, 'url')).session;
}

/** `POST /api/v1/boot/claim {token}`: the boot token from the kernel line → this boot's session credential. */
export function registerBootClaim(app: Hono, h: BootHttp): void {
  app.post(
    BOOT_ROUTES.claim,
    bodyLimit({ maxSize: 1024, onError: () => { throw new PayloadTooLargeError('claim body over 1 KiB'); } }),
    async (c) => {
      let body: z.infer<typeof ClaimBody>;
      try {
        body = ClaimBody.parse(await c.req.json());
      } catch {
        throw new InvalidError('body must be {"token": "<boot token>"}');
      }
      const r = await claimBoot(h, c, body.token, 'explicit');
      return c.json({
        session: r.credential,
        machine: r.session.machine,
        mac: r.session.mac,
        // The runner's replay floor: tasks of this agent at or below it were handed to an earlier boot.
        seqFloor: h.sessions.seqFloor(r.session.machine),
        ...(h.o.agentId ? { agent: h.o.agentId } : {}),
      });
    },
  );
}
