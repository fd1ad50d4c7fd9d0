/**
 * The console benchmark (scripts/bench/ui/run.sh, never in CI): a real central with N machines, Debian's
 * Chromium at 1280×800; measures (median of 5) the time from submitting the sign-in form to the first
 * page of the machines view rendered ("1–100 of N" and its rows), the time to the next page, and the
 * shipped bundle's size (raw and gzip). Prints one JSON line.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { expect, it } from 'vitest';
import { REPO, spawnCentral } from '../../../test/central/support.js';
import { launchOffline, recordedContext } from '../../../test/ui/browser.js';

const N = Number(process.env.UL_BENCH_N ?? 10_000);
const RUNS = 5;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

it(`machines view with ${N} machines`, async () => {
  const central = await spawnCentral();
  const browser = await launchOffline();
  try {
    expect((await central.request('POST', '/api/v1/sites', { body: { name: 'bench' } })).status).toBe(201);
    let next = 0;
    const t0 = performance.now();
    await Promise.all(Array.from({ length: 16 }, async () => {
      for (let i = next++; i < N; i = next++) {
        const mac = `52:54:${[(i >> 24) & 0xff, (i >> 16) & 0xff, (i >> 8) & 0xff, i & 0xff].map((b) => b.toString(16).padStart(2, '0')).join(':')}`;
        const r = await central.request('POST', '/api/v1/machines', { body: { name: `m-${i}`, site: 'bench', macs: [mac], facts: { cpu: { model: 'EPYC 7763' } } } });
        if (r.status !== 201) throw new Error(r.text);
      }
    }));
    const seedS = (performance.now() - t0) / 1000;
    const firstRender: number[] = [];
    const nextPage: number[] = [];
    for (let run = 0; run < RUNS; run++) {
      const { context, page } = await recordedContext(browser, []);
      await page.goto(`${central.url}/ui`);
      await page.getByLabel('API token').fill(central.token);
      const start = performance.now();
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.locator('#machines-count', { hasText: `1–100 of ${N}` }).waitFor();
      await page.locator('table.machines tbody tr').nth(Math.min(99, N - 1)).waitFor();
      firstRender.push(performance.now() - start);
      if (N > 100) {
        const s2 = performance.now();
        await page.getByRole('button', { name: 'Next' }).click();
        await page.locator('#machines-count', { hasText: `101–` }).waitFor();
        nextPage.push(performance.now() - s2);
      }
      await context.close();
    }
    const dir = join(REPO, 'dist/central/ui/public');
    const files = ['app.js', 'app.css', 'index.html'].map((f) => readFileSync(join(dir, f)));
    const raw = files.reduce((n, b) => n + b.length, 0);
    const gz = files.reduce((n, b) => n + gzipSync(b).length, 0);
    console.log(JSON.stringify({ machines: N, seedS: Math.round(seedS), firstRenderMs: Math.round(median(firstRender)), firstRenderRunsMs: firstRender.map(Math.round), nextPageMs: nextPage.length ? Math.round(median(nextPage)) : null, bundleBytes: raw, bundleGzipBytes: gz }));
  } finally {
    await browser.close();
    await central.cleanup();
  }
});
