import { Runtime, DefaultLogger } from '@temporalio/worker';
import type { PrepareDataInput, PrepareDataResult } from '../datasets/prepare.js';
import { RetoolDataset, RetoolStage } from '../workflows/search-attributes.js';
import { prepareDataWorkflow } from '../workflows/prepare-data.js';
import type { Client } from '@temporalio/client';
import { connectClient, ensureServer, TASK_QUEUES, workflowUrl, type TemporalTarget } from './temporal.js';
import { startWorkers } from './worker.js';

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
 * worker in this process, so that one command works on a bare machine; any `retool worker`
 * running elsewhere shares the queue. Connection and worker are closed afterwards.
 */
export async function withLocalTemporal<T>(opts: { home?: string; localWorker?: boolean; taskQueue?: string }, fn: (client: Client, target: TemporalTarget & { started: boolean }) => Promise<T>): Promise<T> {
  quietTemporalRuntime();
  const target = await ensureServer({ home: opts.home });
  const workers = opts.localWorker === false ? null : await startWorkers({ target, home: opts.home, taskQueues: [opts.taskQueue ?? TASK_QUEUES.train] });
  const { client, connection } = await connectClient(target);
  try {
    return await fn(client, target);
  } finally {
    await connection.close();
    await workers?.shutdown();
  }
}

/** The prepare-data workflow, waited for. */
export async function prepareViaTemporal(input: PrepareDataInput, opts: { home?: string; localWorker?: boolean; onStarted?: (id: string, url: string | null) => void }): Promise<ViaTemporalResult> {
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
    return { ...result, workflowId, runId: handle.firstExecutionRunId, uiUrl: workflowUrl(target, workflowId), serverStarted: target.started };
  });
}
