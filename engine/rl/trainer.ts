// The RL loop, engine only: each step rolls out n samples for a batch of training problems with
// the interpreter in the loop, scores them with the outcome reward, computes advantages (PPO:
// critic + GAE; GRPO: group-normalised), and updates the policy (and critic) over a few passes of
// mini-batches. Checkpoints hold everything needed to continue on the same trajectory: policy,
// critic, both optimizers' moments, the RL step and the data cursor; every random draw is a
// function of (seed, step), so there is no generator state to carry.
import { BadInputError } from '../../domain/errors.js';
import { Rng } from '../../domain/rng.js';
import { saveModel, saveTrainable, type LoadedModel } from '../model/checkpoint.js';
import type { DecoderModel } from '../model/decoder.js';
import { rollout, type Trajectory } from '../rollout/rollout.js';
import type { Sandbox } from '../sandbox/index.js';
import { ShuffledStream, type DataCursor } from '../train/stream.js';
import type { TextTokenizer } from '../tokenizer/types.js';
import { codeBlocks } from '../trace/format.js';
import { promptText } from '../trace/prompt.js';
import { AdamW, OptimizerConfigSchema } from '../train/optim.js';
import { gae, groupAdvantages, whiten } from './advantages.js';
import { clipHighOf, type RlConfig } from './config.js';
import { policyLossAndGrads, tokenLogprobs, tokenValues, valueLossAndGrads, type PolicyInputs, type PolicyStats } from './losses.js';
import { hasVoidTurn, outcomeReward } from './reward.js';

export interface RlProblem {
  id: string;
  problem: string;
  answer: string;
}

export interface ScoredTrajectory extends Trajectory {
  problemId: string;
  sampleIdx: number;
  reward: number;
  correct: boolean;
  answer: string | null;
  /** In the loss: false for dropped uniform groups and filtered void turns. */
  kept: boolean;
  voidTurn: boolean;
}

export interface RlStepMetrics {
  step: number;
  rewardMean: number;
  accuracy: number;
  /** Policy change over the update (k1 of old vs new log-probs on the actions). */
  kl: number | null;
  /** KL to the reference model (k3), when one is loaded. */
  refKl: number | null;
  /** Sampler vs trainer log-probs of the same tokens before the update (should be ~0). */
  samplerKl: number;
  entropy: number | null;
  clipFrac: number | null;
  pgLoss: number | null;
  valueLoss: number | null;
  valueClipFrac: number | null;
  gradNorm: number | null;
  /** Optimizer steps (actor or critic) skipped because their gradients were not finite. */
  skippedUpdates: number;
  responseLength: number;
  codeRatio: number;
  toolCalls: number;
  sandboxErrors: number;
  /** Share of trajectories in the loss. */
  kept: number;
  voidTurns: number;
  tokensPerSecond: number;
  sandboxWaitShare: number;
  lr: number;
  seconds: { rollout: number; scoring: number; update: number; total: number };
}

export interface RlRun {
  policy: DecoderModel;
  /** PPO's critic: a separate model with a value head. Null for GRPO. */
  critic: DecoderModel | null;
  /** The frozen starting model, for the KL term; null when klCoef is 0. */
  reference: DecoderModel | null;
  tokenizer: TextTokenizer;
  tokenizerDir: string;
  /** When the policy trains a LoRA adapter: the full model it sits on. */
  baseModel?: string;
  sandbox: Sandbox;
  problems: RlProblem[];
  config: RlConfig;
  /** The policy's checkpoint directory; the critic goes beside it with a `-critic` suffix. */
  checkpointDir: (step: number) => string;
  resume?: { policy: Pick<LoadedModel, 'optimizerState' | 'trainerState'>; critic: Pick<LoadedModel, 'optimizerState'> | null };
  onStep?: (m: RlStepMetrics, trajectories: ScoredTrajectory[]) => void | Promise<void>;
  onCheckpoint?: (step: number, dir: string) => void | Promise<void>;
  /** Held-out evaluation of the current policy, before training and every `evalEvery` steps. */
  evaluate?: (step: number, policy: DecoderModel) => Promise<void>;
  /** Evaluate before the first step even when resuming (the checkpoint's evaluation is missing). */
  evaluateFirst?: boolean;
  signal?: AbortSignal;
}

