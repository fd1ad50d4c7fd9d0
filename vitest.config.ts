import { relative } from 'node:path';
import { defineConfig } from 'vitest/config';
import { BaseSequencer, type TestSpecification } from 'vitest/node';
import { orderHint, QEMU_FILES } from './test/support/lanes.js';

// Unit tests sit beside the code; test/ holds what spans processes (e2e, real firmware, fault).
// Three projects (test/support/lanes.ts): `unit`, `e2e` (no VM; files run two at a time: names, temp dirs
// and loopback ports are unique per file by construction) and `e2e-qemu` (the files that boot QEMU under
// TCG, one at a time). `npm test` runs `e2e-qemu` in one vitest process and `unit` + `e2e` in another, at
// the same time (scripts/test-suite.mjs): vitest 4 runs projects whose worker limits differ one after
// the other, never side by side, inside one process.

/** Lane 1's workers (unit + e2e): 2 by default, UNDERLAY_TEST_WORKERS to change. */
const workers = Number(process.env.UNDERLAY_TEST_WORKERS ?? '2');

class LaneSequencer extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const sorted = await super.sort(files);
    const hint = (f: TestSpecification) => orderHint(relative(this.ctx.config.root, f.moduleId).split('\\').join('/'));
    return sorted.map((f, i) => ({ f, i, h: hint(f) })).sort((a, b) => a.h - b.h || a.i - b.i).map((x) => x.f);
  }
}

export default defineConfig({
  test: {
    sequence: { sequencer: LaneSequencer },
    projects: [
      {
        test: {
          name: 'unit',
          include: ['central/**/*.test.ts', 'agent/**/*.test.ts', 'shared/**/*.test.ts', 'scripts/**/*.test.ts'],
          maxWorkers: workers,
          testTimeout: 60_000,
          hookTimeout: 60_000,
        },
      },
      {
        test: {
          name: 'e2e',
          include: ['test/**/*.test.ts'],
          exclude: QEMU_FILES,
          maxWorkers: workers,
          testTimeout: 900_000,
          hookTimeout: 300_000,
        },
      },
      {
        test: {
          name: 'e2e-qemu',
          include: QEMU_FILES,
          globalSetup: ['test/support/qemu-global-setup.ts'],
          fileParallelism: false,
          testTimeout: 900_000,
          hookTimeout: 300_000,
        },
      },
    ],
  },
});
