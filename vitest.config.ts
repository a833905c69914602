import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          // Real PostgreSQL servers on fixed ports: one file at a time, one test at a time.
          fileParallelism: false,
          sequence: { concurrent: false },
          testTimeout: 180_000,
          hookTimeout: 180_000,
        },
      },
      {
        test: {
          name: 'ha',
          include: ['test/ha/**/*.test.ts'],
          // Each file has its own etcd cluster and ports (test/support/ha-cluster.ts slots), so the
          // files run in parallel, one worker each; inside a file, one test at a time. A group of
          // their own (after unit and marathon, before the sequential integration files): HA
          // timing must not compete with other real servers for the CPU.
          maxWorkers: 6,
          sequence: { groupOrder: 1, concurrent: false },
          testTimeout: 300_000,
          hookTimeout: 300_000,
        },
      },
      {
        test: {
          name: 'marathon',
          include: ['test/marathon/**/*.test.ts'],
          testTimeout: 60_000,
          hookTimeout: 30_000,
        },
      },
      {
        test: {
          name: 'container',
          include: ['test/container/**/*.test.ts'],
          // Builds the stand-in base images and the image once per run (cached between runs).
          globalSetup: ['test/container/global-setup.ts'],
          fileParallelism: false,
          sequence: { concurrent: false },
          testTimeout: 180_000,
          hookTimeout: 600_000,
        },
      },
    ],
  },
});
