import { defineConfig } from 'vitest/config';

// Only the console benchmark (scripts/bench/ui/run.sh); never part of the test projects.
export default defineConfig({
  test: { include: ['scripts/bench/ui/bench.mts'], testTimeout: 3_600_000, hookTimeout: 600_000, fileParallelism: false },
});
