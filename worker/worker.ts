import { fileURLToPath } from 'node:url';
import { NativeConnection, Worker, bundleWorkflowCode, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { createActivities } from '../activities/index.js';
import { TASK_QUEUES, type TemporalTarget } from './temporal.js';
import { detectIsolation } from '../engine/sandbox/index.js';
import { runOffloaded, type JobResult } from '../activities/offload/parent.js';

// The workflows beside this file: TypeScript when it runs from the sources (tsx, vitest), the
// compiled JavaScript when it runs from dist/ (bin/retool.js on a fresh build).
const WORKFLOWS_PATH = fileURLToPath(
  new URL(import.meta.url.endsWith('.ts') ? '../workflows/index.ts' : '../workflows/index.js', import.meta.url),
);

let bundled: Promise<WorkflowBundleWithSourceMap> | null = null;

/** Bundles the workflow code once per process (webpack takes seconds). */
export function workflowBundle(): Promise<WorkflowBundleWithSourceMap> {
  bundled ??= bundleWorkflowCode({ workflowsPath: WORKFLOWS_PATH, logger: quietBundlerLogger });
  return bundled;
}

const noop = () => {};
const quietBundlerLogger = { trace: noop, debug: noop, info: noop, warn: console.warn, error: console.error, log: noop };

export interface WorkerOptions {
  target: TemporalTarget;
  home?: string;
  /** Which task queues to poll; all of them by default. Workflows run on the train queue. */
  taskQueues?: string[];
  /**
   * Activities run at once in this process. Each stage runs in a child process of its own whose
   * kernels use the cores given to this worker (TF_NUM_INTRAOP_THREADS), so the default is 1 and
   * parallel stages get parallel workers (`retool run --workers N`, or more `retool worker`s).
   */
  maxConcurrentActivities?: number;
}

export interface RunningWorkers {
  connection: NativeConnection;
  /** The tensor backend this worker's stage processes compute on. */
  backend: JobResult<'probe'>;
  workers: Worker[];
  /** Resolves when every worker has stopped. */
  done: Promise<void>;
  shutdown(): Promise<void>;
}

/** Starts one worker per task queue on one connection. Activities open the store per call. */
export async function startWorkers(opts: WorkerOptions): Promise<RunningWorkers> {
  // A worker that could not isolate model code must not take its tasks: refuse before polling.
  detectIsolation();
  // Stages compute in child processes; one loads the backend before polling, so a worker whose
  // backend cannot load refuses its tasks, and says what its stages will compute on.
  const backend = await runOffloaded('probe', {});
  const connection = await NativeConnection.connect({ address: opts.target.address });
  const activities = createActivities({ home: opts.home });
  const queues = opts.taskQueues ?? Object.values(TASK_QUEUES);
  const workers = await Promise.all(
    queues.map(async (taskQueue) =>
      Worker.create({
        connection,
        namespace: opts.target.namespace,
        taskQueue,
        activities,
        maxConcurrentActivityTaskExecutions: opts.maxConcurrentActivities ?? 1,
        // Heartbeats carry progress for `retool status` and the bars: send them every few seconds,
        // not once a minute (the SDK's default throttle).
        defaultHeartbeatThrottleInterval: '2s',
        maxHeartbeatThrottleInterval: '5s',
        // Workflows run on the train queue, or on a queue of the caller's own (tests isolate runs so).
        ...(taskQueue !== TASK_QUEUES.rollout && taskQueue !== TASK_QUEUES.sandbox ? { workflowBundle: await workflowBundle() } : {}),
      }),
    ),
  );
  const done = Promise.all(workers.map((w) => w.run())).then(() => undefined);
  let stopping: Promise<void> | null = null;
  return {
    connection,
    backend,
    workers,
    done,
    shutdown() {
      stopping ??= (async () => {
        for (const w of workers) if (w.getState() === 'RUNNING') w.shutdown();
        await done.catch(() => undefined);
        await connection.close();
      })();
      return stopping;
    },
  };
}
