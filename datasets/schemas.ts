import { z } from 'zod';
import { BadInputError } from '../domain/errors.js';
import { SplitSchema } from '../domain/problem.js';

export { ProblemRowSchema, SplitSchema, type ProblemRow, type Split } from '../domain/problem.js';

/** Dataset names are used in file names, search attributes and CLI refs (`name@version:split`). */
export const DatasetNameSchema = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/, 'dataset names use letters, digits, ".", "_" and "-", and start with a letter or digit');

export const DatasetKindSchema = z.enum(['problems', 'traces', 'rollouts', 'evaluations']);
export type DatasetKind = z.infer<typeof DatasetKindSchema>;

export const DatasetInfoSchema = z.object({
  id: z.number().int(),
  name: DatasetNameSchema,
  version: z.number().int().positive(),
  kind: DatasetKindSchema,
  source: z.string(),
  params: z.record(z.string(), z.unknown()),
  rowCount: z.number().int().nonnegative(),
  splits: z.record(z.string(), z.number().int()),
  parents: z.array(z.object({ name: z.string(), version: z.number().int(), relation: z.string() })),
  createdAt: z.string(),
});
export type DatasetInfo = z.infer<typeof DatasetInfoSchema>;

/** `name`, `name@3`, `name:test`, `name@3:train`. */
export const DatasetRefSchema = z.object({
  name: DatasetNameSchema,
  version: z.number().int().positive().optional(),
  split: SplitSchema.optional(),
});
export type DatasetRef = z.infer<typeof DatasetRefSchema>;

export function parseDatasetRef(text: string): DatasetRef {
  const m = /^([^@:]+)(?:@(\d+))?(?::([a-z]+))?$/.exec(text.trim());
  const parsed = m && DatasetRefSchema.safeParse({ name: m[1], version: m[2] ? Number(m[2]) : undefined, split: m[3] });
  if (!parsed || !parsed.success) {
    throw new BadInputError(`"${text}" is not a dataset reference: use NAME, NAME@VERSION, NAME:train|test or NAME@VERSION:train|test`);
  }
  return parsed.data;
}

export function formatDatasetRef(ref: DatasetRef): string {
  return `${ref.name}${ref.version ? `@${ref.version}` : ''}${ref.split ? `:${ref.split}` : ''}`;
}
