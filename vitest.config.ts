import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Integration tests share one Temporal dev server and spawn real subprocesses; two cores only.
    maxWorkers: 2,
    // Expected failures (bad-input tests) would otherwise log whole stacks from Temporal's worker.
    env: { RETOOL_LOG_LEVEL: 'ERROR' },
  },
});
