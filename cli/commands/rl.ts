// `retool rl`: stage 3 alone from the command line, with a progress bar (or, when stderr is not a
// terminal, one line per step) and the evaluation curve at the end.
import { Command } from 'commander';
import type { RlEvalPoint } from '../../stages/rl.js';
import type { RlStepMetrics } from '../../engine/rl/trainer.js';
import { RlOptionsSchema } from '../../stages/options.js';
import { emit, pct, progressBar, table, type CommonOptions } from '../output.js';
import { addSchemaFlags, parseSchemaFlags, ROLLOUT_FLAGS, type Flags } from '../schema-flags.js';

type Opts = CommonOptions & Record<string, unknown>;

function stepLine(m: RlStepMetrics): string {
  const s = m.seconds;
  return `step ${m.step}: reward ${m.rewardMean.toFixed(3)}, accuracy ${pct(m.accuracy)}, length ${m.responseLength.toFixed(1)}, code ${pct(m.codeRatio)}, tool calls ${m.toolCalls.toFixed(2)}, kl ${m.kl?.toExponential(2) ?? '-'}, entropy ${m.entropy?.toFixed(3) ?? '-'}, clip ${pct(m.clipFrac)}, kept ${pct(m.kept)} (${s.rollout.toFixed(1)} s rollout, ${s.scoring.toFixed(1)} s scoring, ${s.update.toFixed(1)} s update)`;
}

/** Accuracy per difficulty level, when the problems have levels. */
const levelsOf = (p: RlEvalPoint) => Object.entries(p.byLevel).filter(([l]) => /^\d+$/.test(l));

function evalLine(p: RlEvalPoint): string {
  const levels = levelsOf(p)
    .map(([l, a]) => `L${l} ${pct(a)}`)
    .join(', ');
  return `eval at step ${p.step}: accuracy ${pct(p.accuracy)}${levels ? ` (${levels})` : ''}, length ${p.responseLength.toFixed(1)}, code ${pct(p.codeRatio)}`;
}

/** `retool rl`'s flags: each a field of the RL stage's schema, which holds its type and default. */
const RL_FLAGS = {
  model: { help: 'the SFT model to start from', arg: 'dir', required: true },
  dataset: { help: 'problems: NAME[@V][:split] (default: the train split)', arg: 'ref', required: true },
  out: { help: 'where to write the final policy', arg: 'dir', required: true },
  levels: 'train on these difficulty levels only',
  algo: 'GRPO (the verl recipe, DAPO clipping) or PPO with a critic (the paper)',
  tools: { help: 'off: the text-only arm', onOff: true },
  steps: 'RL steps',
  promptsPerStep: { name: 'prompts', help: 'problems per step' },
  samplesPerPrompt: { name: 'samples', help: 'samples per problem (GRPO group size)' },
  lr: 'policy learning rate',
  criticLr: 'critic learning rate (PPO)',
  epochs: "passes over each step's rollouts",
  miniBatchSize: { name: 'mini-batch', help: 'sequences per optimizer step' },
  temperature: 'sampling temperature',
  klCoef: 'KL to the starting model (paper: 0)',
  entropyCoef: 'entropy bonus',
  clipRatioC: 'dual clip: a negative advantage weighs at most this many times itself (verl: 3)',
  whitenAdvantages: { help: "PPO: advantages to mean 0, std 1 over the step's tokens", onOff: true },
  ...ROLLOUT_FLAGS,
  rolloutBatchSize: 'sequences decoded together',
  toolCallBonus: 'verl recipe: +0.1 per tool call for wrong answers, capped at -0.6',
  filterVoidTurns: 'SimpleTIR: leave trajectories with a void turn out of the loss',
  checkpointEvery: 'resumable checkpoint every N steps',
  evalEvery: 'held-out evaluation every N steps (0: never)',
  evalDataset: { help: "held-out problems (default: the dataset's test split)", arg: 'ref' },
  evalLimit: 'held-out problems per evaluation',
  evalLevels: 'levels to evaluate on',
  seed: 'seed for data order and sampling',
  runId: { help: 'name of the run (default: generated)', arg: 'id' },
  resume: 'continue --run-id from its latest checkpoint',
} satisfies Flags<typeof RlOptionsSchema>;

export function rlCommand(common: (cmd: Command) => Command): Command {
  const command = common(new Command('rl')).description(
    'RL with the interpreter in the loop (GRPO/DAPO, or PPO with a critic); outcome reward +1/-1; interpreter tokens masked from every loss',
  );
  return addSchemaFlags(command, RlOptionsSchema, RL_FLAGS).action(async (opts: Opts) => {
    const options = parseSchemaFlags(RlOptionsSchema, opts, RL_FLAGS, { home: opts.home });
    const steps = options.steps;
    const bar = progressBar(opts, 'rl', 'steps');
    const log = (line: string) => !opts.json && !process.stderr.isTTY && process.stderr.write(`${line}\n`);
    const stop = new AbortController();
    for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => stop.abort());
    const { runRl } = await import('../../stages/rl.js');
    const summary = await runRl(options, {
      onStep: (m) => {
        bar.update(m.step, steps);
        log(stepLine(m));
      },
      onEval: (p) => log(evalLine(p)),
      signal: stop.signal,
    });
    bar.stop();
    if (summary.stopped) process.exitCode = 130;
    emit(opts, summary, () => {
      if (summary.stopped)
        return `run ${summary.runId} stopped at step ${summary.steps}; continue with: retool rl ... --run-id ${summary.runId} --resume`;
      const curve = table(
        summary.evals.map((p) => ({
          step: p.step,
          accuracy: pct(p.accuracy),
          ...Object.fromEntries(levelsOf(p).map(([l, a]) => [`L${l}`, pct(a)])),
          length: p.responseLength.toFixed(1),
          code: pct(p.codeRatio),
        })),
        ['step', 'accuracy', ...(summary.evals[0] ? levelsOf(summary.evals[0]).map(([l]) => `L${l}`) : []), 'length', 'code'],
      );
      return `run ${summary.runId}: ${summary.algo}, tools ${summary.tools ? 'on' : 'off'}, ${summary.steps} steps; policy in ${summary.out}\n\nheld-out evaluation:\n${curve}`;
    });
  });
}
