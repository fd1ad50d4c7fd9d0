/**
 * Per-key backoff of a periodic check: after n failures in a row the key is left alone for
 * base × 2^(n-1), at most `maxMs`; a success or a changed `version` (new config, new password) clears it.
 */
export class PollBackoff {
  private readonly entries = new Map<string, { failures: number; notBefore: number; version: string }>();

  constructor(
    private readonly baseMs: number,
    private readonly maxMs: number,
  ) {}

  /** Whether `key` may be checked at `now`. A different `version` than at the last failure resets its backoff. */
  due(key: string, version: string, now: number): boolean {
    const e = this.entries.get(key);
    if (!e) {
      this.entries.set(key, { failures: 0, notBefore: 0, version });
      return true;
    }
    if (e.version !== version) {
      this.entries.set(key, { failures: 0, notBefore: 0, version });
      return true;
    }
    return now >= e.notBefore;
  }

  /** Records a failure; returns how long the key is left alone now (ms). */
  failed(key: string, now: number): number {
    const e = this.entries.get(key) ?? { failures: 0, notBefore: 0, version: '' };
    e.failures++;
    const waitMs = Math.min(this.maxMs, this.baseMs * 2 ** Math.min(e.failures - 1, 30));
    e.notBefore = now + waitMs;
    this.entries.set(key, e);
    return waitMs;
  }

  succeeded(key: string): void {
    const e = this.entries.get(key);
    if (e) {
      e.failures = 0;
      e.notBefore = 0;
    }
  }

  /** Drops every key not in `keys`. */
  keep(keys: Set<string>): void {
    for (const k of this.entries.keys()) if (!keys.has(k)) this.entries.delete(k);
  }
}
