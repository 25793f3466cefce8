// The one configuration of a ReTool run. Parsed at the edge: by the CLI before it starts a
// workflow, and by the workflow itself for runs started from the Temporal UI, a schedule or a
// trigger (zod is deterministic, so it may run in workflow code).
import { z } from 'zod';

const Levels = z.array(z.number().int().min(1).max(4)).nonempty();
const Duration = z.string().regex(/^\d+\s*(ms|s|seconds?|m|minutes?|h|hours?)$/, 'a duration such as "30s", "10 minutes" or "2h"');

const SynthData = z.strictObject({
  source: z.literal('synth'),
  name: z.string().regex(/^[a-z0-9][a-z0-9_-]*$/, 'lower-case letters, digits, - and _'),
  count: z.number().int().min(20).max(2_000_000),
  seed: z.number().int().default(7),
});
/** The latest version of a dataset already in the store (imported, or made by an earlier run). */
const StoredData = z.strictObject({
  source: z.literal('stored'),
  name: z.string().min(1),
  version: z.number().int().positive().optional(),
});

export const RetoolConfigSchema = z
  .object({
    preset: z.string().default('custom'),
    /** Which arms to train: `code` is ReTool (interpreter in the loop), `text` the text-only baseline. */
    arms: z.array(z.enum(['code', 'text'])).nonempty().default(['code']),
    /** The arm a single pipeline run trains (set by the experiment for each child). */
    arm: z.enum(['code', 'text']).default('code'),
    data: z.discriminatedUnion('source', [SynthData, StoredData]).default({ source: 'synth', name: 'world', count: 4000, seed: 7 }),
    /**
     * `scratch`: base model -> cold start -> SFT -> RL. `latest`: RL from the final model of the
     * latest completed run of the same arm on this dataset (scheduled retraining), else scratch.
     */
    startFrom: z.enum(['scratch', 'latest']).default('scratch'),
    model: z.strictObject({ preset: z.enum(['tiny', 'small']).default('tiny'), seed: z.number().int().default(0) }).default({ preset: 'tiny', seed: 0 }),
    traces: z.strictObject({ limit: z.number().int().positive().optional(), seed: z.number().int().default(0) }).default({ seed: 0 }),
    sft: z
      .strictObject({
        steps: z.number().int().positive().default(2000),
        batchSize: z.number().int().positive().default(8),
        lr: z.number().positive().default(3e-3),
        checkpointEvery: z.number().int().positive().default(250),
      })
      .default({ steps: 2000, batchSize: 8, lr: 3e-3, checkpointEvery: 250 }),
    rl: z
      .strictObject({
        algo: z.enum(['ppo', 'grpo']).default('grpo'),
        steps: z.number().int().positive().default(20),
        promptsPerStep: z.number().int().positive().default(16),
        samplesPerPrompt: z.number().int().min(2).default(8),
        lr: z.number().positive().default(3e-5),
        levels: Levels.optional(),
        /** One RL round = this many steps, then a held-out evaluation (the curve's points). */
        evalEvery: z.number().int().positive().default(10),
        evalLimit: z.number().int().positive().default(400),
        checkpointEvery: z.number().int().positive().default(5),
        maxResponseTokens: z.number().int().positive().default(192),
      })
      .default({ algo: 'grpo', steps: 20, promptsPerStep: 16, samplesPerPrompt: 8, lr: 3e-5, evalEvery: 10, evalLimit: 400, checkpointEvery: 5, maxResponseTokens: 192 }),
    eval: z.strictObject({ levels: Levels.optional(), limit: z.number().int().positive().optional() }).default({}),
    /** How long a training activity may go silent before Temporal retries it on another worker. */
    heartbeatTimeout: Duration.default('10 minutes'),
    /** Rounds an RL child workflow runs before it continues as new (keeps its history short). */
    roundsPerRun: z.number().int().positive().default(25),
  })
  .strict();

export type RetoolConfig = z.output<typeof RetoolConfigSchema>;
export type RetoolConfigInput = z.input<typeof RetoolConfigSchema>;

/**
 * quick: wiring check in a couple of minutes (the model learns little). default: the embedded main
 * job, one ReTool arm, about a quarter hour on 2 cores. paper: the ReTool-vs-text comparison at the
 * scale of the README's RL results (hours).
 */
export const PRESETS = {
  quick: {
    preset: 'quick',
    data: { source: 'synth', name: 'quick-world', count: 600, seed: 7 },
    traces: { limit: 200, seed: 0 },
    sft: { steps: 30, batchSize: 8, lr: 3e-3, checkpointEvery: 10 },
    rl: { algo: 'grpo', steps: 4, promptsPerStep: 4, samplesPerPrompt: 4, evalEvery: 2, evalLimit: 16, checkpointEvery: 1, maxResponseTokens: 96 },
    eval: { limit: 32 },
  },
  default: {
    preset: 'default',
    data: { source: 'synth', name: 'world', count: 4000, seed: 7 },
    sft: { steps: 2000, batchSize: 8, lr: 3e-3, checkpointEvery: 250 },
    rl: { algo: 'grpo', steps: 20, levels: [3, 4], evalEvery: 10, evalLimit: 200, checkpointEvery: 5 },
    eval: { levels: [3, 4], limit: 400 },
  },
  paper: {
    preset: 'paper',
    arms: ['code', 'text'],
    data: { source: 'synth', name: 'paper-world', count: 12_000, seed: 7 },
    sft: { steps: 8000, batchSize: 8, lr: 3e-3, checkpointEvery: 500 },
    rl: { algo: 'grpo', steps: 80, levels: [3, 4], evalEvery: 20, evalLimit: 400, checkpointEvery: 10 },
    eval: { levels: [3, 4] },
  },
} satisfies Record<string, RetoolConfigInput>;

export type PresetName = keyof typeof PRESETS;

/** Readable, path-qualified zod issues ("rl.steps: expected a number"), for configs and activity inputs. */
/** A preset with a file's (or trigger's) settings laid over it, section by section. */
export function resolveConfig(preset: PresetName | undefined, overrides: Record<string, unknown> = {}): RetoolConfig {
  const base: Record<string, unknown> = preset ? structuredCloneJson(PRESETS[preset]) : {};
  for (const [key, value] of Object.entries(overrides)) {
    const prior = base[key];
    // A section is merged key by key, except a data section of another source, which replaces.
    const sameKind = !(key === 'data' && isPlainObject(prior) && isPlainObject(value) && value.source !== undefined && value.source !== prior.source);
    base[key] = isPlainObject(prior) && isPlainObject(value) && sameKind ? { ...prior, ...value } : value;
  }
  return RetoolConfigSchema.parse(base);
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function structuredCloneJson<T>(v: T): T {
  return JSON.parse(JSON.stringify(v)) as T;
}
