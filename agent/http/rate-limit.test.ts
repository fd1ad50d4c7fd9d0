import { describe, expect, it } from 'vitest';
import { RateLimitedError } from './errors.js';
import { MachineRateLimits, RateLimiter } from './rate-limit.js';

describe('RateLimiter (token bucket)', () => {
  it('allows a burst, then refuses with the seconds until a token is back, then refills', () => {
    let now = 0;
    const rl = new RateLimiter({ burst: 3, perSec: 0.5 }, 100, () => now);
    for (let i = 0; i < 3; i++) rl.take('a');
    let err: unknown;
    try {
      rl.take('a');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(RateLimitedError);
    expect((err as RateLimitedError).retryAfterSec).toBe(2);
    // Another key has its own bucket.
    expect(() => rl.take('b')).not.toThrow();
    now += 2000;
    expect(() => rl.take('a')).not.toThrow();
    expect(() => rl.take('a')).toThrow(RateLimitedError);
  });

  it('forgets the least recently used key beyond maxKeys (bounded memory)', () => {
    const rl = new RateLimiter({ burst: 1, perSec: 0.001 }, 2, () => 0);
    rl.take('a');
    rl.take('b');
    rl.take('c'); // evicts a
    expect(() => rl.take('a')).not.toThrow();
    expect(() => rl.take('c')).toThrow(RateLimitedError);
  });

  it('per MAC and per source: either one exhausted refuses', () => {
    const l = new MachineRateLimits({ mac: { burst: 2, perSec: 0.01 }, source: { burst: 3, perSec: 0.01 } }, () => 0);
    l.take('m1', '10.0.0.1');
    l.take('m1', '10.0.0.1');
    expect(() => l.take('m1', '10.0.0.2')).toThrow(RateLimitedError); // MAC exhausted
    l.take('m2', '10.0.0.1');
    expect(() => l.take('m3', '10.0.0.1')).toThrow(RateLimitedError); // source exhausted
  });
});
