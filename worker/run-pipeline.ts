// `retool run`: the pipeline workflow on a Temporal server (reused or started), with a worker in
// this process unless detached, printing each stage as the workflow's progress query reports it.
import { RetoolDataset, RetoolModel, RetoolStage } from '../workflows/search-attributes.js';
import { pipelineProgress, PRESETS, retoolPipeline, type PipelineResult } from '../workflows/pipeline.js';
import { withLocalTemporal } from './run-prepare.js';
import { TASK_QUEUES, workflowUrl } from './temporal.js';

export interface RunPipelineResult {
  workflowId: string;
  preset: string;
  uiUrl: string | null;
  detached: boolean;
  result: PipelineResult | null;
  seconds: number;
}

export async function runPipeline(preset: keyof typeof PRESETS, opts: { home?: string; detach?: boolean; onStage?: (stage: string) => void; onStarted?: (id: string, url: string | null) => void }): Promise<RunPipelineResult> {
  const started = performance.now();
  const config = PRESETS[preset];
  return withLocalTemporal({ home: opts.home, localWorker: !opts.detach }, async (client, target) => {
    const workflowId = `retool-${preset}-${Date.now().toString(36)}`;
    const handle = await client.workflow.start(retoolPipeline, {
      taskQueue: TASK_QUEUES.train,
      workflowId,
      args: [config],
      typedSearchAttributes: [
        { key: RetoolStage, value: 'prepare-data' },
        { key: RetoolDataset, value: config.data.name },
        { key: RetoolModel, value: config.model.preset },
      ],
      memo: { preset },
      staticSummary: `ReTool pipeline, preset ${preset}`,
    });
    const uiUrl = workflowUrl(target, workflowId);
    opts.onStarted?.(workflowId, uiUrl);
    if (opts.detach) return { workflowId, preset, uiUrl, detached: true, result: null, seconds: (performance.now() - started) / 1000 };
    let last = '';
    const poll = setInterval(() => {
      handle
        .query(pipelineProgress)
        .then((p) => {
          if (p.stage !== last) opts.onStage?.((last = p.stage));
        })
        .catch(() => {});
    }, 1000);
    try {
      const result = await handle.result();
      return { workflowId, preset, uiUrl, detached: false, result, seconds: (performance.now() - started) / 1000 };
    } finally {
      clearInterval(poll);
    }
  });
}
