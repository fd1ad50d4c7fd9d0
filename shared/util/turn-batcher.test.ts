import { describe, expect, it } from 'vitest';
import { TurnBatcher } from './turn-batcher.js';

const tick = () => new Promise((r) => setImmediate(r));

describe('TurnBatcher', () => {
  it('hands over what was added in one turn once, in order, and starts afresh for the next turn', async () => {
    const flushed: number[][] = [];
    const b = new TurnBatcher<number>((xs) => flushed.push(xs));
    b.add(1);
    b.add(2);
    b.add(3);
    expect(flushed).toEqual([]);
    await tick();
    expect(flushed).toEqual([[1, 2, 3]]);
    b.add(4);
    await tick();
    expect(flushed).toEqual([[1, 2, 3], [4]]);
    await tick();
    expect(flushed).toHaveLength(2); // nothing added, nothing flushed
  });
});
