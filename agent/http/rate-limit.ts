import { RateLimitedError } from './errors.js';

export interface BucketSpec {
  /** Requests allowed in a burst. */
  burst: number;
  /** Tokens added per second. */
  perSec: number;
}

/**
 * Token buckets keyed by a string (a MAC, a source address). `take(key)` spends one token or throws
 * RateLimitedError with the seconds until one is back. The number of keys is bounded (`maxKeys`, the
 * least recently used is forgotten), so a flood of invented MACs cannot grow memory.
 */
export class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(
    private readonly spec: BucketSpec,
    private readonly maxKeys = 10_000,
    private readonly now: () => number = Date.now,
  ) {}

  take(key: string): void {
    const t = this.now();
    const b = this.buckets.get(key) ?? { tokens: this.spec.burst, at: t };
    b.tokens = Math.min(this.spec.burst, b.tokens + ((t - b.at) / 1000) * this.spec.perSec);
    b.at = t;
    this.buckets.delete(key);
    this.buckets.set(key, b);
    if (this.buckets.size > this.maxKeys) this.buckets.delete(this.buckets.keys().next().value!);
    if (b.tokens < 1) throw new RateLimitedError(Math.max(1, Math.ceil((1 - b.tokens) / this.spec.perSec)));
    b.tokens -= 1;
  }
}

/** One limiter per MAC and one per source address for an endpoint family; both must allow the request. */
export class MachineRateLimits {
  private readonly perMac: RateLimiter;
  private readonly perSource: RateLimiter;

  constructor(spec: { mac: BucketSpec; source: BucketSpec }, now?: () => number) {
    this.perMac = new RateLimiter(spec.mac, 10_000, now);
    this.perSource = new RateLimiter(spec.source, 10_000, now);
  }

  take(mac: string, source: string): void {
    this.perSource.take(source);
    this.perMac.take(mac);
  }
}
