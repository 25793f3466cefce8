import { Command } from 'commander';
import { BadInputError } from '../../datasets/errors.js';
import { benchData } from '../../bench/data.js';
import { benchModel } from '../../bench/model.js';
import { benchSandbox } from '../../bench/sandbox.js';
import { emit, parseList, parseNumber, type CommonOptions } from '../output.js';

export function benchCommand(common: (cmd: Command) => Command): Command {
  const bench = new Command('bench').description('benchmarks that print JSON numbers (not pass/fail)');
  common(bench.command('data'))
    .description('rows/s to synthesise, import JSONL and export Parquet/JSONL')
    .option('--rows <n>', 'problems per run', parseNumber('--rows'), 1_000_000)
    .option('--repeats <n>', 'runs; the report gives medians', parseNumber('--repeats'), 3)
    .action(async (opts: CommonOptions & { rows: number; repeats: number }) => {
      const result = await benchData({ rows: opts.rows, repeats: opts.repeats, onProgress: (w) => !opts.json && process.stderr.write(`${w}\n`) });
      emit(opts, result, () => JSON.stringify(result, null, 2));
    });
  common(bench.command('sandbox'))
    .description('naive python -c spawns against the warm sandbox pool: runs/s, p50/p99')
    .option('--runs <n>', 'runs per configuration (compute runs use half)', parseNumber('--runs'), 400)
    .option('--preload <modules>', 'modules each warm interpreter imports at start (default numpy,numpy.random; sympy is imported on first use)', parseList)
    .action(async (opts: CommonOptions & { runs: number; preload?: string[] }) => {
      const result = await benchSandbox({ runs: opts.runs, preload: opts.preload, onProgress: (w) => !opts.json && process.stderr.write(`${w}\n`) });
      emit(opts, result, () => JSON.stringify(result, null, 2));
    });
  common(bench.command('model'))
    .description('matmul ceiling, training tokens/s and MFU, cached vs uncached decode at context 256, peak memory, PyTorch peer')
    .option('--presets <list>', 'comma-separated presets', parseList, ['tiny', 'small'])
    .option('--steps <n>', 'timed training steps per preset', parseNumber('--steps'), 10)
    .option('--no-torch', 'skip the PyTorch peer')
    .action(async (opts: CommonOptions & { presets: string[]; steps: number; torch: boolean }) => {
      const presets = opts.presets.map((p) => {
        if (p !== 'tiny' && p !== 'small') throw new BadInputError(`--presets: unknown preset "${p}" (tiny, small)`);
        return p;
      });
      const result = await benchModel({ presets, steps: opts.steps, torch: opts.torch, onProgress: (w) => !opts.json && process.stderr.write(`${w}\n`) });
      emit(opts, result, () => JSON.stringify(result, null, 2));
    });
  return bench;
}
