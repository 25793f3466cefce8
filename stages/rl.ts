// Stage 3: RL on a problem dataset's train split, from an SFT model. Writes per-step metrics and
// every trajectory to the store, resumable checkpoints under <home>/artifacts/<run>/rl/step-N
// (policy; critic beside it), a held-out evaluation every k steps (stored like `retool eval`'s),
// and the final policy to `out`.
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { BadInputError } from '../domain/errors.js';
import { writeEvaluation } from '../datasets/evaluations.js';
import { problemsForStage } from '../datasets/problems-io.js';
import { writeRollouts } from '../datasets/rollouts.js';
import { finishRun, forgetStepsAfter, getRun, latestCheckpoint, recordMetrics, registerCheckpoint, startRun } from '../datasets/runs.js';
import type { ProblemRow } from '../datasets/schemas.js';
import { resolveHome, withStore } from '../datasets/store.js';
import { evaluateModel } from '../engine/eval/evaluate.js';
import type { EvalMetrics } from '../engine/eval/metrics.js';
import { openModel, saveTrainable } from '../engine/model/checkpoint.js';
import type { DecoderModel } from '../engine/model/decoder.js';
import { Sandbox, type IsolationMode } from '../engine/sandbox/index.js';
import { backendLabel, initBackend } from '../engine/tensor/backend.js';
import type { TextTokenizer } from '../engine/tokenizer/types.js';
import { RlConfigSchema, type RlConfig } from '../engine/rl/config.js';
import { criticDir, trainRl, type RlStepMetrics, type ScoredTrajectory } from '../engine/rl/trainer.js';
import { RlOptionsSchema, type RlOptions } from './options.js';
import { evaluationRows } from './evaluation-rows.js';

export interface RlEvalPoint {
  step: number;
  evaluation: string;
  accuracy: number;
  byLevel: Record<string, number>;
  responseLength: number;
  codeRatio: number;
  codeInvocationPosition: number | null;
}

export interface RlSummary {
  runId: string;
  algo: RlConfig['algo'];
  tools: boolean;
  model: string;
  dataset: string;
  steps: number;
  resumedFrom: number | null;
  stopped: boolean;
  evals: RlEvalPoint[];
  /** Per-step metrics of this invocation (a resumed run lists the steps it ran). */
  history: RlStepMetrics[];
  out: string | null;
  lastCheckpoint: string | null;
  backend: string;
  /** Isolation the model's code ran under (bubblewrap, unshare, unsafe-none). */
  sandbox: IsolationMode;
  seconds: number;
}

/**
 * Settings that must match for a resumed run to continue the same trajectory. Not `steps`: the
 * learning rate is constant, so a finished run can be continued for more steps.
 */
const RESUME_KEYS = [
  'dataset',
  'levels',
  'algo',
  'tools',
  'promptsPerStep',
  'samplesPerPrompt',
  'seed',
  'lr',
  'criticLr',
  'epochs',
  'miniBatchSize',
  'temperature',
  'klCoef',
] as const;

function evalPoint(step: number, evaluation: string, m: EvalMetrics): RlEvalPoint {
  return {
    step,
    evaluation,
    accuracy: m.avgAtK,
    byLevel: Object.fromEntries(Object.entries(m.byLevel).map(([level, a]) => [level, a.avgAtK])),
    responseLength: m.responseLength,
    codeRatio: m.codeRatio,
    codeInvocationPosition: m.codeInvocationPosition,
  };
}

function stepValues(m: RlStepMetrics): Record<string, number> {
  const values: Record<string, number | null> = {
    reward_mean: m.rewardMean,
    accuracy: m.accuracy,
    kl: m.kl,
    ref_kl: m.refKl,
    sampler_kl: m.samplerKl,
    entropy: m.entropy,
    clip_frac: m.clipFrac,
    pg_loss: m.pgLoss,
    value_loss: m.valueLoss,
    grad_norm: m.gradNorm,
    skipped_updates: m.skippedUpdates,
    response_length: m.responseLength,
    code_ratio: m.codeRatio,
    tool_calls: m.toolCalls,
    sandbox_errors: m.sandboxErrors,
    kept: m.kept,
    void_turns: m.voidTurns,
    tokens_per_s: m.tokensPerSecond,
    sandbox_wait_share: m.sandboxWaitShare,
    rollout_s: m.seconds.rollout,
    scoring_s: m.seconds.scoring,
    update_s: m.seconds.update,
  };
  return Object.fromEntries(Object.entries(values).filter((e): e is [string, number] => e[1] !== null));
}

