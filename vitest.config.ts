import { defineConfig } from 'vitest/config';

// Unit tests sit beside the code; test/ holds what spans processes (e2e, real firmware, fault).
// The e2e project runs files one at a time: they share ports 67/69 inside namespaces and QEMU is CPU-bound.
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['central/**/*.test.ts', 'agent/**/*.test.ts', 'shared/**/*.test.ts', 'scripts/**/*.test.ts'],
          testTimeout: 60_000,
          hookTimeout: 60_000,
        },
      },
      {
        test: {
          name: 'e2e',
          include: ['test/**/*.test.ts'],
          fileParallelism: false,
          testTimeout: 900_000,
          hookTimeout: 300_000,
        },
      },
    ],
  },
});
