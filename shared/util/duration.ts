import ms from 'ms';

/**
 * The one duration grammar of Underlay (API fields, CLI flags, UNDERLAY_* settings): a non-negative
 * number and a unit — `500ms`, `30s`, `10m`, `1.5h`, `7d`, `2w`, `10y` or the long forms `30 seconds`,
 * `2 hours` — parsed by the maintained `ms` package. Two rules keep what earlier configs accepted: a
 * bare number is seconds (ms reads it as milliseconds), and a year is 365 days (ms: 365.25).
 */
const UNIT = 'milliseconds?|msecs?|ms|seconds?|secs?|s|minutes?|mins?|m|hours?|hrs?|h|days?|d|weeks?|w|years?|yrs?|y';
/**
 * The grammar as a regular expression (also the `pattern` of duration fields in the OpenAPI document).
 * Any case, spelled out as `[mM][sS]` rather than with the `i` flag: a JSON-schema pattern has no flags.
 */
export const DURATION_PATTERN = new RegExp(`^(\\d+(?:\\.\\d+)?) *(${UNIT.replace(/[a-z]/g, (c) => `[${c}${c.toUpperCase()}]`)})?$`);
export const DURATION_HINT = 'a duration like 500ms, 30s, 10m, 1h, 7d or 10y (a bare number is seconds)';

const DAY_MS = 86_400_000;

/** Milliseconds of `text`; throws on anything that is not a duration. */
export function parseDuration(text: string): number {
  const t = String(text).trim();
  const m = t.length <= 64 ? DURATION_PATTERN.exec(t) : null;
  if (!m) throw new Error(`"${String(text).slice(0, 64)}" is not a duration (use e.g. 30s, 10m, 1h, 7d)`);
  const n = Number(m[1]);
  const unit = m[2]?.toLowerCase();
  let out: number | undefined;
  if (unit === undefined) out = n * 1000;
  else if (/^(y|yrs?|years?)$/.test(unit)) out = n * 365 * DAY_MS;
  else out = ms(`${m[1]}${unit}` as ms.StringValue);
  if (out === undefined || !Number.isFinite(out)) throw new Error(`"${t}" is not a duration (use e.g. 30s, 10m, 1h, 7d)`);
  return Math.round(out);
}

/** Whether `text` is a duration (see parseDuration). */
export function isDuration(text: string): boolean {
  try {
    parseDuration(text);
    return true;
  } catch {
    return false;
  }
}
