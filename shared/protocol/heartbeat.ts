/**
 * Link heartbeat timing, shared by the central's sessions and the agent's link. Both sides send a ping
 * every `heartbeatMs` and call the link dead after `deadAfterMs` without any inbound traffic.
 *
 * `UNDERLAY_HEARTBEAT_MS` (read here and nowhere else) lowers the interval, e.g. for tests that must see
 * a dead link quickly; the dead-after time is always three intervals. Default: 10 s / 30 s.
 */
export const DEFAULT_HEARTBEAT_MS = 10_000;

export function heartbeatSettings(env: NodeJS.ProcessEnv = process.env): { heartbeatMs: number; deadAfterMs: number } {
  const raw = env.UNDERLAY_HEARTBEAT_MS;
  const n = raw === undefined || raw === '' ? DEFAULT_HEARTBEAT_MS : Number(raw);
  if (!Number.isInteger(n) || n < 100 || n > 600_000) throw new Error(`UNDERLAY_HEARTBEAT_MS must be an integer between 100 and 600000 (got ${raw})`);
  return { heartbeatMs: n, deadAfterMs: 3 * n };
}
