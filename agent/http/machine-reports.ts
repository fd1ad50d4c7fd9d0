import type { Hono, MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { z } from 'zod';
import { InvalidFactsError, parseFacts, type HardwareFacts } from '../../shared/api/facts.js';
import { jsonTextDepth } from '../../shared/util/json-depth.js';
import type { BootHttp } from './boot-http.js';
import { InvalidError, NotFoundError } from '../../shared/errors/domain-errors.js';
import { PayloadTooLargeError } from './errors.js';
import { BOOT_ROUTES } from '../boot/urls.js';

export const MAX_DISCOVERY_BYTES = 256 * 1024;
/** Facts are a few levels deep; anything deeper is refused before parsing (deep values overflow JSON.stringify later). */
const MAX_FACTS_DEPTH = 16;

const MAX_HEALTH_BYTES = 8 * 1024;
const ServiceName = z.string().regex(/^[A-Za-z0-9._:-]{1,128}$/);
const HealthBody = z.object({ note: z.string().max(4096).optional() }).strict();
const tooLarge = (what: string) => () => {
  throw new PayloadTooLargeError(what);
};

/** Session first (no body is read without one), then the per-MAC and per-source rate limit. */
function sessionThenRate(h: BootHttp, limit: BootHttp['limits']['health']): MiddlewareHandler {
  return async (c, next) => {
    limit.take(h.session(c).mac, h.remote(c));
    await next();
  };
}

/**
 * What machines report about themselves: discovery facts and service health. Both need the boot's
 * session (authenticated before the body is read), are rate limited per MAC and per source, size
 * limited, validated at the edge, and durable in the outbox before they are acknowledged (503 when the
 * outbox cannot take them).
 */
export function registerMachineReports(app: Hono, h: BootHttp): void {
  app.post(BOOT_ROUTES.discovery, sessionThenRate(h, h.limits.discovery), bodyLimit({ maxSize: MAX_DISCOVERY_BYTES, onError: tooLarge('discovery facts over 256 KiB') }), async (c) => {
    const s = h.session(c);
    let raw: unknown;
    try {
      const text = await c.req.text();
      if (jsonTextDepth(text, MAX_FACTS_DEPTH) > MAX_FACTS_DEPTH) throw new InvalidError(`facts nest deeper than ${MAX_FACTS_DEPTH} levels`);
      raw = JSON.parse(text);
    } catch (e) {
      if (e instanceof PayloadTooLargeError || e instanceof InvalidError) throw e;
      throw new InvalidError('body is not JSON');
    }
    if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw new InvalidError('facts must be a JSON object');
    let facts: HardwareFacts;
    try {
      facts = parseFacts(raw);
    } catch (e) {
      if (e instanceof InvalidFactsError) throw new InvalidError(e.message);
      throw e;
    }
    // Durable in the outbox before we acknowledge: discovery during a central outage is not lost.
    await h.emit('discovery', { machineId: s.machine, mac: s.mac, facts }, `discovery-${s.mac}-${Date.now()}`);
    h.log.info({ mac: s.mac, machine: s.machine }, 'discovery received');
    return c.json({ accepted: true, machine: s.machine }, 202);
  });

  // Service health for members running on this machine, relayed to the central through the outbox.
  app.put(BOOT_ROUTES.serviceHealth, sessionThenRate(h, h.limits.health), bodyLimit({ maxSize: MAX_HEALTH_BYTES, onError: tooLarge('health body over 8 KiB') }), async (c) => {
    const s = h.session(c);
    const status = ({ pass: 'passing', warn: 'warning', fail: 'critical' } as const)[c.req.param('check') as 'pass' | 'warn' | 'fail'];
    if (!status) throw new NotFoundError('use pass, warn or fail');
    const service = ServiceName.safeParse(c.req.param('service'));
    const member = ServiceName.safeParse(c.req.param('member'));
    if (!service.success || !member.success) throw new InvalidError('service and member are 1-128 characters of [A-Za-z0-9._:-]');
    let note: string | undefined;
    const text = await c.req.text();
    if (text) {
      try {
        note = HealthBody.parse(JSON.parse(text)).note;
      } catch {
        throw new InvalidError('body must be {"note"?: string of at most 4096 characters}');
      }
    }
    const data = { service: service.data, member: member.data, status, machineId: s.machine, ...(note ? { note } : {}) };
    await h.emit('service-status', data);
    return c.json({ accepted: true, ...data }, 202);
  });
}
