// Each stage's options: the one schema per stage, with every default written once. The stage
// runners parse with them, `retool synth|sft|eval|rl` derive their flags from them, and the pipeline
// config (workflows/config.ts) builds its sections from them. Zod only: workflow code imports it.
import { z } from 'zod';
import { DefectRatesSchema, OpenAITeacherOptionsSchema, TraceModeSchema, TraceStyleSchema } from '../engine/coldstart/options.js';
import { RlConfigSchema } from '../engine/rl/config.js';
import { RolloutOptionsSchema } from '../engine/rollout/options.js';
import { SftConfigSchema } from '../engine/sft/config.js';

/** Where a stage's run is stored: its name in the store (generated when absent) and the state folder. */
const RunFields = {
  runId: z
    .string()
    .regex(/^[A-Za-z0-9._-]+$/)
    .optional(),
  home: z.string().optional(),
};
/** Training stages resume a stopped run from its latest checkpoint. */
const Resumable = {
  /** Continue `runId` from its latest checkpoint instead of starting over. */
  resume: z.boolean().default(false),
};

export const ColdStartOptionsSchema = z.object({
  /** Problems to write traces for: NAME[@V][:split]; without a split, the train split when there is one. */
  dataset: z.string().min(1),
  out: z.string().min(1),
  newVersion: z.boolean().default(false),
  teacher: z.enum(['builtin', 'openai']).default('builtin'),
  mode: TraceModeSchema.default('code'),
  /** The built-in teacher's way of writing. */
  style: TraceStyleSchema,
  /** At most this many problems (the first ones in stored order). */
  limit: z.number().int().positive().optional(),
  seed: z.number().int().default(0),
  /** Traces written and verified at once (sandbox runs and teacher requests overlap). */
  concurrency: z.number().int().positive().max(256).default(16),
  rates: DefectRatesSchema.optional(),
  openai: OpenAITeacherOptionsSchema.partial().optional(),
});
export type ColdStartOptions = z.input<typeof ColdStartOptionsSchema>;

export const SftOptionsSchema = SftConfigSchema.extend({
  /** A trace dataset (`retool synth --out`); only its verified traces are used. */
  traces: z.string().min(1),
  /** The model to start from (a directory in Hugging Face layout). */
  model: z.string().min(1),
  out: z.string().min(1),
  ...RunFields,
  ...Resumable,
});
export type SftOptions = z.input<typeof SftOptionsSchema>;

export const EvalOptionsSchema = RolloutOptionsSchema.extend({
  model: z.string().min(1),
  /** NAME[@V][:split]; without a split, the test split when there is one. */
  dataset: z.string().min(1),
  samples: z.number().int().positive().max(1024).default(1),
  levels: z.array(z.number().int()).optional(),
  families: z.array(z.string()).optional(),
  limit: z.number().int().positive().optional(),
  /** Name of the evaluation dataset the samples are stored as (default eval-<run id>). */
  name: z.string().optional(),
  step: z.number().int().min(0).optional(),
  ...RunFields,
});
export type EvalOptions = z.input<typeof EvalOptionsSchema>;

export const RlOptionsSchema = RlConfigSchema.extend({
  /** The SFT model to start from (a directory in Hugging Face layout). */
  model: z.string().min(1),
  /** Problems: NAME[@V][:split]; the train split by default. */
  dataset: z.string().min(1),
  /** Train on these difficulty levels only (default: all). */
  levels: z.array(z.number().int()).optional(),
  out: z.string().min(1),
  /** Held-out problems for the periodic evaluation (default: the dataset's test split). */
  evalDataset: z.string().optional(),
  evalLimit: z.number().int().positive().default(200),
  evalLevels: z.array(z.number().int()).optional(),
  ...RunFields,
  ...Resumable,
});
export type RlOptions = z.input<typeof RlOptionsSchema>;
