/**
 * Admission for boot-file downloads (`/files/*`: kernels, initrds, images). In a boot storm thousands of
 * machines ask for their kernel at once; served all together each crawls, holds its socket and memory for
 * minutes and many hit their firmware's timeout. Instead at most `max` downloads run at once and the rest
 * get 503 with a Retry-After, which iPXE honours by retrying the same request after that delay (its HTTP
 * layer does it, the boot script never sees a failure). The delay grows with the crowd that was turned
 * away in the last second and is spread at random so the retries do not come back as one herd.
 *
 * Anyone on the provisioning network can open downloads, so one client address may hold at most
 * `perAddress` of the slots (default a quarter of them): a single host (or a flood from one address)
 * cannot lock every machine out of its kernel. Past its share that address gets the same 503 +
 * Retry-After while other addresses are still admitted; its refusals do not lengthen the delay the
 * others are given.
 */
export interface FileAdmissionOptions {
  /** Downloads served at once (default 256). */
  max?: number;
  /** Downloads one client address may hold at once (default max / 4, at least 1; capped at max). */
  perAddress?: number;
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
  private readonly perAddress: number;
  private readonly byAddress = new Map<string, number>();
  private readonly maxRetry: number;
  private readonly random: () => number;
  private readonly now: () => number;
  /** refused counts every 503; refusedShare those of an address past its share while slots were free. */
  readonly counters = { admitted: 0, refused: 0, refusedShare: 0 };

  constructor(o: FileAdmissionOptions = {}) {
    this.max = o.max ?? 256;
    this.perAddress = Math.min(this.max, o.perAddress ?? Math.max(1, Math.floor(this.max / 4)));
    this.maxRetry = o.maxRetryAfterSec ?? 30;
    this.random = o.random ?? Math.random;
    this.now = o.now ?? (() => performance.now());
    this.windowStart = this.now();
  }

  /**
   * A slot for one download, with the function that frees it (idempotent), or the seconds the client
   * should wait when all slots are taken or `address` (the client's) holds its share of them.
   */
  enter(address = ''): { release: () => void } | { retryAfterSec: number } {
    const held = this.byAddress.get(address) ?? 0;
    if (this.active < this.max && held < this.perAddress) {
      this.active++;
      this.byAddress.set(address, held + 1);
      this.counters.admitted++;
      let done = false;
      return {
        release: () => {
          if (done) return;
          done = true;
          this.active--;
          const n = (this.byAddress.get(address) ?? 1) - 1;
          if (n > 0) this.byAddress.set(address, n);
          else this.byAddress.delete(address);
        },
      };
    }
    this.counters.refused++;
    if (this.active < this.max) {
      // Past its share while others may still come in: not part of the crowd the delay is sized for.
      this.counters.refusedShare++;
      return { retryAfterSec: this.retryAfter(Math.max(this.refusedNow, this.refusedPrev)) };
    }
    const t = this.now();
    if (t - this.windowStart >= 1000) {
      this.refusedPrev = t - this.windowStart >= 2000 ? 0 : this.refusedNow;
      this.refusedNow = 0;
      this.windowStart = t;
    }
    this.refusedNow++;
    return { retryAfterSec: this.retryAfter(Math.max(this.refusedNow, this.refusedPrev)) };
  }

  /** 1..2·k s at random, k = the rounds of `max` turned away per second (about how many are queued), at most maxRetry. */
  private retryAfter(turnedAwayPerSec: number): number {
    const rounds = Math.ceil(turnedAwayPerSec / this.max);
    const spread = Math.min(this.maxRetry, Math.max(1, 2 * rounds));
    return Math.min(this.maxRetry, 1 + Math.floor(this.random() * spread));
  }

  /** Downloads running now. */
  get running(): number {
    return this.active;
  }

  /** Downloads one address holds now. */
  heldBy(address: string): number {
    return this.byAddress.get(address) ?? 0;
  }
}
