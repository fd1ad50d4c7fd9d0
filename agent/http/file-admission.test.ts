import { describe, expect, it } from 'vitest';
import { FileAdmission } from './file-admission.js';

describe('FileAdmission', () => {
  it('admits up to max downloads, refuses the next with a Retry-After, and admits again after a release', () => {
    const a = new FileAdmission({ max: 2, perAddress: 2, random: () => 0 });
    const one = a.enter();
    const two = a.enter();
    expect('release' in one && 'release' in two).toBe(true);
    expect(a.enter()).toEqual({ retryAfterSec: 1 });
    (one as { release: () => void }).release();
    (one as { release: () => void }).release(); // idempotent: frees one slot, not two
    expect(a.running).toBe(1);
    expect('release' in a.enter()).toBe(true);
    expect('retryAfterSec' in a.enter()).toBe(true);
    expect(a.counters).toEqual({ admitted: 3, refused: 2, refusedShare: 0 });
  });

  it('spreads the Retry-After wider as the crowd turned away grows, never past the cap', () => {
    let t = 0;
    const a = new FileAdmission({ max: 10, maxRetryAfterSec: 30, random: () => 0.999, now: () => t });
    for (let i = 0; i < 10; i++) a.enter(`198.18.0.${i}`);
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

  it('holds one address to its share (a quarter of the slots by default) while other addresses are still admitted', () => {
    const a = new FileAdmission({ max: 8, random: () => 0 });
    const mine = [a.enter('198.18.0.66'), a.enter('198.18.0.66')];
    expect(mine.every((s) => 'release' in s)).toBe(true);
    expect(a.enter('198.18.0.66')).toEqual({ retryAfterSec: 1 }); // 8 / 4 = 2 each
    expect(a.heldBy('198.18.0.66')).toBe(2);
    expect(a.running).toBe(2);
    // Everyone else still gets the free slots, up to the total.
    const others = Array.from({ length: 6 }, (_, i) => a.enter(`198.18.1.${i}`));
    expect(others.every((s) => 'release' in s)).toBe(true);
    expect('retryAfterSec' in a.enter('198.18.1.99')).toBe(true);
    expect(a.counters).toEqual({ admitted: 8, refused: 2, refusedShare: 1 });
    // A slot the address gives back is its own again (released once, however often release is called).
    const r = mine[0] as { release: () => void };
    r.release();
    r.release();
    expect(a.heldBy('198.18.0.66')).toBe(1);
    expect('release' in a.enter('198.18.0.66')).toBe(true);
    expect('retryAfterSec' in a.enter('198.18.0.66')).toBe(true);
  });

  it("takes the share from its option, never above the total, and one address's refusals do not lengthen the others' Retry-After", () => {
    const a = new FileAdmission({ max: 100, perAddress: 3, random: () => 0.999 });
    for (let i = 0; i < 3; i++) expect('release' in a.enter('198.18.0.5')).toBe(true);
    for (let i = 0; i < 500; i++) expect(a.enter('198.18.0.5')).toEqual({ retryAfterSec: 1 });
    expect(a.running).toBe(3);
    const whole = new FileAdmission({ max: 2, perAddress: 50 });
    expect(['x', 'x', 'x'].map((h) => 'release' in whole.enter(h))).toEqual([true, true, false]);
    expect('release' in new FileAdmission({ max: 1 }).enter('198.18.0.1')).toBe(true); // a share of at least one
  });
});
