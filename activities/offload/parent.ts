// Runs an activity's heavy work in a child process (child.ts) and watches it from the worker's
// thread, which stays free: heartbeats go out on a timer, queries and workflow tasks are answered
// at once, whatever the model size. A process rather than a worker thread because only a process
// can be killed in the middle of a native kernel, takes its memory (libtensorflow's, wasm's heap)
// with it when it exits, and cannot bring the worker down when it crashes (docs/pipeline.md#durability).
import { fork, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import { getPriority, setPriority } from 'node:os';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { ApplicationFailure } from '@temporalio/common';
import type { Jobs } from './jobs.js';
import { FromChildSchema, type JobName, type ToChild } from './protocol.js';
import { DEFAULT_STALL_FLOOR_MS, STAGE_NICENESS, STALL_FACTOR } from './timing.js';

export type JobInput<J extends JobName> = Parameters<Jobs[J]>[0];
export type JobResult<J extends JobName> = Awaited<ReturnType<Jobs[J]>>;

export interface OffloadOptions {
  onProgress?: (step: number, total: number | undefined, metrics: Record<string, number | null>) => void;
  onCheckpoint?: (step: number, path: string) => void;
  /** Aborting asks the child to stop at its next step boundary (it saves a checkpoint first). */
  signal?: AbortSignal;
  /** Silence that counts as stuck before any step has shown how long steps take. */
  stallFloorMs?: number;
  onSpawn?: (pid: number) => void;
}

/** The failure type of a child that stopped answering and was killed: retried, resuming from its checkpoint. */
export const STALLED = 'StalledActivityProcess';
/** The failure type of a child that died without a result (killed by the OOM killer, a crash). */
export const CHILD_DIED = 'ActivityProcessDied';

const HERE = import.meta.url;
const FROM_SOURCES = HERE.endsWith('.ts');

function spawnChild(): ChildProcess {
  const entry = fileURLToPath(new URL(FROM_SOURCES ? './child.ts' : './child.js', HERE));
  // From the sources (tsx, vitest) the child compiles TypeScript too; tsx caches what it compiled.
  const tsx = FROM_SOURCES ? ['--import', pathToFileURL(createRequire(HERE).resolve('tsx')).href] : [];
  return fork(entry, [], { execArgv: tsx, stdio: ['ignore', 'inherit', 'inherit', 'ipc'], serialization: 'advanced' });
}

export function runOffloaded<J extends JobName>(job: J, input: JobInput<J>, options: OffloadOptions = {}): Promise<JobResult<J>> {
  const child = spawnChild();
  // Training is batch work: on a busy machine the worker's heartbeats, the Temporal server and a
  // person's `retool status` go first (on an idle one this costs nothing). Its sandboxes inherit it.
  try {
    setPriority(child.pid!, Math.min(19, getPriority() + STAGE_NICENESS));
  } catch {
    // Not permitted here (some containers): the stage runs at the worker's priority.
  }
  options.onSpawn?.(child.pid!);
  const floor = options.stallFloorMs ?? DEFAULT_STALL_FLOOR_MS;
  let lastSign = performance.now();
  let longestSilence = 0;
  let stepping = false;
  const limit = () => Math.max(floor, STALL_FACTOR * longestSilence);

  return new Promise<JobResult<J>>((resolve, reject) => {
    let outcome: { ok: true; result: unknown } | { ok: false; error: unknown } | null = null;
    const settle = (o: NonNullable<typeof outcome>) => (outcome ??= o);

    const watchdog = setInterval(() => {
      const silent = performance.now() - lastSign;
      if (silent <= limit() || outcome) return;
      settle({
        ok: false,
        error: ApplicationFailure.create({
          message: `the ${job} process (pid ${child.pid}) gave no sign of life for ${Math.round(silent / 1000)} s (limit ${Math.round(limit() / 1000)} s): killed it; the next attempt resumes from the last checkpoint`,
          type: STALLED,
        }),
      });
      child.kill('SIGKILL');
    }, 1000);

    const cancel = () => {
      if (child.connected) child.send({ kind: 'cancel' } satisfies ToChild, () => {});
    };
    if (options.signal?.aborted) cancel();
    options.signal?.addEventListener('abort', cancel, { once: true });

    child.on('message', (raw) => {
      const now = performance.now();
      // Loading (imports, the backend, the model) is what the floor is for: only silences between
      // steps tell how long this job's steps keep the child's thread.
      if (stepping) longestSilence = Math.max(longestSilence, now - lastSign);
      lastSign = now;
      const parsed = FromChildSchema.safeParse(raw);
      if (!parsed.success) {
        // Another build of the child (dist/ rebuilt under a running worker), or a bug: not to be guessed at.
        settle({
          ok: false,
          error: ApplicationFailure.create({
            message: `the ${job} process sent an unreadable message: ${JSON.stringify(raw)}`,
            type: 'ProtocolError',
          }),
        });
        child.kill('SIGKILL');
        return;
      }
      const m = parsed.data;
      if (m.kind === 'progress' || m.kind === 'checkpoint') stepping = true;
      if (m.kind === 'progress') options.onProgress?.(m.step, m.total, m.metrics ?? {});
      else if (m.kind === 'checkpoint') options.onCheckpoint?.(m.step, m.path);
      else if (m.kind === 'done') settle({ ok: true, result: m.result });
      else if (m.kind === 'failed') {
        const failure = ApplicationFailure.create({ message: m.message, type: m.type, nonRetryable: !m.retryable });
        failure.stack = m.stack ?? failure.stack;
        settle({ ok: false, error: failure });
      }
    });

    // A send to a child that just died fails with EPIPE: its exit, reported below, says more.
    child.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EPIPE') return;
      settle({ ok: false, error: err });
      // A process that never started sends no 'close'.
      if (child.pid === undefined) {
        clearInterval(watchdog);
        reject(err);
      }
    });
    // 'close' comes after the last message has been read, so a result sent just before exit counts.
    child.once('close', (code, signal) => {
      clearInterval(watchdog);
      options.signal?.removeEventListener('abort', cancel);
      settle({
        ok: false,
        error: ApplicationFailure.create({
          message: `the ${job} process (pid ${child.pid}) exited with ${signal ? `signal ${signal}` : `code ${code}`} before finishing`,
          type: CHILD_DIED,
        }),
      });
      const final = outcome!;
      if (final.ok) resolve(final.result as JobResult<J>);
      else reject(final.error);
    });

    child.send({ kind: 'start', job, input } satisfies ToChild, () => {});
  });
}
