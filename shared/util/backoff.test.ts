import { describe, expect, it } from 'vitest';
import { backoffDelay } from './backoff.js';

describe('backoffDelay', () => {
  it('the cap doubles per attempt from the base and stops at max', () => {
    const top = (attempt: number) => backoffDelay(attempt, { baseMs: 500, maxMs: 30_000, minMs: 0 }, () => 0.999999);
    expect(top(0)).toBe(499);
    expect(top(1)).toBe(999);
    expect(top(5)).toBe(15_999);
    expect(top(6)).toBe(29_999);
    expect(top(7)).toBe(29_999);
    expect(top(1000)).toBe(29_999); // no overflow for a long outage
  });

  it('full jitter: the delay spans [min, cap) over the random range and never leaves it', () => {
    for (let attempt = 0; attempt < 40; attempt++) {
      for (const r of [0, 0.1, 0.5, 0.9, 0.999999]) {
        const d = backoffDelay(attempt, {}, () => r);
        expect(d).toBeGreaterThanOrEqual(100);
        expect(d).toBeLessThanOrEqual(30_000);
        expect(Number.isInteger(d)).toBe(true);
      }
    }
    expect(backoffDelay(10, {}, () => 0)).toBe(100); // the floor
    const spread = new Set(Array.from({ length: 200 }, () => backoffDelay(8)));
    expect(spread.size).toBeGreaterThan(50); // jittered with the real Math.random
  });

  it('honours custom bounds', () => {
    expect(backoffDelay(3, { baseMs: 10, maxMs: 50, minMs: 20 }, () => 0.999)).toBe(49);
    expect(backoffDelay(3, { baseMs: 10, maxMs: 50, minMs: 20 }, () => 0)).toBe(20);
  });
});
