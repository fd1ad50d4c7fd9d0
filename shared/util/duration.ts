const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, y: 365 * 86_400_000 };

/** Parses "30s", "10m", "1h", "7d", "10y" (365 days each; or a bare number of seconds) to milliseconds. */
export function parseDuration(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d|y)?$/.exec(text.trim());
  if (!m) throw new Error(`"${text}" is not a duration (use e.g. 30s, 10m, 1h, 7d)`);
  return Math.round(Number(m[1]) * UNITS[m[2] ?? 's']);
}
