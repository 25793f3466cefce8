// What the CLI names from worker/ before it knows it needs a server: task queue names (in help
// texts) and the error it reports with exit code 2. No Temporal SDK here, so `retool --help` and
// the commands that touch no server do not load it; worker/temporal.ts re-exports both.

/** Task queues, as in the design: stages land on the queue whose workers have what they need. */
export const TASK_QUEUES = { train: 'retool-train', rollout: 'retool-rollout', sandbox: 'retool-sandbox' } as const;

/**
 * A server that cannot be used as it is (another home's on the port, unreachable, unhealthy):
 * the CLI prints the message alone, one line that says what to do, and exits 2.
 */
export class TemporalServerError extends Error {
  override readonly name = 'TemporalServerError';
}
