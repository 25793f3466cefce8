// The stages run alone from the command line: cold-start synthesis, SFT and evaluation, each on
// data in the store.
import { Command } from 'commander';
import { ColdStartOptionsSchema, EvalOptionsSchema, SftOptionsSchema } from '../../stages/options.js';
import type { EvalMetrics } from '../../engine/eval/metrics.js';
import { emit, pct, progressBar, table, type CommonOptions, runTraceVerification } from '../output.js';
import { addSchemaFlags, parseSchemaFlags, ROLLOUT_FLAGS, type Flags } from '../schema-flags.js';

type Opts = CommonOptions & Record<string, unknown>;

function metricsText(m: EvalMetrics): string {
  const lines = [
    `accuracy: avg@${m.k} ${pct(m.avgAtK)}, pass@${m.k} ${pct(m.passAtK)} on ${m.problems} problems (${m.samples} samples)`,
    `response length ${m.responseLength.toFixed(1)} tokens, code ratio ${pct(m.codeRatio)}, code lines ${m.codeLines?.toFixed(2) ?? '-'}, ` +
      `last-block pass rate ${pct(m.codePassRate.all)} (correct ${pct(m.codePassRate.correct)}, incorrect ${pct(m.codePassRate.incorrect)}), ` +
      `code invoked at ${pct(m.codeInvocationPosition)} of the response, self-correction ${pct(m.selfCorrectionRate)}`,
    '',
    table(
      Object.entries(m.byLevel).map(([level, a]) => ({ level, problems: a.problems, 'avg@k': pct(a.avgAtK), 'pass@k': pct(a.passAtK) })),
      ['level', 'problems', 'avg@k', 'pass@k'],
    ),
    '',
    table(
      Object.entries(m.byFamily).map(([family, a]) => ({ family, problems: a.problems, 'avg@k': pct(a.avgAtK), 'pass@k': pct(a.passAtK) })),
      ['family', 'problems', 'avg@k', 'pass@k'],
    ),
  ];
  return lines.join('\n');
}

/** A string flag's value, when one was given. */
const stringOption = (value: unknown) => (typeof value === 'string' ? value : undefined);

/** Each command's flags: fields of its stage's schema, which holds their types and defaults. */
const SYNTH_FLAGS = {
  dataset: { help: 'problems: NAME[@V][:split] (default: the train split)', arg: 'ref', required: true },
  out: { help: 'name of the trace dataset to write', arg: 'name', required: true },
  teacher: 'who writes the traces',
  mode: 'code-integrated traces, or text-only for the baseline arm',
  style:
    "the built-in teacher's writing: terse (code first, for the built-in models), explained (a plan in words, for pretrained ones) or paper (the paper's mix: by hand, checked, words then code, code first, searches that time out)",
  limit: 'first N problems only',
  seed: "the teacher's seed (which traces get which defect)",
  concurrency: 'traces in flight at once',
  newVersion: 'add a version when the name exists',
} satisfies Flags<typeof ColdStartOptionsSchema>;

const SFT_FLAGS = {
  traces: { name: 'dataset', help: 'a trace dataset (retool synth --out)', arg: 'ref', required: true },
  model: { help: 'model to start from', arg: 'dir', required: true },
  out: { help: 'where to write the fine-tuned model', arg: 'dir', required: true },
  steps: 'optimizer steps',
  batchSize: 'sequences per step',
  gradAccum: 'micro-batches of --batch-size per optimizer step (gradient accumulation)',
  lengthBucketSteps: 'draw the examples of N steps together and batch them by length (less padding); 1: as drawn',
  lr: 'peak learning rate',
  minLr: 'learning rate at the end of the decay',
  warmupSteps: 'linear warm-up steps',
  schedule: 'decay after warm-up',
  weightDecay: 'AdamW weight decay',
  checkpointEvery: 'resumable checkpoint every N steps',
  seed: 'data order seed',
  loraRank: 'train a LoRA adapter of this rank (saved for peft) instead of every weight; 0: full fine-tuning',
  loraAlpha: 'LoRA scale numerator (default 32)',
  loraDropout: "dropout on the adapter's input",
  loraTargets: 'layers the adapter wraps (default all seven)',
  contextTokens: "leave out traces longer than this many tokens (default: the model's context)",
  runId: { help: 'name of the run (default: generated)', arg: 'id' },
  resume: 'continue --run-id from its latest checkpoint',
} satisfies Flags<typeof SftOptionsSchema>;