export interface RlResult {
  step: number;
  stopped: boolean;
  history: RlStepMetrics[];
  lastCheckpoint: string | null;
}

export const criticDir = (policyDir: string) => `${policyDir}-critic`;

const mean = (xs: number[]) => (xs.length === 0 ? 0 : xs.reduce((a, b) => a + b, 0) / xs.length);
const meanOrNull = (xs: number[]) => (xs.length === 0 ? null : mean(xs));

function chunks<T>(items: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/**
 * Mini-batches of at most `size` whose sizes differ by one at most: 37 by 32 is 19 + 18, not
 * 32 + 5, whose last optimizer step would follow five sequences as far as thirty-two.
 */
export function balancedChunks<T>(items: T[], size: number): T[][] {
  const count = Math.ceil(items.length / size);
  const out: T[][] = [];
  let at = 0;
  for (let k = 0; k < count; k++) {
    const n = Math.floor(items.length / count) + (k < items.length % count ? 1 : 0);
    out.push(items.slice(at, at + n));
    at += n;
  }
  return out;
}

function shuffled<T>(items: T[], rng: Rng): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = rng.int(0, i);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

interface StepState {
  seqs: (PolicyInputs & { returns: number[]; oldValues: number[] })[];
  scored: ScoredTrajectory[];
  samplerKl: number;
}

/** Rewards, old log-probs, values and advantages for one step's trajectories. */
function score(run: RlRun, trajectories: Trajectory[], jobs: { problem: RlProblem; sampleIdx: number; group: number }[]): StepState {
  const c = run.config;
  const pad = run.tokenizer.padId;
  const scored: ScoredTrajectory[] = trajectories.map((t, i) => {
    const { problem, sampleIdx } = jobs[i]!;
    const s = outcomeReward(t, problem.answer, { toolCallBonus: c.toolCallBonus });
    const voidTurn = hasVoidTurn(t);
    return { ...t, problemId: problem.id, sampleIdx, ...s, voidTurn, kept: !(c.filterVoidTurns && voidTurn) };
  });
  const seqs = trajectories.map((t) => ({
    ids: [...t.promptIds, ...t.tokens],
    actions: [...t.promptIds.map(() => 0), ...t.roles.map((r) => (r === 'model' ? 1 : 0))],
  }));
  const old = chunks(seqs, c.miniBatchSize).flatMap((ch) => tokenLogprobs(run.policy, ch, pad, c.temperature));
  const ref = run.reference ? chunks(seqs, c.miniBatchSize).flatMap((ch) => tokenLogprobs(run.reference!, ch, pad, c.temperature)) : null;
  const gaps: number[] = [];
  trajectories.forEach((t, i) => t.logprobs.forEach((lp, k) => lp !== null && gaps.push(lp - old[i]![t.promptIds.length + k]!)));

  let advantages: number[][];
  let returns: number[][] = seqs.map((s) => s.ids.map(() => 0));
  let values: number[][] = returns;
  if (c.algo === 'ppo') {
    if (!run.critic) throw new Error('PPO needs a critic');
    values = chunks(seqs, c.miniBatchSize).flatMap((ch) => tokenValues(run.critic!, ch, pad));
    const estimates = seqs.map((s, i) => gae(values[i]!, s.actions, scored[i]!.reward, c.gamma, c.lambda));
    advantages = estimates.map((e) => e.advantages);
    if (c.whitenAdvantages)
      advantages = whiten(
        advantages,
        seqs.map((s, i) => (scored[i]!.kept ? s.actions : s.actions.map(() => 0))),
      );
    returns = estimates.map((e) => e.returns);
  } else {
    const g = groupAdvantages(
      scored.map((s) => s.reward),
      jobs.map((j) => j.group),
      { dropUniform: c.dropUniformGroups },
    );
    advantages = seqs.map((s, i) => s.actions.map((a) => (a ? g.advantages[i]! : 0)));
    g.kept.forEach((k, i) => (scored[i]!.kept &&= k));
  }
  return {
    scored,
    samplerKl: mean(gaps),
    seqs: seqs.map((s, i) => ({
      ...s,
      advantages: advantages[i]!,
      oldLogprobs: old[i]!,
      refLogprobs: ref?.[i],
      returns: returns[i]!,
      oldValues: values[i]!,
    })),
  };
}

export async function trainRl(run: RlRun): Promise<RlResult> {
  const c = run.config;
  const optimizerConfig = (lr: number) =>
    OptimizerConfigSchema.parse({
      lr,
      minLr: lr,
      warmupSteps: c.warmupSteps,
      totalSteps: 1,
      schedule: 'constant',
      weightDecay: c.weightDecay,
      maxGradNorm: c.maxGradNorm,
    });
  const actorOpt = new AdamW(run.policy.policyParams(), optimizerConfig(c.lr));
  const criticOpt = run.critic ? new AdamW(run.critic.params, optimizerConfig(c.criticLr)) : null;
  let step = 0;
  let cursor: DataCursor = { epoch: 0, position: 0 };
  if (run.resume) {
    const state = run.resume.policy.trainerState;
    const extra = (state?.extra ?? {}) as {
      rlStep?: number;
      cursor?: DataCursor;
      seed?: number;
      problems?: number;
      algo?: string;
      criticStep?: number;
    };
    if (!state || extra.rlStep === undefined) throw new BadInputError('the checkpoint was not written by the RL loop');
    if (extra.seed !== c.seed || extra.problems !== run.problems.length || extra.algo !== c.algo)
      throw new BadInputError(
        `the checkpoint was made with ${extra.algo} seed ${extra.seed} on ${extra.problems} problems; this run has ${c.algo} seed ${c.seed} on ${run.problems.length}`,
      );
    if (!run.resume.policy.optimizerState)
      throw new BadInputError('the checkpoint holds no optimizer state, so training cannot continue exactly');
    actorOpt.loadState(state.step, run.resume.policy.optimizerState);
    if (criticOpt) {
      if (!run.resume.critic?.optimizerState) throw new BadInputError('the checkpoint holds no critic optimizer state');
      criticOpt.loadState(extra.criticStep ?? 0, run.resume.critic.optimizerState);
    }
    step = extra.rlStep;
    cursor = extra.cursor ?? cursor;
  }
  const stream = new ShuffledStream(run.problems.length, c.seed, cursor);
  const history: RlStepMetrics[] = [];
  let lastCheckpoint: string | null = null;

  const checkpoint = async () => {
    const dir = run.checkpointDir(step);
    // The critic first: a policy directory on disk means its critic is complete too.
    if (run.critic && criticOpt) await saveModel(criticDir(dir), run.critic, { tokenizerFrom: run.tokenizerDir, optimizer: criticOpt });
    const extra = {
      rlStep: step,
      cursor: stream.cursor,
      seed: c.seed,
      problems: run.problems.length,
      algo: c.algo,
      criticStep: criticOpt?.step ?? 0,
    };
    await saveTrainable(dir, run.policy, {
      baseModel: run.baseModel,
      tokenizerFrom: run.tokenizerDir,
      optimizer: actorOpt,
      trainerState: { step: actorOpt.step, extra },
    });
    lastCheckpoint = dir;
    await run.onCheckpoint?.(step, dir);
  };
  const evaluate = async () => {
    if (run.evaluate && c.evalEvery > 0) await run.evaluate(step, run.policy);
  };

  try {
    if (step === 0 || run.evaluateFirst) await evaluate();
    while (step < c.steps) {
      if (run.signal?.aborted) {
        if (lastCheckpoint !== run.checkpointDir(step)) await checkpoint();
        return { step, stopped: true, history, lastCheckpoint };
      }
      const t0 = performance.now();
      const picked = stream.next(c.promptsPerStep).map((i) => run.problems[i]!);
      const jobs = picked.flatMap((problem, group) =>
        Array.from({ length: c.samplesPerPrompt }, (_, sampleIdx) => ({ problem, sampleIdx, group })),
      );
      const prompts = jobs.map((j) => run.tokenizer.encode(promptText(run.tokenizer, j.problem.problem)));
      const { trajectories, stats } = await rollout(run.policy, run.tokenizer, run.sandbox, prompts, {
        tools: c.tools,
        maxToolCalls: c.maxToolCalls,
        maxResponseTokens: c.maxResponseTokens,
        maxInterpreterTokens: c.maxInterpreterTokens,
        temperature: c.temperature,
        topP: c.topP,
        seed: c.seed * 1_000_003 + step * 7_919,
        batchSize: c.rolloutBatchSize,
        timeoutMs: c.timeoutMs,
        memoryMb: c.memoryMb,
      });
      const t1 = performance.now();
      const { seqs, scored, samplerKl } = score(run, trajectories, jobs);
      const t2 = performance.now();

      const train = seqs.filter((_, i) => scored[i]!.kept);
      const policyStats: PolicyStats[] = [];
      const valueStats: { valueLoss: number; valueClipFrac: number }[] = [];
      const gradNorms: number[] = [];
      let skippedUpdates = 0;
      for (let epoch = 0; epoch < c.epochs && train.length > 0; epoch++) {
        const order = shuffled(train, new Rng(c.seed * 1_000_003 + step * 131 + epoch));
        for (const mb of balancedChunks(order, c.miniBatchSize)) {
          const p = policyLossAndGrads(run.policy, mb, run.tokenizer.padId, {
            clipLow: c.clipLow,
            clipHigh: clipHighOf(c),
            clipRatioC: c.clipRatioC,
            entropyCoef: c.entropyCoef,
            klCoef: c.klCoef,
            temperature: c.temperature,
          });
          const update = actorOpt.update(p.grads);
          policyStats.push(p.stats);
          if (update.applied) gradNorms.push(update.norm);
          else skippedUpdates += 1;
          if (run.critic && criticOpt) {
            const v = valueLossAndGrads(run.critic, mb, run.tokenizer.padId, c.valueClip);
            if (!criticOpt.update(v.grads).applied) skippedUpdates += 1;
            valueStats.push(v.stats);
          }
          await new Promise((r) => setImmediate(r));
        }
      }
      const t3 = performance.now();
      step += 1;

      const withCode = scored.filter((t) => codeBlocks(t.response).length > 0).length;
      const m: RlStepMetrics = {
        step,
        rewardMean: mean(scored.map((t) => t.reward)),
        accuracy: mean(scored.map((t) => (t.correct ? 1 : 0))),
        kl: meanOrNull(policyStats.map((s) => s.approxKl)),
        refKl: meanOrNull(policyStats.flatMap((s) => (s.refKl === null ? [] : [s.refKl]))),
        samplerKl,
        entropy: meanOrNull(policyStats.map((s) => s.entropy)),
        clipFrac: meanOrNull(policyStats.map((s) => s.clipFrac)),
        pgLoss: meanOrNull(policyStats.map((s) => s.pgLoss)),
        valueLoss: meanOrNull(valueStats.map((s) => s.valueLoss)),
        valueClipFrac: meanOrNull(valueStats.map((s) => s.valueClipFrac)),
        gradNorm: meanOrNull(gradNorms),
        skippedUpdates,
        responseLength: mean(scored.map((t) => t.tokens.length)),
        codeRatio: withCode / scored.length,
        toolCalls: mean(scored.map((t) => t.toolCalls.length)),
        sandboxErrors: scored.reduce((n, t) => n + t.toolCalls.filter((call) => call.status !== 'ok').length, 0),
        kept: mean(scored.map((t) => (t.kept ? 1 : 0))),
        voidTurns: scored.filter((t) => t.voidTurn).length,
        tokensPerSecond: stats.sampledTokens / Math.max(stats.seconds, 1e-9),
        sandboxWaitShare: stats.waitSeconds / Math.max(stats.seconds, 1e-9),
        lr: c.lr,
        seconds: { rollout: (t1 - t0) / 1000, scoring: (t2 - t1) / 1000, update: (t3 - t2) / 1000, total: (t3 - t0) / 1000 },
      };
      history.push(m);
      await run.onStep?.(m, scored);
      if ((c.checkpointEvery > 0 && step % c.checkpointEvery === 0) || step === c.steps) await checkpoint();
      if (c.evalEvery > 0 && (step % c.evalEvery === 0 || step === c.steps)) await evaluate();
    }
    return { step, stopped: false, history, lastCheckpoint };
  } finally {
    actorOpt.dispose();
    criticOpt?.dispose();
  }
}
