import { z } from 'zod';

export const SplitSchema = z.enum(['train', 'test']);
export type Split = z.infer<typeof SplitSchema>;

/** One problem row as stored, exported and shown. `family`/`level` are set for synthetic data. */
export const ProblemRowSchema = z.object({
  id: z.string().min(1),
  problem: z.string().min(1),
  answer: z.string().min(1),
  family: z.string().nullable(),
  level: z.number().int().nullable(),
  split: SplitSchema.nullable(),
  // Fields of the source file that have no column of their own.
  extra: z.unknown(),
});
export type ProblemRow = z.infer<typeof ProblemRowSchema>;
