// Stage 2: SFT on a verified trace dataset. Reads the traces, trains, writes resumable checkpoints
// under <home>/artifacts/<run>/sft/step-N (registered in the store with the step metrics), and
// the final model to `out`. The store is opened only briefly, so other commands can use it meanwhile.
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { BadInputError } from '../domain/errors.js';
import {
  finishRun,
  forgetStepsAfter,
  getRun,
  latestCheckpoint,
  recordMetrics,
  registerCheckpoint,
  startRun,
  type MetricPoint,
} from '../datasets/runs.js';
import { resolveHome, withStore } from '../datasets/store.js';
import { readTraces, resolveTraceDataset } from '../datasets/traces.js';
import { openModel, saveTrainable } from '../engine/model/checkpoint.js';
import { backendLabel, initBackend } from '../engine/tensor/backend.js';
import { buildExamples } from '../engine/sft/data.js';
import { SftConfigSchema } from '../engine/sft/config.js';
import { trainSft, type SftStepMetrics } from '../engine/sft/trainer.js';
import { SftOptionsSchema, type SftOptions } from './options.js';

export interface SftSummary {
  runId: string;
  traces: string;
  examples: number;
  tooLong: number;
  steps: number;
  resumedFrom: number | null;
  stopped: boolean;
  firstLoss: number | null;
  finalLoss: number | null;
  tokensPerSecond: number;
  out: string | null;
  lastCheckpoint: string | null;
  backend: string;
  seconds: number;
}

export async function runSft(
  options: SftOptions,
  hooks: { onStep?: (m: SftStepMetrics) => void; onCheckpoint?: (step: number, path: string) => void; signal?: AbortSignal } = {},
): Promise<SftSummary> {
  const opts = SftOptionsSchema.parse(options);
  const started = performance.now();
  await initBackend();
  const backend = backendLabel();
  const home = resolveHome(opts.home);
  if (opts.resume && !opts.runId) throw new BadInputError('--resume needs --run-id: the run to continue');
  const runId = opts.runId ?? `sft-${new Date().toISOString().replace(/[-:T]/g, '').slice(0, 14)}-${randomBytes(3).toString('hex')}`;
  const config = SftConfigSchema.parse(opts);

  const { dataset, traces, checkpoint } = await withStore(opts.home, async (store) => {
    const dataset = await resolveTraceDataset(store, opts.traces);
    const traces = await readTraces(store, dataset);
    let checkpoint: { step: number; path: string } | null = null;
    if (opts.resume) {
      const previous = await getRun(store, runId);
      if (previous.kind !== 'sft') throw new BadInputError(`run ${runId} is a ${previous.kind} run, not sft`);
      for (const key of [
        'traces',
        'steps',
        'batchSize',
        'gradAccum',
        'lengthBucketSteps',
        'seed',
        'lr',
        'warmupSteps',
        'schedule',
        'loraRank',
      ] as const) {
        // A key the record lacks was added since the run started, with the default it then had.
        if (key in previous.config && previous.config[key] !== opts[key])
          throw new BadInputError(
            `--resume: run ${runId} was started with ${key} ${JSON.stringify(previous.config[key])}, not ${JSON.stringify(opts[key])}`,
          );
      }
      checkpoint = await latestCheckpoint(store, runId, 'sft');
      if (!checkpoint) throw new BadInputError(`run ${runId} has no checkpoint to resume from`);
      await forgetStepsAfter(store, runId, ['sft'], checkpoint.step);
    }
    await startRun(store, { runId, kind: 'sft', config: opts, backend });
    return { dataset, traces, checkpoint };
  });
  if (traces.length === 0) throw new BadInputError(`${dataset.name}@${dataset.version} holds no verified traces`);

  const source = openModel(checkpoint?.path ?? opts.model);
  const { model, tokenizer } = source;
  if (!tokenizer) throw new BadInputError(`${opts.model}: no tokenizer.json, so traces cannot be encoded`);
  const context = Math.min(model.config.max_position_embeddings, config.contextTokens ?? Infinity);
  const { examples, tooLong } = buildExamples(tokenizer, traces, context);
  if (examples.length === 0)
    throw new BadInputError(`every trace of ${dataset.name}@${dataset.version} is longer than the context (${context} tokens)`);

  const pending: MetricPoint[] = [];
  try {
    const result = await trainSft({
      model,
      tokenizerDir: checkpoint?.path ?? opts.model,
      baseModel: source.baseModel ?? opts.model,
      examples,
      padId: tokenizer.padId,
      config,
      checkpointDir: (step) => join(home, 'artifacts', runId, 'sft', `step-${step}`),
      resume: checkpoint ? source : undefined,
      signal: hooks.signal,
      onStep: (m) => {
        pending.push({
          step: m.step,
          values: { loss: m.loss, grad_norm: m.gradNorm, lr: m.lr, tokens_per_s: m.batchTokens / Math.max(m.seconds, 1e-9) },
        });
        hooks.onStep?.(m);
      },
      onCheckpoint: async (step, path) => {
        const points = pending.splice(0);
        await withStore(opts.home, async (store) => {
          await recordMetrics(store, runId, 'sft', points);
          await registerCheckpoint(store, { runId, stage: 'sft', step, path, metrics: { loss: points.at(-1)?.values.loss ?? null } });
        });
        hooks.onCheckpoint?.(step, path);
      },
    });
    if (!result.stopped)
      await saveTrainable(opts.out, model, { baseModel: source.baseModel ?? opts.model, tokenizerFrom: checkpoint?.path ?? opts.model });
    const summary: SftSummary = {
      runId,
      traces: `${dataset.name}@${dataset.version}`,
      examples: examples.length,
      tooLong,
      steps: result.step,
      resumedFrom: checkpoint?.step ?? null,
      stopped: result.stopped,
      firstLoss: result.losses[0] ?? null,
      finalLoss: result.losses.at(-1) ?? null,
      tokensPerSecond: result.tokensPerSecond,
      out: result.stopped ? null : opts.out,
      lastCheckpoint: result.lastCheckpoint,
      backend,
      seconds: (performance.now() - started) / 1000,
    };
    await withStore(opts.home, (store) => finishRun(store, runId, result.stopped ? 'stopped' : 'completed', summary));
    return summary;
  } catch (err) {
    await withStore(opts.home, (store) => finishRun(store, runId, 'failed', { error: (err as Error).message })).catch(() => {});
    throw err;
  } finally {
    for (const p of model.params.values()) p.dispose();
  }
}
