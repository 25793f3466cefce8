import { Command } from 'commander';
import { benchData } from '../../bench/data.js';
import { emit, parseNumber, type CommonOptions } from '../output.js';

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
  return bench;
}
