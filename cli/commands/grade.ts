import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { z } from 'zod';
import { BadInputError } from '../../domain/errors.js';
import { gradeVerdict } from '../../domain/grading.js';
import { emit, type CommonOptions } from '../output.js';

const BatchLineSchema = z.object({ pred: z.string(), gold: z.union([z.string(), z.number()]).transform(String) });

export function gradeCommand(common: (cmd: Command) => Command): Command {
  return common(new Command('grade'))
    .description(
      'grade an answer (or a whole response with \\boxed{}) against the ground truth; without --pred/--gold, grade JSONL {"pred","gold"} lines from stdin',
    )
    .option('--pred <text>', 'predicted answer or model response')
    .option('--gold <text>', 'ground-truth answer')
    .action(async (opts: CommonOptions & { pred?: string; gold?: string }) => {
      if (opts.pred !== undefined || opts.gold !== undefined) {
        if (opts.pred === undefined || opts.gold === undefined)
          throw new BadInputError('grade needs both --pred and --gold (or JSONL on stdin)');
        const verdict = gradeVerdict(opts.pred, opts.gold);
        emit(
          opts,
          verdict,
          () => `${verdict.correct ? 'correct' : 'incorrect'}: ${verdict.normalizedPred ?? '(no answer)'} vs ${verdict.normalizedGold}`,
        );
        return;
      }
      const lines = readFileSync(0, 'utf8').split('\n');
      let correct = 0;
      let total = 0;
      lines.forEach((line, i) => {
        if (line.trim() === '') return;
        let parsed: z.infer<typeof BatchLineSchema>;
        try {
          parsed = BatchLineSchema.parse(JSON.parse(line));
        } catch (err) {
          throw new BadInputError(
            `stdin line ${i + 1}: expected {"pred": string, "gold": string}: ${(err as Error).message.split('\n')[0]}`,
          );
        }
        const verdict = gradeVerdict(parsed.pred, parsed.gold);
        total += 1;
        if (verdict.correct) correct += 1;
        process.stdout.write(`${JSON.stringify(verdict)}\n`);
      });
      process.stderr.write(`${correct}/${total} correct\n`);
    });
}
