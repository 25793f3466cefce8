// The ReTool pipeline for one arm: data -> (base model || cold-start traces, verified) -> SFT ->
// (evaluation of the SFT model || RL rounds, a child workflow) -> final evaluation -> report.
// Orchestration only: every stage is an activity over an engine function.
import {
  ApplicationFailure,
  CancellationScope,
  defineQuery,
  isCancellation,
  setHandler,
  startChild,
  upsertMemo,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import { ZodError } from 'zod';
import { BAD_INPUT, describeZodError } from '../domain/errors.js';
import {
  coldStartTeacherOptions,
  storedTracesMissing,
  modelLabel,
  PRESETS,
  resolveConfig,
  SAMPLED_HELD_OUT,
  sftAdapterOptions,
  type PresetName,
  type RetoolConfig,
  type RetoolConfigInput,
} from './config.js';
import { pauseSignal, resumeSignal, STOPPED, stopSignal, TrainingControl } from './control.js';
import { activitiesFor } from './proxies.js';
import { retoolRl, type RlRoundsResult } from './rl-rounds.js';
import { RetoolBestAccuracy, RetoolDataset, RetoolModel, RetoolPreset, RetoolStage } from './search-attributes.js';

export const STAGES = ['data', 'cold-start', 'base-eval', 'sft', 'sft-eval', 'rl', 'final-eval', 'report'] as const;
export type PipelineStage = (typeof STAGES)[number];
type StageStatus = 'pending' | 'running' | 'done' | 'skipped' | 'stopped' | 'failed';

export interface PipelineProgress {
  preset: string;
  arm: 'code' | 'text';
  /** The stage the run is in (the latest started), `done`, `stopped` or `failed`. */
  stage: PipelineStage | 'done' | 'stopped' | 'failed';
  paused: boolean;
  stopRequested: boolean;
  dataset: string | null;
  stages: { name: PipelineStage; status: StageStatus; startedAt: number | null; seconds: number | null; detail: string | null }[];
  /** Workflow id of the RL child while RL runs (its own query gives the step). */
  rlWorkflowId: string | null;
  sftAccuracy: number | null;
  bestAccuracy: number | null;
  finalAccuracy: number | null;
  report: string | null;
}

export interface EvalBrief {
  evaluation: string;
  accuracy: number;
  byLevel: Record<string, number>;
}

export interface PipelineResult {
  workflowId: string;
  arm: 'code' | 'text';
  status: 'completed' | 'stopped';
  dataset: string;
  traces: string | null;
  /** The run whose final model this one started from (startFrom: latest), if any. */
  startedFrom: string | null;
  sftModel: string | null;
  finalModel: string | null;
  /** The base model before any training (eval.baseEval), zero-shot with the ReTool prompt. */
  baseEval: EvalBrief | null;
  sftEval: EvalBrief | null;
  rlEvals: { step: number; accuracy: number }[];
  rlSteps: number;
  finalEval: EvalBrief | null;
  report: string | null;
  stageSeconds: Record<string, number>;
}

export const pipelineProgress = defineQuery<PipelineProgress>('progress');

/** The config as given (CLI, UI, schedule, trigger) laid over its preset; bad config fails the run for good. */
export function parseConfig(input: unknown): RetoolConfig {
  const raw = (input ?? {}) as Record<string, unknown>;
  const preset = typeof raw.preset === 'string' && raw.preset in PRESETS ? (raw.preset as PresetName) : undefined;
  try {
    return resolveConfig(preset, raw);
  } catch (err) {
    if (err instanceof ZodError) throw ApplicationFailure.nonRetryable(`bad config: ${describeZodError(err)}`, BAD_INPUT);
    throw err;
  }
}

const brief = (e: { evaluation: string; accuracy: number; byLevel: Record<string, number> }): EvalBrief => ({
  evaluation: e.evaluation,
  accuracy: e.accuracy,
  byLevel: e.byLevel,
});

/** `input` is typed for callers; what arrives from the UI or a trigger is parsed all the same. */
export async function retoolPipeline(input: RetoolConfigInput): Promise<PipelineResult> {
  const config = parseConfig(input);
  const acts = activitiesFor(config.heartbeatTimeout);
  const control = new TrainingControl().install();
  // Schedules name runs `<id>-<ISO time>`: run ids and folders keep to [A-Za-z0-9._-].
  const workflowId = workflowInfo().workflowId;
  const id = workflowId.replace(/[^A-Za-z0-9._-]/g, '-');
  const dir = `artifacts/${id}`;
  const arm = config.arm;
  const tools = arm === 'code';
  // The schema checks an experiment's arms; a pipeline started on its own names its arm here.
  const missingTraces = storedTracesMissing(config.teacher, arm);
  if (missingTraces) throw ApplicationFailure.nonRetryable(`bad config: teacher.${arm}: ${missingTraces}`, BAD_INPUT);
  const progress: PipelineProgress = {
    preset: config.preset,
    arm,
    stage: 'data',
    paused: false,
    stopRequested: false,
    dataset: null,
    rlWorkflowId: null,
    stages: STAGES.map((name) => ({ name, status: 'pending', startedAt: null, seconds: null, detail: null })),
    sftAccuracy: null,
    bestAccuracy: null,
    finalAccuracy: null,
    report: null,
  };
  setHandler(pipelineProgress, () => ({ ...progress, paused: control.paused, stopRequested: control.stopRequested }));
  const entry = (name: PipelineStage) => progress.stages.find((s) => s.name === name)!;
  const mark = (name: PipelineStage, status: StageStatus, detail: string | null = null) => {
    const s = entry(name);
    s.status = status;
    if (detail) s.detail = detail;
    if (status === 'running') {
      s.startedAt = Date.now();
      progress.stage = name;
      upsertSearchAttributes([{ key: RetoolStage, value: name }]);
    } else if (s.startedAt !== null) s.seconds = (Date.now() - s.startedAt) / 1000;
  };
  const stage = async <T>(name: PipelineStage, body: () => Promise<T>): Promise<T> => {
    mark(name, 'running');
    const out = await body();
    // A stage stops early as STOPPED (SFT), or as a child's result that says so (RL rounds).
    const stopped = out === STOPPED || (typeof out === 'object' && out !== null && 'stopped' in out && out.stopped === true);
    mark(name, stopped ? 'stopped' : 'done');
    return out;
  };
  const noteBest = (accuracy: number | null) => {
    if (accuracy === null || (progress.bestAccuracy !== null && accuracy <= progress.bestAccuracy)) return;
    progress.bestAccuracy = accuracy;
    upsertSearchAttributes([{ key: RetoolBestAccuracy, value: accuracy }]);
    upsertMemo({ bestAccuracy: accuracy });
  };
  upsertSearchAttributes([
    { key: RetoolStage, value: 'data' },
    { key: RetoolDataset, value: config.data.name },
    { key: RetoolModel, value: `${modelLabel(config.model)}-${arm}` },
    { key: RetoolPreset, value: config.preset },
  ]);
  upsertMemo({ preset: config.preset, arm, dataset: config.data.name });
  await acts.brief.recordRunStart({ kind: 'pipeline', preset: config.preset, config });

  const { baseEval: evaluateBase, benchmarks, benchmark, ...heldOut } = config.eval;
  const shipped = benchmarks.filter((name): name is Exclude<typeof name, typeof SAMPLED_HELD_OUT> => name !== SAMPLED_HELD_OUT);
  let benchmarkSets: { name: string; dataset: string; levels?: number[]; limit?: number }[] = [];
  /** The held-out evaluation of a model, then its avg@k on each benchmark; answers the held-out one. */
  const evaluate = async (model: string, label: 'base' | 'sft' | 'final', what: string) => {
    const main = await acts.long.evaluate.executeWithOptions(
      { summary: `held-out evaluation of the ${what} (tools ${tools ? 'on' : 'off'})` },
      [{ ...heldOut, ...config.budget, model, dataset: `${progress.dataset}:test`, tools, name: `${id}-${label}-eval` }],
    );
    for (const b of benchmarkSets)
      await acts.long.evaluate.executeWithOptions(
        { summary: `${b.name}: avg@${benchmark.samples} of the ${what} at temperature ${benchmark.temperature}` },
        [
          {
            ...config.budget,
            samples: benchmark.samples,
            temperature: benchmark.temperature,
            topP: benchmark.topP,
            model,
            dataset: b.dataset,
            tools,
            name: `${id}-${label}-eval-${b.name}`,
            levels: b.levels,
            limit: b.limit ?? benchmark.limit,
            batchSize: heldOut.batchSize,
            seed: heldOut.seed,
            timeoutMs: heldOut.timeoutMs,
            memoryMb: heldOut.memoryMb,
          },
        ],
      );
    return main;
  };

  try {
    const [data, ...benches] = await stage('data', () =>
      Promise.all([
        acts.brief.prepareProblems.executeWithOptions({ summary: `problem set ${config.data.name} (${config.data.source})` }, [
          config.data,
        ]),
        ...shipped.map((name) => acts.brief.prepareBenchmark.executeWithOptions({ summary: `benchmark ${name}` }, [{ name }])),
      ]),
    );
    progress.dataset = data.dataset;
    benchmarkSets = benches;
    if (benchmarks.includes(SAMPLED_HELD_OUT))
      benchmarkSets.push({ name: SAMPLED_HELD_OUT, dataset: `${data.dataset}:test`, levels: heldOut.levels, limit: heldOut.limit });
    upsertMemo({ dataset: data.dataset });

    let sftModel: string | null = null;
    let baseModel: string | null = null;
    let baseEval: EvalBrief | null = null;
    let traces: string | null = null;
    let skipRl = false;
    const previous = config.startFrom === 'latest' ? await acts.brief.findLatestGoodModel({ datasetName: data.name, arm }) : null;
    if (previous) {
      mark('cold-start', 'skipped', `starting from ${previous.workflowId}`);
      mark('base-eval', 'skipped', `starting from ${previous.workflowId}`);
      mark('sft', 'skipped', `starting from ${previous.workflowId}`);
      sftModel = previous.model;
    } else {
      const baseInput = 'from' in config.model ? config.model : { out: `${dir}/base`, ...config.model };
      const baseSummary =
        'from' in config.model ? `base model ${config.model.from}` : `base model (${config.model.preset}, seed ${config.model.seed})`;
      const [base, made] = await stage('cold-start', () =>
        Promise.all([
          acts.long.initModel.executeWithOptions({ summary: baseSummary }, [baseInput]),
          config.teacher.kind === 'stored'
            ? acts.brief.useStoredTraces.executeWithOptions({ summary: `stored ${arm} traces ${config.teacher[arm]}` }, [
                { traces: config.teacher[arm]!, mode: arm },
              ])
            : acts.long.synthTraces.executeWithOptions({ summary: `cold-start ${arm} traces, verified by the sandbox` }, [
                { dataset: data.dataset, out: `${id}-${arm}`, mode: arm, ...config.traces, ...coldStartTeacherOptions(config.teacher) },
              ]),
        ]),
      );
      traces = made.dataset;
      baseModel = base.dir;
      if (evaluateBase) baseEval = brief(await stage('base-eval', () => evaluate(base.dir, 'base', 'base model')));
      else mark('base-eval', 'skipped');
      entry('cold-start').detail = `${made.kept} verified traces`;
      const sft = await stage('sft', () =>
        control.train(() =>
          acts.long.sft.executeWithOptions({ summary: `SFT on ${traces}: ${config.sft.steps} steps of ${config.sft.batchSize}` }, [
            {
              traces: traces!,
              model: base.dir,
              out: `${dir}/sft`,
              runId: `${id}-sft`,
              ...config.sft,
              ...sftAdapterOptions(config.adapter),
              contextTokens: config.budget.contextTokens,
            },
          ]),
        ),
      );
      if (sft === STOPPED) {
        sftModel = (await acts.brief.lastCheckpoint({ runId: `${id}-sft`, stage: 'sft' }))?.path ?? null;
        skipRl = true;
      } else sftModel = `${dir}/sft`;
    }

    let rl: RlRoundsResult | null = null;
    let sftEval: EvalBrief | null = null;
    if (sftModel) {
      const model = sftModel;
      const runRl = async () => {
        if (skipRl || !(await control.gate())) {
          mark('rl', 'skipped', 'stopped early');
          return null;
        }
        return stage('rl', async () => {
          const child = await startChild(retoolRl, {
            workflowId: `${id}-rl`,
            staticSummary: `RL (${config.rl.algo}) of the ${arm} arm: ${config.rl.steps} steps in rounds of ${config.rl.evalEvery}`,
            args: [
              {
                runId: `${id}-rl`,
                model,
                out: `${dir}/rl`,
                dataset: data.dataset,
                tools,
                rl: { ...config.rl, ...config.budget },
                evalLevels: config.eval.levels,
                heartbeatTimeout: config.heartbeatTimeout,
                roundsPerRun: config.roundsPerRun,
              },
            ],
          });
          progress.rlWorkflowId = child.workflowId;
          const signals = { pause: pauseSignal, resume: resumeSignal, stop: stopSignal };
          return control.delegating(
            (s) => child.signal(signals[s]),
            () => child.result(),
          );
        });
      };
      const [sftResult, rlResult] = await Promise.all([
        stage('sft-eval', () => evaluate(model, 'sft', previous ? 'starting model' : 'SFT model')),
        runRl(),
      ]);
      sftEval = brief(sftResult);
      progress.sftAccuracy = sftEval.accuracy;
      noteBest(sftEval.accuracy);
      rl = rlResult;
      for (const e of rl?.evals ?? []) noteBest(e.accuracy);
    }

    const finalModel = rl?.model ?? sftModel;
    let finalEval: EvalBrief | null = null;
    if (finalModel) {
      finalEval = brief(await stage('final-eval', () => evaluate(finalModel, 'final', 'final model')));
      progress.finalAccuracy = finalEval.accuracy;
      noteBest(finalEval.accuracy);
    } else mark('final-eval', 'skipped', 'no model: stopped before the first SFT checkpoint');

    const status = control.stopRequested || rl?.stopped ? 'stopped' : 'completed';
    const stageSeconds = Object.fromEntries(progress.stages.filter((s) => s.seconds !== null).map((s) => [s.name, s.seconds!]));
    const result: PipelineResult = {
      workflowId,
      arm,
      status,
      dataset: data.dataset,
      traces,
      startedFrom: previous?.workflowId ?? null,
      sftModel,
      finalModel,
      baseEval,
      sftEval,
      rlEvals: rl?.evals ?? [],
      rlSteps: rl?.steps ?? 0,
      finalEval,
      report: null,
      stageSeconds,
    };
    await acts.brief.recordRunEnd({
      status,
      summary: {
        datasetName: data.name,
        dataset: data.dataset,
        arm,
        traces,
        baseModel,
        sftModel,
        finalModel,
        startedFrom: result.startedFrom,
        sftRunId: previous ? null : `${id}-sft`,
        rlRunId: rl ? `${id}-rl` : null,
        baseAccuracy: baseEval?.accuracy ?? null,
        sftAccuracy: sftEval?.accuracy ?? null,
        accuracy: finalEval?.accuracy ?? null,
        byLevel: finalEval?.byLevel ?? {},
        rlSteps: result.rlSteps,
        stageSeconds,
      },
    });
    const report = await stage('report', () =>
      acts.brief.report.executeWithOptions({ summary: 'HTML report with plots' }, [{ runId: workflowId, out: `${dir}/report.html` }]),
    );
    progress.report = report.html;
    upsertMemo({ report: report.html, finalAccuracy: finalEval?.accuracy ?? null });
    progress.stage = status === 'completed' ? 'done' : 'stopped';
    upsertSearchAttributes([{ key: RetoolStage, value: progress.stage }]);
    return { ...result, report: report.html };
  } catch (err) {
    progress.stage = 'failed';
    const running = progress.stages.find((s) => s.status === 'running');
    if (running) running.status = 'failed';
    await CancellationScope.nonCancellable(async () => {
      upsertSearchAttributes([{ key: RetoolStage, value: 'failed' }]);
      await acts.brief.recordRunEnd({
        status: isCancellation(err) ? 'stopped' : 'failed',
        summary: { error: String((err as Error).message ?? err) },
      });
    });
    throw err;
  }
}