const EVAL_FLAGS = {
  model: { help: 'model directory', arg: 'dir', required: true },
  dataset: { help: 'problems: NAME[@V][:split] (default: the test split)', arg: 'ref', required: true },
  samples: 'samples per problem',
  temperature: '0 is greedy',
  tools: { help: 'run code in the sandbox', onOff: true },
  ...ROLLOUT_FLAGS,
  levels: 'difficulty levels to keep',
  families: 'families to keep',
  limit: 'first N problems only',
  batchSize: 'sequences decoded together',
  seed: 'sampling seed',
  name: 'store the samples as this evaluation dataset (default: the run id)',
} satisfies Flags<typeof EvalOptionsSchema>;

export function synthCommand(common: (cmd: Command) => Command): Command {
  const command = common(new Command('synth')).description(
    'cold-start traces for a problem dataset, verified in two stages (format, then answer with the code re-executed)',
  );
  return addSchemaFlags(command, ColdStartOptionsSchema, SYNTH_FLAGS)
    .option('--openai-base-url <url>', 'chat-completions endpoint base (default OPENAI_BASE_URL)')
    .option('--openai-model <name>', 'teacher model (default OPENAI_MODEL)')
    .action(async (opts: Opts) => {
      const openai = { baseUrl: stringOption(opts.openaiBaseUrl), model: stringOption(opts.openaiModel) };
      const options = parseSchemaFlags(ColdStartOptionsSchema, opts, SYNTH_FLAGS, opts.teacher === 'openai' ? { openai } : {});
      // The stages, the store and the sandbox load here, not when the CLI starts.
      const { briefStore } = await import('../../datasets/store.js');
      const { coldStart } = await import('../../stages/coldstart.js');
      await runTraceVerification(
        opts,
        'synth',
        (sandbox, onProgress) => coldStart(briefStore(opts.home), sandbox, options, onProgress),
        (s) =>
          `${s.dataset}: kept ${s.kept} of ${s.problems} ${s.mode} traces from ${s.source} (teacher ${s.teacher}, ${s.seconds.toFixed(1)} s)`,
      );
    });
}

export function sftCommand(common: (cmd: Command) => Command): Command {
  const command = common(new Command('sft')).description(
    "supervised fine-tuning on verified traces; loss on the model's tokens only (prompt and interpreter masked)",
  );
  return addSchemaFlags(command, SftOptionsSchema, SFT_FLAGS).action(async (opts: Opts) => {
    const options = parseSchemaFlags(SftOptionsSchema, opts, SFT_FLAGS, { home: opts.home });
    const bar = progressBar(opts, 'sft', 'steps');
    const steps = options.steps;
    // Ctrl-C (or a TERM from a supervisor) stops at the next step boundary with a checkpoint.
    const stop = new AbortController();
    for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => stop.abort());
    const { runSft } = await import('../../stages/sft.js');
    const summary = await runSft(options, { onStep: (m) => bar.update(m.step, steps), signal: stop.signal });
    bar.stop();
    if (summary.stopped) process.exitCode = 130;
    emit(opts, summary, () =>
      summary.stopped
        ? `run ${summary.runId} stopped at step ${summary.steps}; continue with: retool sft ... --run-id ${summary.runId} --resume`
        : `run ${summary.runId}: ${summary.steps} steps on ${summary.examples} traces, loss ${summary.firstLoss?.toFixed(3)} -> ${summary.finalLoss?.toFixed(3)}, ${Math.round(summary.tokensPerSecond)} tokens/s; model in ${summary.out}`,
    );
  });
}

export function evalCommand(common: (cmd: Command) => Command): Command {
  const command = common(new Command('eval')).description(
    "multi-turn rollouts on a problem dataset: accuracy (avg@k, pass@k) and the paper's behaviour metrics",
  );
  return addSchemaFlags(command, EvalOptionsSchema, EVAL_FLAGS).action(async (opts: Opts) => {
    const options = parseSchemaFlags(EvalOptionsSchema, opts, EVAL_FLAGS, { home: opts.home });
    const { runEval } = await import('../../stages/eval.js');
    const bar = progressBar(opts, 'eval', 'samples');
    const summary = await runEval(options, bar.update);
    bar.stop();
    emit(
      opts,
      summary,
      () =>
        `${summary.evaluation} (${summary.dataset}, tools ${summary.tools ? 'on' : 'off'}):\n${metricsText(summary.metrics)}\n\nsamples: retool data show ${summary.evaluation}`,
    );
  });
}
