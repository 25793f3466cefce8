// The stages run alone from the command line: cold-start synthesis, SFT and evaluation, each on
// data in the store.
import { Command, Option } from 'commander';
import type { EvalMetrics } from '../../engine/eval/metrics.js';
import { emit, parseList, parseNumber, pct, progressBar, table, type CommonOptions } from '../output.js';

type Opts = CommonOptions & Record<string, unknown>;

function metricsText(m: EvalMetrics): string {
  const lines = [
    `accuracy: avg@${m.k} ${pct(m.avgAtK)}, pass@${m.k} ${pct(m.passAtK)} on ${m.problems} problems (${m.samples} samples)`,
    `response length ${m.responseLength.toFixed(1)} tokens, code ratio ${pct(m.codeRatio)}, code lines ${m.codeLines?.toFixed(2) ?? '-'}, ` +
      `last-block pass rate ${pct(m.codePassRate.all)} (correct ${pct(m.codePassRate.correct)}, incorrect ${pct(m.codePassRate.incorrect)}), ` +
      `code invoked at ${pct(m.codeInvocationPosition)} of the response, self-correction ${pct(m.selfCorrectionRate)}`,
    '',
    table(Object.entries(m.byLevel).map(([level, a]) => ({ level, problems: a.problems, 'avg@k': pct(a.avgAtK), 'pass@k': pct(a.passAtK) })), ['level', 'problems', 'avg@k', 'pass@k']),
    '',
    table(Object.entries(m.byFamily).map(([family, a]) => ({ family, problems: a.problems, 'avg@k': pct(a.avgAtK), 'pass@k': pct(a.passAtK) })), ['family', 'problems', 'avg@k', 'pass@k']),
  ];
  return lines.join('\n');
}

export function synthCommand(common: (cmd: Command) => Command): Command {
  return common(new Command('synth'))
    .description('cold-start traces for a problem dataset, verified in two stages (format, then answer with the code re-executed)')
    .requiredOption('--dataset <ref>', 'problems: NAME[@V][:split] (default: the train split)')
    .requiredOption('--out <name>', 'name of the trace dataset to write')
    .addOption(new Option('--teacher <teacher>', 'who writes the traces').choices(['builtin', 'openai']).default('builtin'))
    .addOption(new Option('--mode <mode>', 'code-integrated traces, or text-only for the baseline arm').choices(['code', 'text']).default('code'))
    .option('--limit <n>', 'first N problems only', parseNumber('--limit'))
    .option('--seed <n>', 'the teacher\'s seed (which traces get which defect)', parseNumber('--seed'), 0)
    .option('--concurrency <n>', 'traces in flight at once', parseNumber('--concurrency'), 16)
    .option('--openai-base-url <url>', 'chat-completions endpoint base (default OPENAI_BASE_URL)')
    .option('--openai-model <name>', 'teacher model (default OPENAI_MODEL)')
    .option('--new-version', 'add a version when the name exists', false)
    .action(async (opts: Opts) => {
      // The stages, the store and the sandbox load here, not when the CLI starts.
      const { withStore } = await import('../../datasets/store.js');
      const { coldStart } = await import('../../stages/coldstart.js');
      const { Sandbox } = await import('../../engine/sandbox/index.js');
      const bar = progressBar(opts, 'synth', 'traces');
      const sandbox = new Sandbox();
      try {
        const summary = await withStore(opts.home, (store) =>
          coldStart(
            store,
            sandbox,
            {
              dataset: opts.dataset as string,
              out: opts.out as string,
              teacher: opts.teacher as 'builtin',
              mode: opts.mode as 'code',
              limit: opts.limit as number | undefined,
              seed: opts.seed as number,
              concurrency: opts.concurrency as number,
              newVersion: Boolean(opts.newVersion),
              openai: opts.teacher === 'openai' ? { ...(opts.openaiBaseUrl ? { baseUrl: opts.openaiBaseUrl as string } : {}), ...(opts.openaiModel ? { model: opts.openaiModel as string } : {}) } : undefined,
            },
            bar.update,
          ),
        );
        bar.stop();
        emit(opts, summary, () =>
          [
            `${summary.dataset}: kept ${summary.kept} of ${summary.problems} ${summary.mode} traces from ${summary.source} (teacher ${summary.teacher}, ${summary.seconds.toFixed(1)} s)`,
            table(Object.entries(summary.rejectedByReason).map(([reason, n]) => ({ reason, rejected: n })), ['reason', 'rejected']),
          ].join('\n'),
        );
      } finally {
        bar.stop();
        await sandbox.close();
      }
    });
}

