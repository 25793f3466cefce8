// The paper's comparison: the ReTool arm (interpreter in the loop) and the text-only arm, trained
// as child pipelines on the same problem set, compared in one report.
import {
  CancellationScope,
  defineQuery,
  isCancellation,
  setHandler,
  startChild,
  upsertMemo,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import { pauseSignal, resumeSignal, stopSignal, TrainingControl } from './control.js';
import { parseConfig, retoolPipeline, type PipelineResult } from './pipeline.js';
import type { RetoolConfigInput } from './config.js';
import { activitiesFor } from './proxies.js';
import { RetoolBestAccuracy, RetoolDataset, RetoolPreset, RetoolStage } from './search-attributes.js';

export interface ExperimentProgress {
  preset: string;
  stage: 'data' | 'arms' | 'report' | 'done' | 'failed';
  dataset: string | null;
  /** Workflow ids of the arms' pipelines (each answers the `progress` query). */
  arms: { arm: 'code' | 'text'; workflowId: string }[];
}

export interface ExperimentResult {
  workflowId: string;
  dataset: string;
  arms: PipelineResult[];
  report: string;
}

export const experimentProgress = defineQuery<ExperimentProgress>('progress');

/** `input` is typed for callers; what arrives from the UI or a trigger is parsed all the same. */
export async function retoolExperiment(input: RetoolConfigInput): Promise<ExperimentResult> {
  const config = parseConfig(input);
  const { brief, long } = activitiesFor(config.heartbeatTimeout);
  const control = new TrainingControl().install();
  const id = workflowInfo().workflowId;
  const progress: ExperimentProgress = { preset: config.preset, stage: 'data', dataset: null, arms: [] };
  setHandler(experimentProgress, () => progress);
  const enter = (stage: ExperimentProgress['stage']) => {
    progress.stage = stage;
    upsertSearchAttributes([{ key: RetoolStage, value: stage }]);
  };
  upsertSearchAttributes([
    { key: RetoolStage, value: 'data' },
    { key: RetoolDataset, value: config.data.name },
    { key: RetoolPreset, value: config.preset },
  ]);
  upsertMemo({ preset: config.preset, arms: config.arms, dataset: config.data.name });
  await brief.recordRunStart({ kind: 'experiment', preset: config.preset, config });
  try {
    // One problem set for every arm, made once.
    const data = await brief.prepareProblems(config.data);
    progress.dataset = data.dataset;
    // A pretrained base is fetched once too, so the arms do not download it side by side.
    const model = 'from' in config.model ? { from: (await long.initModel({ from: config.model.from })).dir } : config.model;

    enter('arms');
    const startArm = (arm: 'code' | 'text') =>
      startChild(retoolPipeline, {
        workflowId: `${id}-${arm}`,
        staticSummary: `${arm === 'code' ? 'ReTool (code)' : 'text-only'} arm of ${id}`,
        args: [
          {
            ...config,
            arm,
            model,
            data: { source: 'stored', name: data.name, version: data.version },
            // The arms share one base, so its zero-shot evaluation runs once, in the first arm.
            eval: { ...config.eval, baseEval: config.eval.baseEval && arm === config.arms[0] },
          },
        ],
      });
    const signals = { pause: pauseSignal, resume: resumeSignal, stop: stopSignal };
    const running: Awaited<ReturnType<typeof startArm>>[] = [];
    const arms = await control.delegating(
      (s) => Promise.all(running.map((c) => c.signal(signals[s]))).then(() => undefined),
      async () => {
        const note = (c: Awaited<ReturnType<typeof startArm>>, arm: 'code' | 'text') => {
          running.push(c);
          // An arm started while the experiment is paused starts paused.
          if (control.paused) void c.signal(pauseSignal);
          progress.arms.push({ arm, workflowId: c.workflowId });
          upsertMemo({ armRuns: progress.arms });
          return c;
        };
        if (config.parallelArms) {
          const children = await Promise.all(config.arms.map(startArm));
          children.forEach((c, i) => note(c, config.arms[i]!));
          return Promise.all(children.map((c) => c.result()));
        }
        const results: PipelineResult[] = [];
        for (const arm of config.arms) {
          const child = note(await startArm(arm), arm);
          results.push(await child.result());
          // A stop ends the experiment with the arms run so far.
          if (control.stopRequested) break;
        }
        return results;
      },
    );
    const best = Math.max(...arms.map((a) => a.finalEval?.accuracy ?? 0));
    upsertSearchAttributes([{ key: RetoolBestAccuracy, value: best }]);
    upsertMemo({ bestAccuracy: best });

    const stopped = arms.some((a) => a.status === 'stopped');
    await brief.recordRunEnd({
      status: stopped ? 'stopped' : 'completed',
      summary: {
        dataset: data.dataset,
        arms: arms.map((a) => ({
          arm: a.arm,
          workflowId: a.workflowId,
          sftAccuracy: a.sftEval?.accuracy ?? null,
          accuracy: a.finalEval?.accuracy ?? null,
          rlSteps: a.rlSteps,
        })),
      },
    });
    enter('report');
    const report = await brief.report({ runId: id, out: `artifacts/${id.replace(/[^A-Za-z0-9._-]/g, '-')}/report.html` });
    upsertMemo({ report: report.html });
    enter('done');
    return { workflowId: id, dataset: data.dataset, arms, report: report.html };
  } catch (err) {
    await CancellationScope.nonCancellable(async () => {
      enter('failed');
      await brief.recordRunEnd({
        status: isCancellation(err) ? 'stopped' : 'failed',
        summary: { error: String((err as Error).message ?? err) },
      });
    });
    throw err;
  }
}
