// What `retool data import` and the pipeline's import take. Zod only, so the CLI can build its flags
// from it without loading DuckDB.
import { z } from 'zod';
import { DatasetNameSchema, SplitSchema } from './schemas.js';

export const ImportFormatSchema = z.enum(['jsonl', 'json', 'csv', 'parquet']);
export type ImportFormat = z.infer<typeof ImportFormatSchema>;

export const ImportOptionsSchema = z.object({
  file: z.string().min(1),
  name: DatasetNameSchema,
  problemField: z.string().min(1).default('problem'),
  answerField: z.string().min(1).default('answer'),
  /** Defaults to a column named `id` when there is one, else a hash of problem and answer. */
  idField: z.string().min(1).optional(),
  /** Defaults to a column named `split` when there is one. */
  splitField: z.string().min(1).optional(),
  /** Puts every row in this split (e.g. `test` for a benchmark like AIME). */
  split: SplitSchema.optional(),
  format: ImportFormatSchema.optional(),
  newVersion: z.boolean().default(false),
  /** Set by workflows so that a retried activity finds what its first attempt committed. */
  requestId: z.string().optional(),
});
export type ImportOptions = z.input<typeof ImportOptionsSchema>;
