import { availableParallelism } from 'node:os';
import { Command, Option } from 'commander';
import { BadInputError } from '../../domain/errors.js';
import { emit, parseList, parseNumber, type CommonOptions } from '../output.js';

// Each benchmark loads its module (tfjs, the sandbox, the store) in its action.

export function benchCommand(common: (cmd: Command) => Command): Command {
  const bench = new Command('bench').description('benchmarks that print JSON numbers (not pass/fail)');
  common(bench.command('data'))
    .description('rows/s to synthesise, import JSONL and export Parquet/JSONL')
    .option('--rows <n>', 'problems per run', parseNumber('--rows'), 1_000_000)
    .option('--repeats <n>', 'runs; the report gives medians', parseNumber('--repeats'), 3)
    .action(async (opts: CommonOptions & { rows: number; repeats: number }) => {
      const { benchData } = await import('../../bench/data.js');
      const result = await benchData({
        rows: opts.rows,
        repeats: opts.repeats,
        onProgress: (w) => !opts.json && process.stderr.write(`${w}\n`),
      });
      emit(opts, result, () => JSON.stringify(result, null, 2));
    });
  common(bench.command('sandbox'))
    .description('naive python -c spawns against the warm sandbox pool: runs/s, p50/p99')
    .option('--runs <n>', 'runs per configuration (compute runs use half)', parseNumber('--runs'), 400)
    .option(
      '--preload <modules>',
      'modules each warm interpreter imports at start (default numpy,numpy.random; sympy is imported on first use)',
      parseList,
    )
    .option('--modes <list>', 'isolation modes to measure (default: every one this machine has: bubblewrap, unshare)', parseList)
    .action(async (opts: CommonOptions & { runs: number; preload?: string[]; modes?: string[] }) => {
      const modes = opts.modes?.map((m) => {
        if (m !== 'bubblewrap' && m !== 'unshare') throw new BadInputError(`--modes: unknown isolation mode "${m}" (bubblewrap, unshare)`);
        return m;
      });
      const { benchSandbox } = await import('../../bench/sandbox.js');
      const result = await benchSandbox({
        runs: opts.runs,
        preload: opts.preload,
        modes,
        onProgress: (w) => !opts.json && process.stderr.write(`${w}\n`),
      });
      emit(opts, result, () => JSON.stringify(result, null, 2));
    });
  common(bench.command('model'))
    .description(
      'full and LoRA training tokens/s and MFU, prefill and cached vs uncached decode at context 256, peak memory: per backend (each in a process of its own) against a PyTorch peer at 1 and all threads',
    )
    .option(
      '--presets <list>',
      'comma-separated built-in models: tiny, small, smollm2-135m (random weights of that size); default tiny,small without --model',
      parseList,
    )
    .option('--model <dir>', 'a model directory (e.g. from `retool model fetch`): its own weights, and the same folder in PyTorch')
    .option('--steps <n>', 'timed training steps per model', parseNumber('--steps'), 10)
    .option('--backend <list>', 'comma-separated backends (default: every one that loads here, e.g. node,wasm)', parseList)
    .option('--native-threads <list>', 'thread counts for the native backend (default: 1 and all cores)', (v: string) =>
      parseList(v).map(parseNumber('--native-threads')),
    )
    .option('--no-torch', 'skip the PyTorch peer')
    .addOption(new Option('--in-process', 'measure this process only, on its backend').hideHelp())
    .action(
      async (
        opts: CommonOptions & {
          presets?: string[];
          model?: string;
          steps: number;
          backend?: string[];
          nativeThreads?: number[];
          torch: boolean;
          inProcess?: boolean;
        },
      ) => {
        const { BENCH_MODELS, benchModel, benchSubject } = await import('../../bench/model.js');
        const presets = opts.presets ?? (opts.model ? [] : ['tiny', 'small']);
        for (const p of presets)
          if (!(p in BENCH_MODELS)) throw new BadInputError(`--presets: unknown model "${p}" (${Object.keys(BENCH_MODELS).join(', ')})`);
        const models = [...presets, ...(opts.model ? [opts.model] : [])].map(benchSubject);
        const onProgress = (w: string) => !opts.json && process.stderr.write(`${w}\n`);
        if (opts.inProcess) {
          const result = await benchModel({ models, steps: opts.steps, onProgress });
          return emit(opts, result, () => JSON.stringify(result, null, 2));
        }
        const { parseBackendName } = await import('../../engine/tensor/backend-names.js');
        const { availableBackends } = await import('../../engine/tensor/backend.js');
        const backends = opts.backend ? opts.backend.map((b) => parseBackendName(b, '--backend')) : availableBackends();
        const { benchModelBackends } = await import('../../bench/model-backends.js');
        const result = await benchModelBackends({
          models,
          steps: opts.steps,
          backends,
          nativeThreads: opts.nativeThreads ?? [...new Set([1, availableParallelism()])],
          torch: opts.torch,
          onProgress,
        });
        emit(opts, result, () => JSON.stringify(result.summary, null, 2));
      },
    );
  common(bench.command('serve'))
    .description("retool serve's throughput: N chat requests one after another, then all at once; completion tokens/s and their ratio")
    .requiredOption('--model <dir>', 'model directory (with a chat template)')
    .option('--clients <n>', 'requests per round', parseNumber('--clients'), 8)
    .option('--max-tokens <n>', 'reply length', parseNumber('--max-tokens'), 32)
    .option('--rounds <n>', 'rounds (medians are reported)', parseNumber('--rounds'), 3)
    .action(async (opts: CommonOptions & { model: string; clients: number; maxTokens: number; rounds: number }) => {
      const { benchServe } = await import('../../bench/serve.js');
      const result = await benchServe({ ...opts, onProgress: (w) => !opts.json && process.stderr.write(`${w}\n`) });
      emit(opts, result, () => JSON.stringify(result, null, 2));
    });
  common(bench.command('stages'))
    .description(
      'SFT tokens/s, and evaluation problems/s with tools on: tool calls overlapped with decoding against a batch that waits for each call',
    )
    .option('--preset <name>', 'model size (tiny, small)', 'tiny')
    .option(
      '--sft-steps <n>',
      'SFT steps (the model must learn to write code before its tool use can be timed)',
      parseNumber('--sft-steps'),
      200,
    )
    .option('--problems <n>', 'test problems per evaluation run', parseNumber('--problems'), 128)
    .option('--repeats <n>', 'evaluation runs per mode; the report gives medians', parseNumber('--repeats'), 3)
    .action(async (opts: CommonOptions & { preset: string; sftSteps: number; problems: number; repeats: number }) => {
      if (opts.preset !== 'tiny' && opts.preset !== 'small')
        throw new BadInputError(`--preset: unknown preset "${opts.preset}" (tiny, small)`);
      const { benchStages } = await import('../../bench/stages.js');
      const result = await benchStages({
        preset: opts.preset,
        sftSteps: opts.sftSteps,
        problems: opts.problems,
        repeats: opts.repeats,
        onProgress: (w) => !opts.json && process.stderr.write(`${w}\n`),
      });
      emit(opts, result, () => JSON.stringify(result, null, 2));
    });
  common(bench.command('rl'))
    .description(
      'RL step cost: rollout tokens/s with tools on (overlapped vs waiting), sandbox-wait share, PPO step time split into rollout, scoring and update',
    )
    .option('--preset <name>', 'model size for the built-in fixture (tiny, small)', 'tiny')
    .option('--sft-steps <n>', 'SFT steps for the built-in fixture', parseNumber('--sft-steps'), 200)
    .option('--model <dir>', 'an existing SFT model instead of the fixture (with --dataset)')
    .option('--dataset <ref>', 'problems for --model, in the store at --home')
    .option('--prompts <n>', 'problems per step', parseNumber('--prompts'), 16)
    .option('--samples <n>', 'samples per problem', parseNumber('--samples'), 8)
    .option('--steps <n>', 'timed PPO steps', parseNumber('--steps'), 3)
    .option('--repeats <n>', 'rollout runs per mode; the report gives medians', parseNumber('--repeats'), 3)
    .action(
      async (
        opts: CommonOptions & {
          preset: string;
          sftSteps: number;
          model?: string;
          dataset?: string;
          prompts: number;
          samples: number;
          steps: number;
          repeats: number;
        },
      ) => {
        if (opts.preset !== 'tiny' && opts.preset !== 'small')
          throw new BadInputError(`--preset: unknown preset "${opts.preset}" (tiny, small)`);
        if (Boolean(opts.model) !== Boolean(opts.dataset))
          throw new BadInputError('--model and --dataset go together: the model and the problems it trains on');
        const { benchRl } = await import('../../bench/rl.js');
        const result = await benchRl({
          preset: opts.preset,
          sftSteps: opts.sftSteps,
          model: opts.model,
          dataset: opts.dataset,
          home: opts.home,
          prompts: opts.prompts,
          samples: opts.samples,
          steps: opts.steps,
          repeats: opts.repeats,
          onProgress: (w) => !opts.json && process.stderr.write(`${w}\n`),
        });
        emit(opts, result, () => JSON.stringify(result, null, 2));
      },
    );
  common(bench.command('worker'))
    .description(
      "a training worker seen from outside: `retool status` latency while SFT trains (against the run paused), SFT tokens/s in a stage process against the CLI process (3 interleaved pairs), the start of a stage process, and the time from SIGKILL of the worker running SFT, then RL, to the other worker's first step",
    )
    .option('--preset <name>', 'model size (tiny, small)', 'small')
    .option('--sft-steps <n>', 'SFT steps of the run (checkpoints every quarter)', parseNumber('--sft-steps'), 40)
    .option('--queries <n>', 'status queries per measurement', parseNumber('--queries'), 30)
    .action(async (opts: CommonOptions & { preset: string; sftSteps: number; queries: number }) => {
      if (opts.preset !== 'tiny' && opts.preset !== 'small')
        throw new BadInputError(`--preset: unknown preset "${opts.preset}" (tiny, small)`);
      const { benchWorker } = await import('../../bench/worker.js');
      const result = await benchWorker({
        preset: opts.preset,
        sftSteps: opts.sftSteps,
        queries: opts.queries,
        onProgress: (w) => !opts.json && process.stderr.write(`${w}\n`),
      });
      emit(opts, result, () => JSON.stringify(result, null, 2));
    });
  common(bench.command('cli'))
    .description(
      'start time of `retool` for commands that touch no model (help, grade, data list/show, status, schedule list): dist/ against the sources through tsx',
    )
    .option('--runs <n>', 'runs per command and mode; the report gives medians', parseNumber('--runs'), 5)
    .action(async (opts: CommonOptions & { runs: number }) => {
      const { benchCli } = await import('../../bench/cli-start.js');
      const result = await benchCli({ runs: opts.runs, onProgress: (w) => !opts.json && process.stderr.write(`${w}\n`) });
      emit(opts, result, () => JSON.stringify(result, null, 2));
    });
  return bench;
}
