// `retool rl`: stage 3 alone from the command line, with a progress bar (or, when stderr is not a
// terminal, one line per step) and the evaluation curve at the end.
import { Command, Option } from 'commander';
import type { RlEvalPoint } from '../../stages/rl.js';
import type { RlStepMetrics } from '../../engine/rl/trainer.js';
import { emit, parseList, parseNumber, pct, progressBar, table, type CommonOptions } from '../output.js';

type Opts = CommonOptions & Record<string, unknown>;

function stepLine(m: RlStepMetrics): string {
  const s = m.seconds;
  return `step ${m.step}: reward ${m.rewardMean.toFixed(3)}, accuracy ${pct(m.accuracy)}, length ${m.responseLength.toFixed(1)}, code ${pct(m.codeRatio)}, tool calls ${m.toolCalls.toFixed(2)}, kl ${m.kl?.toExponential(2) ?? '-'}, entropy ${m.entropy?.toFixed(3) ?? '-'}, clip ${pct(m.clipFrac)}, kept ${pct(m.kept)} (${s.rollout.toFixed(1)} s rollout, ${s.scoring.toFixed(1)} s scoring, ${s.update.toFixed(1)} s update)`;
}

/** Accuracy per difficulty level, when the problems have levels. */
const levelsOf = (p: RlEvalPoint) => Object.entries(p.byLevel).filter(([l]) => /^\d+$/.test(l));

function evalLine(p: RlEvalPoint): string {
  const levels = levelsOf(p).map(([l, a]) => `L${l} ${pct(a)}`).join(', ');
  return `eval at step ${p.step}: accuracy ${pct(p.accuracy)}${levels ? ` (${levels})` : ''}, length ${p.responseLength.toFixed(1)}, code ${pct(p.codeRatio)}`;
}

