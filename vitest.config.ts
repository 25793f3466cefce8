import { configDefaults, defineConfig } from 'vitest/config';
import { OneQueueSequencer } from './test/helpers/file-order.js';
import { INTEGRATION } from './test/projects.js';

// Each project states these (no `extends: true`: merging the root config would concatenate
// `include` and give every project the root's set-up). The Temporal server's set-up belongs to the
// integration project alone: Vitest runs the root's set-up even for `--project unit`.
const shared = {
  testTimeout: 60_000,
  hookTimeout: 120_000,
  // Integration tests share one Temporal dev server and spawn real subprocesses; two cores only.
  // Both projects have the same `sequence.groupOrder` and so one group, which Vitest 4 runs through
  // one pool of this many workers: 2 files at once for the whole run, not 2 per project.
  maxWorkers: 2,
  // Expected failures (bad-input tests) would otherwise log whole stacks from Temporal's worker.
  env: { RETOOL_LOG_LEVEL: 'ERROR' },
};

export default defineConfig({
  test: {
    ...shared,
    // The root's set-up runs whichever projects run: it builds a stale dist/ for the CLI tests.
    globalSetup: ['test/build-setup.ts'],
    // Unit and integration files interleaved, as before the split (see OneQueueSequencer).
    sequence: { sequencer: OneQueueSequencer },
    projects: [
      { test: { ...shared, name: 'unit', include: ['test/**/*.test.ts'], exclude: [...configDefaults.exclude, ...INTEGRATION] } },
      { test: { ...shared, name: 'integration', include: INTEGRATION, globalSetup: ['test/global-setup.ts'] } },
    ],
  },
});