/** A trajectory's turns: runs of tokens with the same role, decoded. */
function turnsOf(t: ScoredTrajectory, tokenizer: TextTokenizer) {
  const turns: { role: string; text: string }[] = [];
  let start = 0;
  for (let i = 1; i <= t.tokens.length; i++) {
    if (i === t.tokens.length || t.roles[i] !== t.roles[start]) {
      turns.push({ role: t.roles[start]!, text: tokenizer.decode(t.tokens.slice(start, i)) });
      start = i;
    }
  }
  return turns;
}

export async function runRl(
  options: RlOptions,
  hooks: {
    onStep?: (m: RlStepMetrics) => void;
    onEval?: (p: RlEvalPoint) => void;
    onCheckpoint?: (step: number, path: string) => void;
    signal?: AbortSignal;
  } = {},
): Promise<RlSummary> {
  const opts = RlOptionsSchema.parse(options);
  const config = RlConfigSchema.parse(opts);
  const started = performance.now();
  await initBackend();
  const backend = backendLabel();
  const home = resolveHome(opts.home);
  if (opts.resume && !opts.runId) throw new BadInputError('--resume needs --run-id: the run to continue');
  if (config.algo === 'grpo' && config.samplesPerPrompt < 2)
    throw new BadInputError('GRPO needs at least 2 samples per prompt (--samples): its advantages compare samples of the same problem');
  const runId = opts.runId ?? `rl-${new Date().toISOString().replace(/[-:T]/g, '').slice(0, 14)}-${randomBytes(3).toString('hex')}`;

  let evaluateFirst = false;
  const { train, held, heldRef, checkpoint } = await withStore(opts.home, async (store) => {
    const train = await problemsForStage(store, opts.dataset, 'train');
    const held = await problemsForStage(store, opts.evalDataset ?? opts.dataset, 'test');
    let checkpoint: { step: number; path: string } | null = null;
    if (opts.resume) {
      const previous = await getRun(store, runId);
      if (previous.kind !== 'rl') throw new BadInputError(`run ${runId} is a ${previous.kind} run, not rl`);
      for (const key of RESUME_KEYS) {
        if (JSON.stringify(previous.config[key]) !== JSON.stringify(opts[key]))
          throw new BadInputError(
            `--resume: run ${runId} was started with ${key} ${JSON.stringify(previous.config[key])}, not ${JSON.stringify(opts[key])}`,
          );
      }
      checkpoint = await latestCheckpoint(store, runId, 'rl');
      if (!checkpoint) throw new BadInputError(`run ${runId} has no checkpoint to resume from`);
      await forgetStepsAfter(store, runId, ['rl', 'rl-eval'], checkpoint.step);
      // An attempt that died between its last checkpoint and that step's evaluation owes it.
      const dueAt = checkpoint.step % config.evalEvery === 0 || checkpoint.step === opts.steps || checkpoint.step === previous.config.steps;
      const done = await store.query("SELECT 1 FROM metrics WHERE run_id = $1 AND stage = 'rl-eval' AND step = $2 LIMIT 1", [
        runId,
        checkpoint.step,
      ]);
      evaluateFirst = config.evalEvery > 0 && dueAt && done.length === 0;
    }
    if (opts.levels) train.rows = train.rows.filter((p) => p.level !== null && opts.levels!.includes(p.level));
    let heldRows: ProblemRow[] = held.rows;
    if (opts.evalLevels) heldRows = heldRows.filter((p) => p.level !== null && opts.evalLevels!.includes(p.level));
    if (train.rows.length === 0)
      throw new BadInputError(`${train.source} holds no problems${opts.levels ? ` at levels ${opts.levels.join(',')}` : ''}`);
    if (config.evalEvery > 0 && heldRows.length === 0)
      throw new BadInputError(
        `${held.source} holds no problems to evaluate on${opts.evalLevels ? ` at levels ${opts.evalLevels.join(',')}` : ''}`,
      );
    await startRun(store, { runId, kind: 'rl', config: opts, backend });
    return { train, held: { dataset: held.dataset, rows: heldRows.slice(0, opts.evalLimit) }, heldRef: held.source, checkpoint };
  });

  const models: DecoderModel[] = [];
  const sandbox = new Sandbox();
  const evals: RlEvalPoint[] = [];
  try {
    // Before the models load: a process holding gigabytes may no longer be allowed to fork.
    if (opts.tools) await sandbox.warm();
    const source = openModel(checkpoint?.path ?? opts.model);
    const { model: policy, tokenizer } = source;
    if (!tokenizer) throw new BadInputError(`${opts.model}: no tokenizer.json, so problems cannot be encoded`);
    models.push(policy);
    const criticSource = config.algo === 'ppo' ? openModel(checkpoint ? criticDir(checkpoint.path) : opts.model) : null;
    const critic = criticSource?.model ?? null;
    if (critic) {
      // A critic trains every weight: an adapter it was loaded with is folded in.
      critic.mergeLora();
      // The critic starts as the SFT model with a fresh value head, as in verl.
      critic.addValueHead(config.seed + 17);
      models.push(critic);
    }
    const reference = config.klCoef > 0 ? openModel(opts.model).model : null;
    if (reference) models.push(reference);
    const result = await trainRl({
      policy,
      critic,
      reference,
      tokenizer,
      tokenizerDir: opts.model,
      baseModel: source.baseModel,
      sandbox,
      problems: train.rows,
      config,
      checkpointDir: (step) => join(home, 'artifacts', runId, 'rl', `step-${step}`),
      resume: checkpoint ? { policy: source, critic: criticSource } : undefined,
      evaluateFirst,
      signal: hooks.signal,
      onStep: async (m, trajectories) => {
        await withStore(opts.home, async (store) => {
          await recordMetrics(store, runId, 'rl', [{ step: m.step, values: stepValues(m) }]);
          await writeRollouts(
            store,
            runId,
            trajectories.map((t) => ({
              step: m.step,
              sampleIdx: t.sampleIdx,
              problemId: t.problemId,
              response: t.response,
              turns: turnsOf(t, tokenizer),
              answer: t.answer,
              reward: t.reward,
              correct: t.correct,
              toolCalls: t.toolCalls.length,
              responseTokens: t.tokens.length,
            })),
          );
        });
        hooks.onStep?.(m);
      },
      onCheckpoint: async (step, path) => {
        await withStore(opts.home, (store) =>
          registerCheckpoint(store, { runId, stage: 'rl', step, path, metrics: { critic: critic ? criticDir(path) : null } }),
        );
        hooks.onCheckpoint?.(step, path);
      },
      evaluate: async (step, model) => {
        // Greedy, with the run's own interpreter budget and sandbox limits: the curve's points.
        const heldOut = {
          tools: config.tools,
          temperature: 0,
          maxToolCalls: config.maxToolCalls,
          maxResponseTokens: config.maxResponseTokens,
          maxInterpreterTokens: config.maxInterpreterTokens,
          batchSize: config.rolloutBatchSize,
          timeoutMs: config.timeoutMs,
          memoryMb: config.memoryMb,
        };
        const { samples, metrics } = await evaluateModel(model, tokenizer, sandbox, held.rows, heldOut);
        const stored = await withStore(opts.home, async (store) => {
          const out = await writeEvaluation(
            store,
            {
              name: `${runId}-step-${step}`,
              runId,
              step,
              problems: held.dataset,
              params: {
                model: `${runId}@${step}`,
                dataset: heldRef,
                tools: config.tools,
                samples: 1,
                temperature: heldOut.temperature,
                avgAtK: metrics.avgAtK,
              },
              newVersion: true,
            },
            evaluationRows(samples, config.tools),
          );
          const point = evalPoint(step, `${out.name}@${out.version}`, metrics);
          const values: Record<string, number> = {
            accuracy: point.accuracy,
            response_length: point.responseLength,
            code_ratio: point.codeRatio,
          };
          // The paper's Fig. 3 panels, where the evaluation had code to measure them on.
          const panels = {
            code_invocation_position: point.codeInvocationPosition,
            code_lines: metrics.codeLines,
            passing_code_blocks: metrics.passingCodeBlocks,
            code_pass_rate: metrics.codePassRate.all,
            self_correction_rate: metrics.selfCorrectionRate,
          };
          for (const [name, value] of Object.entries(panels)) if (value !== null) values[name] = value;
          for (const [level, acc] of Object.entries(point.byLevel)) values[`accuracy_level_${level}`] = acc;
          await recordMetrics(store, runId, 'rl-eval', [{ step, values }]);
          return point;
        });
        evals.push(stored);
        hooks.onEval?.(stored);
      },
    });
    if (!result.stopped) await saveTrainable(opts.out, policy, { baseModel: source.baseModel, tokenizerFrom: opts.model });
    const summary: RlSummary = {
      runId,
      algo: config.algo,
      tools: config.tools,
      model: opts.model,
      dataset: train.source,
      steps: result.step,
      resumedFrom: checkpoint?.step ?? null,
      stopped: result.stopped,
      evals,
      history: result.history,
      out: result.stopped ? null : opts.out,
      lastCheckpoint: result.lastCheckpoint,
      backend,
      sandbox: sandbox.isolation.mode,
      seconds: (performance.now() - started) / 1000,
    };
    await withStore(opts.home, (store) =>
      finishRun(store, runId, result.stopped ? 'stopped' : 'completed', { ...summary, history: undefined }),
    );
    return summary;
  } catch (err) {
    await withStore(opts.home, (store) => finishRun(store, runId, 'failed', { error: (err as Error).message })).catch(() => {});
    throw err;
  } finally {
    await sandbox.close();
    for (const m of models) m.dispose();
  }
}
