// The SFT loop: seeded shuffled batches, AdamW with warm-up and decay, masked next-token loss,
// periodic checkpoints that hold everything needed to continue (weights, optimizer moments, step,
// data cursor), so a resumed run produces the same losses as one never stopped.
import { saveTrainable, type LoadedModel } from '../model/checkpoint.js';
import type { DecoderModel } from '../model/decoder.js';
import { AdamW, OptimizerConfigSchema } from '../train/optim.js';
import { accumulatedTrainStep } from '../train/step.js';
import { padBatch, type SftExample } from './data.js';
import { LengthBucketedBatches, type BatchCursor } from './batches.js';
import { BadInputError } from '../../domain/errors.js';
import { loraOf, type SftConfig } from './config.js';

export interface SftStepMetrics {
  step: number;
  loss: number;
  gradNorm: number;
  lr: number;
  /** Tokens the batch holds, padding not counted. */
  batchTokens: number;
  /** Of those, the model's own tokens: the ones in the loss. */
  lossTokens: number;
  seconds: number;
}

export interface SftRun {
  model: DecoderModel;
  /** Where the model's tokenizer files come from (copied into every checkpoint). */
  tokenizerDir: string;
  /** The full model a LoRA run's adapter sits on (named in every adapter checkpoint). */
  baseModel: string;
  examples: SftExample[];
  padId: number;
  config: SftConfig;
  checkpointDir: (step: number) => string;
  /** Continue from a checkpoint written by this loop. */
  resume?: Pick<LoadedModel, 'optimizerState' | 'trainerState'>;
  onStep?: (m: SftStepMetrics) => void;
  onCheckpoint?: (step: number, dir: string) => void | Promise<void>;
  /** Checked between steps: when aborted, a checkpoint is written and the loop returns. */
  signal?: AbortSignal;
}

export interface SftResult {
  step: number;
  stopped: boolean;
  losses: number[];
  lastCheckpoint: string | null;
  /** Real (unpadded) tokens trained on per second of training steps. */
  tokensPerSecond: number;
}

export async function trainSft(run: SftRun): Promise<SftResult> {
  const c = run.config;
  const lora = loraOf(c);
  // A resumed LoRA run loaded its adapter with the checkpoint; a new one starts from B = 0.
  if (lora && !run.model.lora) run.model.attachLora(lora, { seed: c.seed });
  if (!lora && run.model.lora) throw new BadInputError('the checkpoint is a LoRA adapter but this run has loraRank 0');
  const optimizer = new AdamW(
    run.model.policyParams(),
    OptimizerConfigSchema.parse({
      lr: c.lr,
      minLr: c.minLr,
      warmupSteps: c.warmupSteps,
      totalSteps: c.steps,
      schedule: c.schedule,
      weightDecay: c.weightDecay,
      maxGradNorm: c.maxGradNorm,
    }),
  );
  let cursor: BatchCursor = { epoch: 0, position: 0 };
  if (run.resume?.trainerState) {
    const extra = run.resume.trainerState.extra as { cursor?: BatchCursor; seed?: number; examples?: number; lengthBucketSteps?: number };
    if (extra.seed !== c.seed || extra.examples !== run.examples.length)
      throw new BadInputError(
        `the checkpoint was made with seed ${extra.seed} on ${extra.examples} examples, this run has seed ${c.seed} and ${run.examples.length}`,
      );
    if ((extra.lengthBucketSteps ?? 1) !== c.lengthBucketSteps)
      throw new BadInputError(
        `the checkpoint was made with lengthBucketSteps ${extra.lengthBucketSteps ?? 1}, this run has ${c.lengthBucketSteps}: its batches would differ`,
      );
    if (!run.resume.optimizerState) throw new BadInputError('the checkpoint holds no optimizer state, so training cannot continue exactly');
    optimizer.loadState(run.resume.trainerState.step, run.resume.optimizerState);
    cursor = extra.cursor ?? cursor;
  }
  if (run.examples.length === 0) throw new BadInputError('no examples to train on');
  const batches = new LengthBucketedBatches(
    run.examples.map((e) => e.ids.length),
    { seed: c.seed, batchSize: c.batchSize, gradAccum: c.gradAccum, windowSteps: c.lengthBucketSteps },
    cursor,
  );
  const losses: number[] = [];
  let lastCheckpoint: string | null = null;
  let tokens = 0;
  let seconds = 0;

  const checkpoint = async () => {
    const dir = run.checkpointDir(optimizer.step);
    await saveTrainable(dir, run.model, {
      baseModel: run.baseModel,
      tokenizerFrom: run.tokenizerDir,
      optimizer,
      trainerState: {
        step: optimizer.step,
        extra: { cursor: batches.cursor, seed: c.seed, examples: run.examples.length, lengthBucketSteps: c.lengthBucketSteps },
      },
    });
    lastCheckpoint = dir;
    await run.onCheckpoint?.(optimizer.step, dir);
  };

  try {
    while (optimizer.step < c.steps) {
      if (run.signal?.aborted) {
        if (lastCheckpoint !== run.checkpointDir(optimizer.step)) await checkpoint();
        return { step: optimizer.step, stopped: true, losses, lastCheckpoint, tokensPerSecond: tokens / Math.max(seconds, 1e-9) };
      }
      const indices = batches.next();
      const micro = indices.map((batch) =>
        padBatch(
          batch.map((i) => run.examples[i]!),
          run.padId,
        ),
      );
      const batchTokens = indices.flat().reduce((n, i) => n + run.examples[i]!.ids.length, 0);
      const t0 = performance.now();
      const result = accumulatedTrainStep(run.model, optimizer, micro);
      const dt = (performance.now() - t0) / 1000;
      seconds += dt;
      tokens += batchTokens;
      losses.push(result.loss);
      run.onStep?.({
        step: optimizer.step,
        loss: result.loss,
        gradNorm: result.gradNorm,
        lr: result.lr,
        batchTokens,
        lossTokens: result.tokens,
        seconds: dt,
      });
      if ((c.checkpointEvery > 0 && optimizer.step % c.checkpointEvery === 0) || optimizer.step === c.steps) await checkpoint();
      // Let timers and I/O (heartbeats, signals, progress bars) run between steps.
      await new Promise((r) => setImmediate(r));
    }
    return { step: optimizer.step, stopped: false, losses, lastCheckpoint, tokensPerSecond: tokens / Math.max(seconds, 1e-9) };
  } finally {
    optimizer.dispose();
  }
}
