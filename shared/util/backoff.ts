/** Exponential backoff with full jitter: a delay in [0, min(max, base·2^attempt)], never below `min`. */
export function backoffDelay(attempt: number, opts: { baseMs?: number; maxMs?: number; minMs?: number } = {}, random = Math.random): number {
  const base = opts.baseMs ?? 500;
  const max = opts.maxMs ?? 30_000;
  const min = opts.minMs ?? 100;
  const cap = Math.min(max, base * 2 ** Math.min(attempt, 20));
  return Math.max(min, Math.floor(random() * cap));
}
