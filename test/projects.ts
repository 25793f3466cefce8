/**
 * Files that need a Temporal server: the suite's dev server (started by the global setup, for the
 * integration project only) or dev servers of their own. Every other file is a unit file: engine,
 * store, sandbox and CLI tests that need no server (`npm run test:unit`).
 */
export const INTEGRATION = [
  'test/workflow.test.ts',
  'test/pipeline.test.ts',
  'test/fault-recovery.test.ts',
  'test/pipeline-workflow.test.ts',
  'test/experiment-workflow.test.ts',
  'test/page.test.ts',
  'test/server-home.test.ts',
  'test/server-restart.test.ts',
];
