// `retool run`: a pipeline (one arm) or an experiment (several arms) on a Temporal server, reused
// or started, with a worker in this process unless detached; progress is polled from the run.
import type { Client } from '@temporalio/client';
import { modelLabel, type RetoolConfig } from '../workflows/config.js';
import type { ExperimentResult } from '../workflows/experiment.js';
import type { PipelineResult } from '../workflows/pipeline.js';
import { RetoolDataset, RetoolModel, RetoolPreset, RetoolStage } from '../workflows/search-attributes.js';
import { runStatus, type RunStatus } from './status.js';
import { TASK_QUEUES, workflowUrl } from '../worker/temporal.js';

export interface RunRetoolResult {
  workflowId: string;
  kind: 'pipeline' | 'experiment';
  preset: string;
  uiUrl: string | null;
  detached: boolean;
  /** One entry per arm; empty when detached. */
  arms: PipelineResult[];
  report: string | null;
  seconds: number;
}

export interface RunRetoolOptions {
  home?: string;
  detach?: boolean;
  taskQueue?: string;
  workflowId?: string;
  /** Worker processes while waiting (this one included). */
  workers?: number;
  onStarted?: (id: string, url: string | null) => void;
  /** Called about once a second with where the run stands. */
  onStatus?: (status: RunStatus) => void;
}

/**
 * What starting a run of `config` takes, for `retool run` and for a schedule's action alike: an
 * experiment when the config names more than one arm, else the pipeline of that arm.
 */
export async function retoolStart(config: RetoolConfig, taskQueue?: string) {
  const experiment = config.arms.length > 1;
  // By reference, so a renamed workflow breaks the build, not a run; loaded only when starting
  // (@temporalio/workflow costs 0.2 s, which `retool schedule list` should not pay).
  const { retoolExperiment } = await import('../workflows/experiment.js');
  const { retoolPipeline } = await import('../workflows/pipeline.js');
  return {
    kind: experiment ? ('experiment' as const) : ('pipeline' as const),
    workflowType: experiment ? retoolExperiment : retoolPipeline,
    taskQueue: taskQueue ?? TASK_QUEUES.train,
    args: [experiment ? config : { ...config, arm: config.arms[0] }] as const,
    // Findable in the UI before the workflow's first task runs (it upserts them too).
    typedSearchAttributes: [
      { key: RetoolStage, value: 'data' },
      { key: RetoolDataset, value: config.data.name },
      { key: RetoolModel, value: modelLabel(config.model) },
      { key: RetoolPreset, value: config.preset },
    ],
  };
}

export async function startRetool(client: Client, config: RetoolConfig, opts: { taskQueue?: string; workflowId?: string } = {}) {
  const { kind, workflowType, ...options } = await retoolStart(config, opts.taskQueue);
  const workflowId = opts.workflowId ?? `retool-${config.preset}-${Date.now().toString(36)}`;
  const handle = await client.workflow.start(workflowType, {
    ...options,
    workflowId,
    memo: { preset: config.preset },
    staticSummary:
      kind === 'experiment'
        ? `ReTool vs text-only, preset ${config.preset}`
        : `ReTool pipeline (${config.arms[0]} arm), preset ${config.preset}`,
  });
  return { handle, kind, workflowId } as const;
}

export async function runRetool(config: RetoolConfig, opts: RunRetoolOptions = {}): Promise<RunRetoolResult> {
  const started = performance.now();
  const seconds = () => (performance.now() - started) / 1000;
  // The worker side (@temporalio/worker, the activities) loads only for a run, not for schedules.
  const { withLocalTemporal } = await import('./local-temporal.js');
  return withLocalTemporal(
    { home: opts.home, localWorker: !opts.detach, taskQueue: opts.taskQueue, workers: opts.workers },
    async (client, target) => {
      const { handle, kind, workflowId } = await startRetool(client, config, opts);
      const uiUrl = workflowUrl(target, workflowId);
      opts.onStarted?.(workflowId, uiUrl);
      const base = { workflowId, kind, preset: config.preset, uiUrl };
      if (opts.detach) return { ...base, detached: true, arms: [], report: null, seconds: seconds() };
      let polling = false;
      const poll = setInterval(() => {
        if (polling || !opts.onStatus) return;
        polling = true;
        runStatus(client, workflowId)
          .then((s) => opts.onStatus?.(s))
          .catch(() => undefined)
          .finally(() => (polling = false));
      }, 1000);
      try {
        const result: PipelineResult | ExperimentResult = await handle.result();
        if (opts.onStatus) opts.onStatus(await runStatus(client, workflowId));
        const arms = 'arms' in result ? result.arms : [result];
        return { ...base, detached: false, arms, report: result.report, seconds: seconds() };
      } finally {
        clearInterval(poll);
      }
    },
  );
}