export function sftCommand(common: (cmd: Command) => Command): Command {
  return common(new Command('sft'))
    .description('supervised fine-tuning on verified traces; loss on the model\'s tokens only (prompt and interpreter masked)')
    .requiredOption('--dataset <ref>', 'a trace dataset (retool synth --out)')
    .requiredOption('--model <dir>', 'model to start from')
    .requiredOption('--out <dir>', 'where to write the fine-tuned model')
    .option('--steps <n>', 'optimizer steps', parseNumber('--steps'), 400)
    .option('--batch-size <n>', 'sequences per step', parseNumber('--batch-size'), 32)
    .option('--lr <x>', 'peak learning rate', parseNumber('--lr'), 3e-3)
    .option('--warmup-steps <n>', 'linear warm-up steps', parseNumber('--warmup-steps'), 20)
    .addOption(new Option('--schedule <s>', 'decay after warm-up').choices(['cosine', 'linear', 'constant']).default('cosine'))
    .option('--checkpoint-every <n>', 'resumable checkpoint every N steps', parseNumber('--checkpoint-every'), 100)
    .option('--seed <n>', 'data order seed', parseNumber('--seed'), 0)
    .option('--run-id <id>', 'name of the run (default: generated)')
    .option('--resume', 'continue --run-id from its latest checkpoint', false)
    .action(async (opts: Opts) => {
      const bar = progressBar(opts, 'sft', 'steps');
      const steps = opts.steps as number;
      // Ctrl-C (or a TERM from a supervisor) stops at the next step boundary with a checkpoint.
      const stop = new AbortController();
      for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => stop.abort());
      const { runSft } = await import('../../stages/sft.js');
      const summary = await runSft(
        {
          traces: opts.dataset as string,
          model: opts.model as string,
          out: opts.out as string,
          steps,
          batchSize: opts.batchSize as number,
          lr: opts.lr as number,
          warmupSteps: opts.warmupSteps as number,
          schedule: opts.schedule as 'cosine',
          checkpointEvery: opts.checkpointEvery as number,
          seed: opts.seed as number,
          runId: opts.runId as string | undefined,
          resume: Boolean(opts.resume),
          home: opts.home,
        },
        { onStep: (m) => bar.update(m.step, steps), signal: stop.signal },
      );
      bar.stop();
      if (summary.stopped) process.exitCode = 130;
      emit(opts, summary, () => summary.stopped ? `run ${summary.runId} stopped at step ${summary.steps}; continue with: retool sft ... --run-id ${summary.runId} --resume` : `run ${summary.runId}: ${summary.steps} steps on ${summary.examples} traces, loss ${summary.firstLoss?.toFixed(3)} -> ${summary.finalLoss?.toFixed(3)}, ${Math.round(summary.tokensPerSecond)} tokens/s; model in ${summary.out}`);
    });
}

export function evalCommand(common: (cmd: Command) => Command): Command {
  return common(new Command('eval'))
    .description('multi-turn rollouts on a problem dataset: accuracy (avg@k, pass@k) and the paper\'s behaviour metrics')
    .requiredOption('--model <dir>', 'model directory')
    .requiredOption('--dataset <ref>', 'problems: NAME[@V][:split] (default: the test split)')
    .option('--samples <k>', 'samples per problem', parseNumber('--samples'), 1)
    .option('--temperature <t>', '0 is greedy', parseNumber('--temperature'), 0)
    .addOption(new Option('--tools <on|off>', 'run code in the sandbox').choices(['on', 'off']).default('on'))
    .option('--max-tool-calls <n>', 'code executions per response at most', parseNumber('--max-tool-calls'), 4)
    .option('--max-tokens <n>', 'sampled tokens per response at most', parseNumber('--max-tokens'), 192)
    .option('--levels <list>', 'difficulty levels to keep', (t: string) => parseList(t).map(parseNumber('--levels')))
    .option('--families <list>', 'families to keep', parseList)
    .option('--limit <n>', 'first N problems only', parseNumber('--limit'))
    .option('--batch-size <n>', 'sequences decoded together', parseNumber('--batch-size'), 32)
    .option('--seed <n>', 'sampling seed', parseNumber('--seed'), 0)
    .option('--name <name>', 'store the samples as this evaluation dataset (default: the run id)')
    .action(async (opts: Opts) => {
      const { runEval } = await import('../../stages/eval.js');
      const bar = progressBar(opts, 'eval', 'samples');
      const summary = await runEval(
        {
          model: opts.model as string,
          dataset: opts.dataset as string,
          samples: opts.samples as number,
          temperature: opts.temperature as number,
          tools: opts.tools === 'on',
          maxToolCalls: opts.maxToolCalls as number,
          maxResponseTokens: opts.maxTokens as number,
          levels: opts.levels as number[] | undefined,
          families: opts.families as string[] | undefined,
          limit: opts.limit as number | undefined,
          batchSize: opts.batchSize as number,
          seed: opts.seed as number,
          name: opts.name as string | undefined,
          home: opts.home,
        },
        bar.update,
      );
      bar.stop();
      emit(opts, summary, () => `${summary.evaluation} (${summary.dataset}, tools ${summary.tools ? 'on' : 'off'}):\n${metricsText(summary.metrics)}\n\nsamples: retool data show ${summary.evaluation}`);
    });
}
