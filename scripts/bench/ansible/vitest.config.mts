import { defineConfig } from 'vitest/config';

// Only the Ansible benchmark (scripts/bench/ansible/run.sh); never part of the test projects. The bound is
// only a guard against a hung run: N = 100 took 28 min per leg on a slow day (session 9), and the SSH leg was cut
// by the old 1-hour bound.
export default defineConfig({
  test: { include: ['scripts/bench/ansible/bench.mts'], testTimeout: 6 * 3_600_000, hookTimeout: 600_000, fileParallelism: false },
});