export function rlCommand(common: (cmd: Command) => Command): Command {
  return common(new Command('rl'))
    .description('RL with the interpreter in the loop (PPO with a critic, or GRPO/DAPO); outcome reward +1/-1; interpreter tokens masked from every loss')
    .requiredOption('--model <dir>', 'the SFT model to start from')
    .requiredOption('--dataset <ref>', 'problems: NAME[@V][:split] (default: the train split)')
    .requiredOption('--out <dir>', 'where to write the final policy')
    .option('--levels <list>', 'train on these difficulty levels only', (t: string) => parseList(t).map(parseNumber('--levels')))
    .addOption(new Option('--algo <algo>', 'PPO (the paper) or GRPO (the verl recipe, DAPO clipping)').choices(['ppo', 'grpo']).default('ppo'))
    .addOption(new Option('--tools <on|off>', 'off: the text-only arm').choices(['on', 'off']).default('on'))
    .option('--steps <n>', 'RL steps', parseNumber('--steps'), 60)
    .option('--prompts <n>', 'problems per step', parseNumber('--prompts'), 16)
    .option('--samples <n>', 'samples per problem (GRPO group size)', parseNumber('--samples'), 8)
    .option('--lr <x>', 'policy learning rate', parseNumber('--lr'), 3e-5)
    .option('--critic-lr <x>', 'critic learning rate (PPO)', parseNumber('--critic-lr'), 1e-3)
    .option('--epochs <n>', 'passes over each step\'s rollouts', parseNumber('--epochs'), 2)
    .option('--mini-batch <n>', 'sequences per optimizer step', parseNumber('--mini-batch'), 32)
    .option('--temperature <t>', 'sampling temperature', parseNumber('--temperature'), 1)
    .option('--kl-coef <x>', 'KL to the starting model (paper: 0)', parseNumber('--kl-coef'), 0)
    .option('--entropy-coef <x>', 'entropy bonus', parseNumber('--entropy-coef'), 0)
    .option('--max-tool-calls <n>', 'code executions per response at most', parseNumber('--max-tool-calls'), 4)
    .option('--max-tokens <n>', 'sampled tokens per response at most', parseNumber('--max-tokens'), 192)
    .option('--tool-call-bonus', 'verl recipe: +0.1 per tool call for wrong answers, capped at -0.6', false)
    .option('--filter-void-turns', 'SimpleTIR: leave trajectories with a void turn out of the loss', false)
    .option('--checkpoint-every <n>', 'resumable checkpoint every N steps', parseNumber('--checkpoint-every'), 10)
    .option('--eval-every <n>', 'held-out evaluation every N steps (0: never)', parseNumber('--eval-every'), 10)
    .option('--eval-dataset <ref>', 'held-out problems (default: the dataset\'s test split)')
    .option('--eval-limit <n>', 'held-out problems per evaluation', parseNumber('--eval-limit'), 200)
    .option('--eval-levels <list>', 'levels to evaluate on', (t: string) => parseList(t).map(parseNumber('--eval-levels')))
    .option('--seed <n>', 'seed for data order and sampling', parseNumber('--seed'), 0)
    .option('--run-id <id>', 'name of the run (default: generated)')
    .option('--resume', 'continue --run-id from its latest checkpoint', false)
    .action(async (opts: Opts) => {
      const steps = opts.steps as number;
      const bar = progressBar(opts, 'rl', 'steps');
      const log = (line: string) => !opts.json && !process.stderr.isTTY && process.stderr.write(`${line}\n`);
      const stop = new AbortController();
      for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => stop.abort());
      const { runRl } = await import('../../stages/rl.js');
      const summary = await runRl(
        {
          model: opts.model as string,
          dataset: opts.dataset as string,
          levels: opts.levels as number[] | undefined,
          out: opts.out as string,
          algo: opts.algo as 'ppo',
          tools: opts.tools === 'on',
          steps,
          promptsPerStep: opts.prompts as number,
          samplesPerPrompt: opts.samples as number,
          lr: opts.lr as number,
          criticLr: opts.criticLr as number,
          epochs: opts.epochs as number,
          miniBatchSize: opts.miniBatch as number,
          temperature: opts.temperature as number,
          klCoef: opts.klCoef as number,
          entropyCoef: opts.entropyCoef as number,
          maxToolCalls: opts.maxToolCalls as number,
          maxResponseTokens: opts.maxTokens as number,
          toolCallBonus: Boolean(opts.toolCallBonus),
          filterVoidTurns: Boolean(opts.filterVoidTurns),
          checkpointEvery: opts.checkpointEvery as number,
          evalEvery: opts.evalEvery as number,
          evalDataset: opts.evalDataset as string | undefined,
          evalLimit: opts.evalLimit as number,
          evalLevels: opts.evalLevels as number[] | undefined,
          seed: opts.seed as number,
          runId: opts.runId as string | undefined,
          resume: Boolean(opts.resume),
          home: opts.home,
        },
        {
          onStep: (m) => {
            bar.update(m.step, steps);
            log(stepLine(m));
          },
          onEval: (p) => log(evalLine(p)),
          signal: stop.signal,
        },
      );
      bar.stop();
      if (summary.stopped) process.exitCode = 130;
      emit(opts, summary, () => {
        if (summary.stopped) return `run ${summary.runId} stopped at step ${summary.steps}; continue with: retool rl ... --run-id ${summary.runId} --resume`;
        const curve = table(
          summary.evals.map((p) => ({ step: p.step, accuracy: pct(p.accuracy), ...Object.fromEntries(levelsOf(p).map(([l, a]) => [`L${l}`, pct(a)])), length: p.responseLength.toFixed(1), code: pct(p.codeRatio) })),
          ['step', 'accuracy', ...(summary.evals[0] ? levelsOf(summary.evals[0]).map(([l]) => `L${l}`) : []), 'length', 'code'],
        );
        return `run ${summary.runId}: ${summary.algo}, tools ${summary.tools ? 'on' : 'off'}, ${summary.steps} steps; policy in ${summary.out}\n\nheld-out evaluation:\n${curve}`;
      });
    });
}
