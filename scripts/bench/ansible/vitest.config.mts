import { defineConfig } from 'vitest/config';

// Only the Ansible benchmark (scripts/bench/ansible/run.sh); never part of the test projects.
export default defineConfig({
  test: { include: ['scripts/bench/ansible/bench.mts'], testTimeout: 3_600_000, hookTimeout: 600_000, fileParallelism: false },
});
