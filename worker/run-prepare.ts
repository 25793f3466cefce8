import { Runtime, DefaultLogger } from '@temporalio/worker';
import type { PrepareDataInput, PrepareDataResult } from '../datasets/prepare.js';
import { RetoolDataset, RetoolStage } from '../workflows/search-attributes.js';
import { prepareDataWorkflow } from '../workflows/prepare-data.js';
import { connectClient, ensureServer, TASK_QUEUES, workflowUrl } from './temporal.js';
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
 * Runs the prepare-data workflow on a Temporal server (reused or started) with a worker in this
 * process, so that one command works on a bare machine; any `retool worker` running elsewhere
 * shares the queue.
 */
export async function prepareViaTemporal(input: PrepareDataInput, opts: { home?: string; localWorker?: boolean; onStarted?: (id: string, url: string | null) => void }): Promise<ViaTemporalResult> {
  quietTemporalRuntime();
  const target = await ensureServer({ home: opts.home });
  const workers = opts.localWorker === false ? null : await startWorkers({ target, home: opts.home, taskQueues: [TASK_QUEUES.train] });
  const { client, connection } = await connectClient(target);
  try {
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
  } finally {
    await connection.close();
    await workers?.shutdown();
  }
}
