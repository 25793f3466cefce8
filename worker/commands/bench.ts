import { Command } from 'commander';
import { benchData } from '../../bench/data.js';
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
  return bench;
}
