import { describe, expect, it } from 'vitest';
import { FileAdmission } from './file-admission.js';

describe('FileAdmission', () => {
  it('admits up to max downloads, refuses the next with a Retry-After, and admits again after a release', () => {
    const a = new FileAdmission({ max: 2, random: () => 0 });
    const one = a.enter();
    const two = a.enter();
    expect('release' in one && 'release' in two).toBe(true);
    expect(a.enter()).toEqual({ retryAfterSec: 1 });
    (one as { release: () => void }).release();
    (one as { release: () => void }).release(); // idempotent: frees one slot, not two
    expect(a.running).toBe(1);
    expect('release' in a.enter()).toBe(true);
    expect('retryAfterSec' in a.enter()).toBe(true);
    expect(a.counters).toEqual({ admitted: 3, refused: 2 });
  });

  it('spreads the Retry-After wider as the crowd turned away grows, never past the cap', () => {
    let t = 0;
    const a = new FileAdmission({ max: 10, maxRetryAfterSec: 30, random: () => 0.999, now: () => t });
    for (let i = 0; i < 10; i++) a.enter();
    const first = a.enter() as { retryAfterSec: number };
    expect(first.retryAfterSec).toBe(2); // one round queued: 1..2 s
    let last = first;
    for (let i = 0; i < 100; i++) last = a.enter() as { retryAfterSec: number };
    expect(last.retryAfterSec).toBe(22); // 101 turned away this second: 11 rounds, 1..22 s
    for (let i = 0; i < 1000; i++) last = a.enter() as { retryAfterSec: number };
    expect(last.retryAfterSec).toBe(30);
    // Quiet for two seconds: back to a short delay.
    t = 5000;
    expect((a.enter() as { retryAfterSec: number }).retryAfterSec).toBe(2);
  });
});
