// Entry of the child process that runs one activity's heavy work (see parent.ts). It takes one
// `start` message, runs the job and sends its result, then exits, so its tensors, backend and
// sandboxes go with it. Its JavaScript thread may block for a whole training step: the worker's
// thread stays free for heartbeats, queries and workflow tasks meanwhile.
import { describeFailure } from '../failures.js';
import type { JobReport } from './jobs.js';
import { ToChildSchema, type FromChild } from './protocol.js';
import { ALIVE_INTERVAL_MS } from './timing.js';

// A send that fails with EPIPE (the worker died, and 'disconnect' below has not arrived yet) is the same news.
const goneOnError = (err: Error | null) => err && process.exit(1);

function send(message: FromChild): void {
  if (process.connected) process.send!(message, goneOnError);
}

function finish(message: FromChild): void {
  if (!process.connected) process.exit(1);
  process.send!(message, () => process.exit(message.kind === 'done' ? 0 : 1));
}

// The worker is gone (killed, or it closed the channel): another attempt will take this work over,
// so this one must stop now and write nothing more. Checkpoints are renamed into place whole, so
// stopping between two writes leaves nothing half-written.
process.on('disconnect', () => process.exit(1));
// The worker decides when its work stops (a cancel, then a checkpoint): Ctrl-C in a terminal, or a
// service manager's SIGTERM to the whole group, reaches this process too and must not cut a step.
process.on('SIGINT', () => {});
process.on('SIGTERM', () => {});

const stop = new AbortController();
setInterval(() => send({ kind: 'alive' }), ALIVE_INTERVAL_MS).unref();

process.on('message', (raw) => {
  const parsed = ToChildSchema.safeParse(raw);
  if (!parsed.success)
    return finish({
      kind: 'failed',
      message: `unreadable message from the worker: ${JSON.stringify(raw)}`,
      type: 'ProtocolError',
      retryable: true,
    });
  const message = parsed.data;
  if (message.kind === 'cancel') return stop.abort();
  const report: JobReport = {
    progress: (step, total, metrics) => send({ kind: 'progress', step, total, metrics }),
    checkpoint: (step, path) => send({ kind: 'checkpoint', step, path }),
    signal: stop.signal,
  };
  // Imported here, after the timer above runs: the stage modules and the backend take seconds to load.
  import('./jobs.js')
    .then(({ JOBS }) => (JOBS[message.job] as (input: unknown, report: JobReport) => Promise<unknown>)(message.input, report))
    .then(
      (result) => finish({ kind: 'done', result }),
      (err: unknown) => finish({ kind: 'failed', ...describeFailure(err), stack: err instanceof Error ? err.stack : undefined }),
    );
});
