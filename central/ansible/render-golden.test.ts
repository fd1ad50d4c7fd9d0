import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { fleet } from '../../scripts/bench/inventory/fleet.js';
import { goldenCases } from './render-fixture.js';
import { HostBlockCache, renderInventory, renderInventoryBody } from './render.js';

/**
 * The renderer against the output recorded before its single-pass rewrite (see render-fixture.ts): the
 * same hosts, groups, children and vars, and (since the rewrite kept the key order) the same bytes.
 */
const golden = JSON.parse(gunzipSync(readFileSync(new URL('./testdata/inventory-golden.json.gz', import.meta.url))).toString('utf8')) as Record<string, string>;
const cases = goldenCases(fleet);

describe('inventory render: golden output', () => {
  it('has a recorded document for every case', () => {
    expect(Object.keys(golden).sort()).toEqual(cases.map((c) => c.name).sort());
  });

  it.each(cases.map((c) => [c.name, c] as const))('%s: the body parses to the recorded document, byte for byte', (name, c) => {
    const want = golden[name]!;
    const body = renderInventoryBody(c.src, c.opts).bytes.toString('utf8');
    expect(JSON.parse(body)).toEqual(JSON.parse(want));
    expect(body).toBe(want);
    // The object form and a render through a (cold, then warm) fragment cache say the same.
    expect(renderInventory(c.src, c.opts)).toEqual(JSON.parse(want));
    const cache = new HostBlockCache();
    expect(renderInventoryBody(c.src, { ...c.opts, fragments: cache }).bytes.toString('utf8')).toBe(want);
    expect(renderInventoryBody(c.src, { ...c.opts, fragments: cache }).bytes.toString('utf8')).toBe(want);
  });
});
