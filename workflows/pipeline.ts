// The ReTool pipeline as one workflow: data -> (base model || cold-start traces) -> SFT ->
// (evaluation of the SFT model || RL rounds with their own periodic evaluation) -> final
// evaluation. Orchestration only: every stage is an activity over an engine function. First slice
// of the full pipeline (presets `quick` and `default` here; the experiment workflow, schedules and
// the report come next).
import { defineQuery, proxyActivities, setHandler, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities/index.js';
import { RetoolDataset, RetoolModel, RetoolStage } from './search-attributes.js';

export interface PipelineConfig {
  preset: string;
  data: { name: string; count: number; seed: number };
  model: { preset: 'tiny' | 'small'; seed: number };
  traces: { limit?: number; seed: number };
  sft: { steps: number; batchSize: number; lr: number; checkpointEvery: number };
  rl: { algo: 'ppo' | 'grpo'; steps: number; promptsPerStep: number; samplesPerPrompt: number; lr: number; levels?: number[]; evalEvery: number; evalLimit: number; checkpointEvery: number; maxResponseTokens: number };
  eval: { levels?: number[]; limit?: number };
  /** How long a long activity may go without a heartbeat before Temporal retries it elsewhere. */
  heartbeatTimeout?: string;
}

/** Sizes for a first look (minutes on 2 cores) and for tests; `default` is the embedded main job. */
export const PRESETS: Record<'quick' | 'default', PipelineConfig> = {
  quick: {
    preset: 'quick',
    data: { name: 'quick-world', count: 600, seed: 7 },
    model: { preset: 'tiny', seed: 0 },
    traces: { limit: 200, seed: 0 },
    sft: { steps: 30, batchSize: 8, lr: 3e-3, checkpointEvery: 10 },
    rl: { algo: 'grpo', steps: 2, promptsPerStep: 4, samplesPerPrompt: 4, lr: 3e-5, evalEvery: 2, evalLimit: 16, checkpointEvery: 1, maxResponseTokens: 96 },
    eval: { limit: 32 },
  },
  default: {
    preset: 'default',
    data: { name: 'world', count: 12_000, seed: 7 },
    model: { preset: 'tiny', seed: 0 },
    traces: { seed: 0 },
    sft: { steps: 4000, batchSize: 8, lr: 3e-3, checkpointEvery: 500 },
    rl: { algo: 'grpo', steps: 40, promptsPerStep: 16, samplesPerPrompt: 8, lr: 3e-5, levels: [3, 4], evalEvery: 20, evalLimit: 400, checkpointEvery: 10, maxResponseTokens: 192 },
    eval: { levels: [3, 4] },
  },
};

export type PipelineStage = 'prepare-data' | 'cold-start' | 'sft' | 'rl' | 'final-eval' | 'done' | 'failed';

export interface PipelineProgress {
  stage: PipelineStage;
  preset: string;
  dataset: string | null;
  sftAccuracy: number | null;
  rlAccuracy: number | null;
}

export interface PipelineResult {
  dataset: string;
  traces: string;
  sftModel: string;
  rlModel: string;
  sftEval: { evaluation: string; accuracy: number; byLevel: Record<string, number> };
  rlEvals: { step: number; accuracy: number }[];
  finalEval: { evaluation: string; accuracy: number; byLevel: Record<string, number> };
}

export const pipelineProgress = defineQuery<PipelineProgress>('progress');

const retry = { maximumAttempts: 5, nonRetryableErrorTypes: ['BadInputError'] };
const brief = proxyActivities<Activities>({ startToCloseTimeout: '1 hour', heartbeatTimeout: '5 minutes', retry });

export async function retoolPipeline(config: PipelineConfig): Promise<PipelineResult> {
  const long = proxyActivities<Activities>({ startToCloseTimeout: '7 days', heartbeatTimeout: (config.heartbeatTimeout ?? '10 minutes') as '10 minutes', retry });
  const id = workflowInfo().workflowId;
  const dir = `artifacts/${id}`;
  const progress: PipelineProgress = { stage: 'prepare-data', preset: config.preset, dataset: null, sftAccuracy: null, rlAccuracy: null };
  setHandler(pipelineProgress, () => progress);
  const enter = (stage: PipelineStage) => {
    progress.stage = stage;
    upsertSearchAttributes([{ key: RetoolStage, value: stage }]);
  };
  upsertSearchAttributes([
    { key: RetoolStage, value: 'prepare-data' },
    { key: RetoolDataset, value: config.data.name },
    { key: RetoolModel, value: config.model.preset },
  ]);
  try {
    const prepared = await brief.prepareData({ source: 'synth', ...config.data });
    const dataset = `${prepared.dataset.name}@${prepared.dataset.version}`;
    progress.dataset = dataset;

    enter('cold-start');
    const [base, traces] = await Promise.all([
      brief.initModel({ out: `${dir}/base`, ...config.model }),
      long.synthTraces({ dataset, out: `${id}-code`, mode: 'code', ...config.traces }),
    ]);

    enter('sft');
    await long.sft({ traces: traces.dataset, model: base.dir, out: `${dir}/sft`, runId: `${id}-sft`, ...config.sft });

    enter('rl');
    const [sftEval, rl] = await Promise.all([
      long.evaluate({ model: `${dir}/sft`, dataset: `${dataset}:test`, tools: true, levels: config.eval.levels, limit: config.eval.limit, name: `${id}-sft-eval` }),
      long.rl({ model: `${dir}/sft`, dataset, out: `${dir}/rl`, runId: `${id}-rl`, evalLevels: config.eval.levels, ...config.rl }),
    ]);
    progress.sftAccuracy = sftEval.accuracy;
    progress.rlAccuracy = rl.evals.at(-1)?.accuracy ?? null;

    enter('final-eval');
    const finalEval = await long.evaluate({ model: `${dir}/rl`, dataset: `${dataset}:test`, tools: true, levels: config.eval.levels, limit: config.eval.limit, name: `${id}-final-eval` });
    enter('done');
    return {
      dataset,
      traces: traces.dataset,
      sftModel: `${dir}/sft`,
      rlModel: `${dir}/rl`,
      sftEval: { evaluation: sftEval.evaluation, accuracy: sftEval.accuracy, byLevel: sftEval.byLevel },
      rlEvals: rl.evals.map((e) => ({ step: e.step, accuracy: e.accuracy })),
      finalEval: { evaluation: finalEval.evaluation, accuracy: finalEval.accuracy, byLevel: finalEval.byLevel },
    };
  } catch (err) {
    enter('failed');
    throw err;
  }
}
