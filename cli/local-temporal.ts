import { availableParallelism } from 'node:os';
import { Runtime, DefaultLogger } from '@temporalio/worker';
import type { PrepareDataInput, PrepareDataResult } from '../datasets/prepare.js';
import { RetoolDataset, RetoolStage } from '../workflows/search-attributes.js';
import { prepareDataWorkflow } from '../workflows/prepare-data.js';
import type { Client } from '@temporalio/client';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import {
  connectClient,
  ensureServer,
  PROJECT_ROOT,
  TASK_QUEUES,
  withServerErrors,
  workflowUrl,
  type ServerTarget,
} from '../worker/temporal.js';
import { startWorkers } from '../worker/worker.js';

let runtimeInstalled = false;

/** Temporal's core logs at INFO by default; a CLI command wants warnings only. */
export function quietTemporalRuntime(level: 'WARN' | 'INFO' = 'WARN'): void {
  if (runtimeInstalled) return;
  runtimeInstalled = true;
  Runtime.install({ logger: new DefaultLogger((process.env.RETOOL_LOG_LEVEL as 'WARN') ?? level) });
}

export interface ViaTemporalResult extends PrepareDataResult {
  workflowId: string;
  runId: string;
  uiUrl: string | null;
  serverStarted: boolean;
}

/**
 * Runs `fn` against a Temporal server (reused or started) with, unless `localWorker` is false, a
 * worker in this process and `workers - 1` more worker processes (one activity each: stages that
 * run side by side need processes of their own), so that one command works on a bare machine; any
 * `retool worker` running elsewhere shares the queue. Connection and workers are closed afterwards.
 */
export async function withLocalTemporal<T>(
  opts: { home?: string; localWorker?: boolean; taskQueue?: string; workers?: number },
  fn: (client: Client, target: ServerTarget) => Promise<T>,
): Promise<T> {
  quietTemporalRuntime();
  shareCoresBetweenWorkers(workerProcesses(opts));
  const target = await ensureServer({ home: opts.home });
  const taskQueue = opts.taskQueue ?? TASK_QUEUES.train;
  const noLocalWorker = opts.localWorker === false;
  const workers = noLocalWorker ? null : await startWorkers({ target, home: opts.home, taskQueues: [taskQueue] });
  const extra = noLocalWorker
    ? []
    : await Promise.all(
        Array.from({ length: Math.max(0, (opts.workers ?? 1) - 1) }, () => spawnWorker(target.address, taskQueue, opts.home)),
      );
  const { client, connection } = await connectClient(target);
  try {
    return await withServerErrors(target, () => fn(client, target));
  } finally {
    await connection.close();
    await Promise.all([workers?.shutdown(), ...extra.map((stop) => stop())]);
  }
}

function workerProcesses(opts: { localWorker?: boolean; workers?: number }): number {
  return opts.localWorker === false ? 0 : Math.max(1, opts.workers ?? 1);
}

/**
 * Gives each worker process (this one and the ones spawned, which inherit the variable) its share
 * of the cores for the native backend's kernels, unless TF_NUM_INTRAOP_THREADS is set: two workers
 * with a pool as large as the machine each would fight over the same cores (docs/model.md#backends).
 */
function shareCoresBetweenWorkers(workers: number): void {
  if (workers < 1 || process.env.TF_NUM_INTRAOP_THREADS) return;
  process.env.TF_NUM_INTRAOP_THREADS = String(Math.max(1, Math.floor(availableParallelism() / workers)));
}

/** A `retool worker` process on `taskQueue`; resolves once it polls, to a function that stops it. */
async function spawnWorker(address: string, taskQueue: string, home?: string): Promise<() => Promise<void>> {
  const args = [
    join(PROJECT_ROOT, 'bin', 'retool.js'),
    'worker',
    '--task-queue',
    taskQueue,
    '--exit-with-parent',
    ...(home ? ['--home', home] : []),
  ];
  const child = spawn(process.execPath, args, {
    env: { RETOOL_LOG_LEVEL: 'WARN', ...process.env, TEMPORAL_ADDRESS: address },
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => String(d).includes('worker polling') && resolve());
    child.once('exit', (code) => reject(new Error(`a worker process exited with code ${code} while starting`)));
  });
  return async () => {
    child.kill('SIGTERM');
    await exited;
  };
}

/** The prepare-data workflow, waited for. */
export async function prepareViaTemporal(
  input: PrepareDataInput,
  opts: { home?: string; localWorker?: boolean; onStarted?: (id: string, url: string | null) => void },
): Promise<ViaTemporalResult> {
  return withLocalTemporal(opts, async (client, target) => {
    const workflowId = `prepare-data-${input.name}-${Date.now().toString(36)}`;
    const handle = await client.workflow.start(prepareDataWorkflow, {
      taskQueue: TASK_QUEUES.train,
      workflowId,
      args: [input],
      typedSearchAttributes: [
        { key: RetoolStage, value: 'prepare-data' },
        { key: RetoolDataset, value: input.name },
      ],
      memo: { source: input.source, dataset: input.name },
      staticSummary: `prepare dataset ${input.name} (${input.source})`,
    });
    opts.onStarted?.(workflowId, workflowUrl(target, workflowId));
    const result = await handle.result();
    return {
      ...result,
      workflowId,
      runId: handle.firstExecutionRunId,
      uiUrl: workflowUrl(target, workflowId),
      serverStarted: target.started,
    };
  });
}
