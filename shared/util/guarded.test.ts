import { describe, expect, it } from 'vitest';
import { guarded } from './guarded.js';

describe('guarded callbacks', () => {
  it('reports a throw and a rejection instead of letting them escape', async () => {
    const seen: [string, string][] = [];
    const sink = (where: string, e: unknown) => seen.push([where, (e as Error).message]);
    expect(() => guarded('sync', sink, () => { throw new RangeError('Maximum call stack size exceeded'); })()).not.toThrow();
    guarded('async', sink, async () => { throw new Error('boom'); })();
    await new Promise((r) => setImmediate(r));
    expect(seen).toEqual([['sync', 'Maximum call stack size exceeded'], ['async', 'boom']]);
  });

  it('passes arguments through and survives a sink that throws', () => {
    let got = 0;
    guarded('args', () => { throw new Error('sink'); }, (n: number) => { got = n; throw new Error('x'); })(7);
    expect(got).toBe(7);
  });
});
