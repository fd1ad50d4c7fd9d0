/**
 * Admission for boot-file downloads (`/files/*`: kernels, initrds, images). In a boot storm thousands of
 * machines ask for their kernel at once; served all together each crawls, holds its socket and memory for
 * minutes and many hit their firmware's timeout. Instead at most `max` downloads run at once and the rest
 * get 503 with a Retry-After, which iPXE honours by retrying the same request after that delay (its HTTP
 * layer does it, the boot script never sees a failure). The delay grows with the crowd that was turned
 * away in the last second and is spread at random so the retries do not come back as one herd.
 */
export interface FileAdmissionOptions {
  /** Downloads served at once (default 256). */
  max?: number;
  /** Longest Retry-After, seconds (default 30). */
  maxRetryAfterSec?: number;
  /** Random source in [0, 1) (tests). */
  random?: () => number;
  /** Clock in ms (tests). */
  now?: () => number;
}

export class FileAdmission {
  private active = 0;
  private refusedNow = 0;
  private refusedPrev = 0;
  private windowStart: number;
  private readonly max: number;
  private readonly maxRetry: number;
  private readonly random: () => number;
  private readonly now: () => number;
  readonly counters = { admitted: 0, refused: 0 };

  constructor(o: FileAdmissionOptions = {}) {
    this.max = o.max ?? 256;
    this.maxRetry = o.maxRetryAfterSec ?? 30;
    this.random = o.random ?? Math.random;
    this.now = o.now ?? (() => performance.now());
    this.windowStart = this.now();
  }

  /**
   * A slot for one download, with the function that frees it (idempotent), or the seconds the client
   * should wait when all slots are taken.
   */
  enter(): { release: () => void } | { retryAfterSec: number } {
    if (this.active < this.max) {
      this.active++;
      this.counters.admitted++;
      let done = false;
      return {
        release: () => {
          if (done) return;
          done = true;
          this.active--;
        },
      };
    }
    this.counters.refused++;
    const t = this.now();
    if (t - this.windowStart >= 1000) {
      this.refusedPrev = t - this.windowStart >= 2000 ? 0 : this.refusedNow;
      this.refusedNow = 0;
      this.windowStart = t;
    }
    this.refusedNow++;
    // Clients turned away per second over the slots: about how many rounds of `max` are queued.
    const rounds = Math.ceil(Math.max(this.refusedNow, this.refusedPrev) / this.max);
    const spread = Math.min(this.maxRetry, Math.max(1, 2 * rounds));
    return { retryAfterSec: Math.min(this.maxRetry, 1 + Math.floor(this.random() * spread)) };
  }

  /** Downloads running now. */
  get running(): number {
    return this.active;
  }
}
