import { existsSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

/**
 * Nothing test-only ships (issue 20): after `npm run build` (which `npm test` runs first and which starts
 * from an empty dist/), no file in dist/ is a test, a test-support module, a fixture, a fake or a sample.
 * Source maps count too: `x.test-support.js.map` names the same module.
 */
const DIST = fileURLToPath(new URL('../../dist/', import.meta.url));

/** Why a file of this name must not be in dist/, or null when it may. */
export function testOnlyReason(fileName: string): string | null {
  const name = fileName.replace(/\.map$/, '');
  if (/fixture(\.js)?$/.test(name)) return 'a fixture';
  if (name.endsWith('.test.js')) return 'a test';
  if (name.endsWith('.test-support.js')) return 'a test-support module';
  if (name.startsWith('fake-')) return 'a fake';
  if (name.startsWith('sample-')) return 'a sample';
  return null;
}

function walk(dir: string, out: string[] = []): string[] {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) walk(p, out);
    else out.push(p);
  }
  return out;
}

describe('dist/ holds no test-only code', () => {
  it('recognises the names of test-only files', () => {
    for (const n of ['render-fixture.js', 'render-fixture', 'x.test.js', 'x.test.js.map', 'facts.test-support.js', 'fake-clock.js', 'sample-context.js', 'sample-context.test-support.js.map']) {
      expect(testOnlyReason(n), n).not.toBeNull();
    }
    for (const n of ['server.js', 'server.js.map', 'listeners.js', 'samples.json', 'fakes.js', 'contest.js']) expect(testOnlyReason(n), n).toBeNull();
  });

  it('dist/ (as npm run build leaves it) contains no test, test-support, fixture, fake-* or sample-* file', () => {
    if (!existsSync(DIST)) throw new Error(`${DIST} does not exist: run "npm run build" first (npm test does)`);
    const files = walk(DIST);
    // The build really ran: the CLI and the agent's TFTP server are there.
    expect(files.map((f) => relative(DIST, f))).toEqual(expect.arrayContaining(['shared/cli/underlay.js', 'agent/tftp/server.js']));
    const offending = files.map((f) => ({ file: relative(DIST, f), why: testOnlyReason(f.slice(f.lastIndexOf('/') + 1)) })).filter((x) => x.why);
    expect(offending).toEqual([]);
  });
});
