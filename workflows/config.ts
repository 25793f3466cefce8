// The one configuration of a ReTool run, its sections built from the stages' own schemas (so a
// knob's default is the stage's). Parsed at the edge: by the CLI before it starts a
// workflow, and by the workflow itself for runs started from the Temporal UI, a schedule or a
// trigger (zod is deterministic, so it may run in workflow code).
import { z } from 'zod';
import { OpenAITeacherOptionsSchema, TraceStyleSchema } from '../engine/coldstart/options.js';
import { ModelInitSchema } from '../engine/model/config.js';
import { LoraConfigSchema } from '../engine/model/lora-config.js';
import { RolloutOptionsSchema } from '../engine/rollout/options.js';
import { ColdStartOptionsSchema, EvalOptionsSchema, RlOptionsSchema, SftOptionsSchema } from '../stages/options.js';

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

/** The problem set when a config names none. */
const DEFAULT_DATA = { source: 'synth', name: 'world', count: 4000 } as const;

/** A built-in architecture made from a seed: its size and initialisation seed. */
const BuiltinModel = ModelInitSchema.strict();
/**
 * A pretrained model: a directory in Hugging Face layout (a relative path is taken from the
 * store's folder) or the name of one `retool model fetch` knows, such as "smollm2-135m-instruct".
 */
const PretrainedModel = z.strictObject({ from: z.string().min(1) });
const ModelSection = z.union([PretrainedModel, BuiltinModel]);

/** What trains: every weight, or a LoRA adapter on the frozen base (its checkpoints hold the adapter only). */
const AdapterSection = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('full') }),
  LoraConfigSchema.extend({ kind: z.literal('lora') }).strict(),
]);

/**
 * What one response may spend, the same for SFT, RL and every evaluation: the context (prompt,
 * response and interpreter outputs; default the model's own), the model's tokens, the tool calls,
 * and the tokens of one interpreter output (cut in the middle past it, as in the paper's recipe).
 */
const BUDGET_KEYS = { contextTokens: true, maxResponseTokens: true, maxToolCalls: true, maxInterpreterTokens: true } as const;
const BudgetSection = RolloutOptionsSchema.pick(BUDGET_KEYS).strict();

/**
 * Who writes the cold-start traces: the built-in teacher (synthetic families only), any
 * OpenAI-compatible chat API (`retool serve` of a local model is one; the API key stays on the
 * worker: `apiKeyEnv` names the environment variable that holds it), or nobody: trace datasets
 * already in the store (`retool data import --kind traces`, an earlier cold start), one per arm.
 */
const TeacherSection = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('builtin'), style: TraceStyleSchema }),
  z.strictObject({
    kind: z.literal('openai'),
    // A pattern rather than z.url(): the workflow sandbox parses this config too.
    baseUrl: z.string().regex(/^https?:\/\/\S+$/, 'an http(s) URL such as http://127.0.0.1:8000/v1'),
    model: z.string().min(1),
    apiKeyEnv: OpenAITeacherOptionsSchema.shape.apiKeyEnv,
    ...OpenAITeacherOptionsSchema.pick({ concurrency: true, temperature: true, timeoutMs: true, maxRetries: true }).partial().shape,
  }),
  z.strictObject({
    kind: z.literal('stored'),
    /** The code arm's traces, as NAME or NAME@VERSION. */
    code: z.string().min(1).optional(),
    /** The text arm's traces (text-only reasoning). */
    text: z.string().min(1).optional(),
  }),
]);

/** Cold-start traces: at most `limit` problems, the teacher's seed, traces in flight. */
const TracesSection = ColdStartOptionsSchema.pick({ limit: true, seed: true, concurrency: true }).strict();
/** Every SFT knob; the run supplies the traces, the models and the run id, `adapter` the LoRA settings, `budget` the context. */
const SftSection = SftOptionsSchema.omit({
  traces: true,
  model: true,
  out: true,
  runId: true,
  resume: true,
  home: true,
  loraRank: true,
  loraAlpha: true,
  loraDropout: true,
  loraTargets: true,
  contextTokens: true,
}).strict();
/** Every RL knob (sampling, sandbox limits, losses); the arm decides `tools`, `budget` the interpreter budget. */
const RlSection = RlOptionsSchema.omit({
  ...BUDGET_KEYS,
  model: true,
  dataset: true,
  out: true,
  evalDataset: true,
  evalLevels: true,
  runId: true,
  resume: true,
  home: true,
  tools: true,
})
  .extend({ levels: Levels.optional() })
  .strict();
/**
 * The held-out evaluations (of the base, the SFT and the final model; greedy unless `temperature`
 * and `samples` say otherwise), the levels RL's periodic ones use, and the benchmarks.
 */
/** The `benchmarks` entry that samples the run's own held-out problems rather than a shipped set. */
export const SAMPLED_HELD_OUT = 'held-out-sampled';
const EvalSection = EvalOptionsSchema.omit({
  model: true,
  dataset: true,
  tools: true,
  name: true,
  runId: true,
  step: true,
  home: true,
  overlapTools: true,
  toolLatencySteps: true,
  raggedPrefill: true,
  ...BUDGET_KEYS,
})
  .extend({
    levels: Levels.optional(),
    /** Evaluate the base model before any training too (zero-shot, with the ReTool prompt): the table's first row. */
    baseEval: z.boolean().default(false),
    /**
     * Sets each model is also evaluated on with `benchmark`'s sampling (avg@k and pass@k): the shipped
     * AIME years, or `held-out-sampled`, the held-out problems above (levels, limit) sampled k times.
     */
    benchmarks: z.array(z.enum(['aime24', 'aime25', SAMPLED_HELD_OUT])).default([]),
    benchmark: z
      .strictObject({
        samples: z.number().int().positive().max(64).default(4),
        temperature: z.number().min(0).default(0.6),
        topP: z.number().gt(0).max(1).default(0.95),
        /** The first N problems of each benchmark only. */
        limit: z.number().int().positive().optional(),
      })
      .prefault({}),
  })
  .strict();

export const RetoolConfigSchema = z
  .object({
    preset: z.string().default('custom'),
    /** Which arms to train: `code` is ReTool (interpreter in the loop), `text` the text-only baseline. */
    arms: z
      .array(z.enum(['code', 'text']))
      .nonempty()
      .default(['code']),
    /**
     * Train the arms side by side (each stage's process shares the machine), or one after the
     * other: a pretrained model's processes each hold gigabytes, and two cores gain little from overlap.
     */
    parallelArms: z.boolean().default(true),
    /** The arm a single pipeline run trains (set by the experiment for each child). */
    arm: z.enum(['code', 'text']).default('code'),
    data: z.discriminatedUnion('source', [SynthData, StoredData]).prefault(DEFAULT_DATA),
    /**
     * `scratch`: base model -> cold start -> SFT -> RL. `latest`: RL from the final model of the
     * latest completed run of the same arm on this dataset (scheduled retraining), else scratch.
     */
    startFrom: z.enum(['scratch', 'latest']).default('scratch'),
    // Sections default to their schema's own defaults: each default is written once, in the stage.
    model: ModelSection.prefault({}),
    adapter: AdapterSection.prefault({ kind: 'full' }),
    budget: BudgetSection.prefault({}),
    teacher: TeacherSection.prefault({ kind: 'builtin' }),
    traces: TracesSection.prefault({}),
    sft: SftSection.prefault({}),
    rl: RlSection.prefault({}),
    eval: EvalSection.prefault({}),
    /**
     * How long a stage activity may go silent before Temporal retries it on another worker. Its
     * worker heartbeats every few seconds whatever the model size (the work runs in a child
     * process), so this bounds how long a killed worker's stage waits to resume elsewhere.
     */
    heartbeatTimeout: Duration.default('45 seconds'),
    /** Rounds an RL child workflow runs before it continues as new (keeps its history short). */
    roundsPerRun: z.number().int().positive().default(25),
  })
  .strict()
  .superRefine((config, ctx) => {
    for (const arm of config.arms) {
      const missing = storedTracesMissing(config.teacher, arm);
      if (missing) ctx.addIssue({ code: 'custom', path: ['teacher', arm], message: missing });
    }
  });

export type RetoolConfig = z.output<typeof RetoolConfigSchema>;
export type RetoolConfigInput = z.input<typeof RetoolConfigSchema>;

/**
 * quick: wiring check in a couple of minutes (the model learns little). default: the embedded main
 * job, one ReTool arm, about a quarter hour on 2 cores. paper: the ReTool-vs-text comparison with
 * the paper's recipe in miniature (a cold start of mixed strategies, PPO) on the built-in model, in
 * about an hour. real: the same comparison on a pretrained instruct model
 * (SmolLM2-135M-Instruct, fetched from PyPI) with LoRA, the ReTool prompt and the paper's
 * evaluations (base zero-shot, held-out, AIME 2024), sized to finish within three hours on 2 cores.
 */
export const PRESETS = {
  quick: {
    preset: 'quick',
    data: { source: 'synth', name: 'quick-world', count: 600 },
    traces: { limit: 200 },
    sft: { steps: 30, checkpointEvery: 10 },
    rl: { steps: 4, promptsPerStep: 4, samplesPerPrompt: 4, evalEvery: 2, evalLimit: 16, checkpointEvery: 1 },
    budget: { maxResponseTokens: 96 },
    eval: { limit: 32 },
  },
  default: {
    preset: 'default',
    rl: { levels: [3, 4] },
    eval: { levels: [3, 4], limit: 400 },
  },
  paper: {
    preset: 'paper',
    arms: ['code', 'text'],
    data: { source: 'synth', name: 'paper-world', count: 12_000 },
    // A cold start like the paper's (strategies mixed, code late or not at all), so RL has room.
    teacher: { kind: 'builtin', style: 'paper' },
    // 512 positions: 99.6% of the paper-style traces fit (256 held 85%); the same weights as tiny.
    model: { preset: 'tiny', positions: 512 },
    budget: { maxResponseTokens: 320 },
    // Hard held-out accuracy after 5,000 steps: 63.8% in one run, 34.1% in another (the cold start's
    // searches time out with the machine's load, and this is where copying the interpreter's number
    // is learnt); 91.8% after 10,000 (docs/results.md, 2026-12-08). 5,000 leaves RL room.
    sft: { steps: 5_000, checkpointEvery: 500 },
    // The paper's algorithm: PPO with a critic, outcome reward, no KL (engine/rl/config.ts defaults).
    // lr by measurement on a 6,000-step SFT model (docs/results.md): 3e-4 halved held-out accuracy
    // in 10 steps, 1e-4 moved the code to the front within 20 and lost accuracy by 30, 3e-5 changed
    // nothing in 12; 5e-5 spreads that move over the 80 steps.
    rl: { algo: 'ppo', steps: 80, lr: 5e-5, levels: [3, 4], evalEvery: 20, evalLimit: 400, checkpointEvery: 10 },
    // Greedy on every hard held-out problem, and avg@4 at temperature 0.6 on the first 400.
    eval: { levels: [3, 4], benchmarks: [SAMPLED_HELD_OUT], benchmark: { samples: 4, limit: 400 } },
  },
  real: {
    preset: 'real',
    arms: ['code', 'text'],
    parallelArms: false,
    model: { from: 'smollm2-135m-instruct' },
    adapter: { kind: 'lora', rank: 16, alpha: 32 },
    teacher: { kind: 'builtin', style: 'explained' },
    data: { source: 'synth', name: 'real-world', count: 2000 },
    traces: { limit: 400 },
    budget: { contextTokens: 1024, maxResponseTokens: 200, maxToolCalls: 2, maxInterpreterTokens: 48 },
    sft: { steps: 60, batchSize: 4, lr: 2e-4, minLr: 2e-5, warmupSteps: 6, checkpointEvery: 10, lengthBucketSteps: 8 },
    rl: {
      steps: 10,
      levels: [3, 4],
      promptsPerStep: 4,
      samplesPerPrompt: 4,
      rolloutBatchSize: 16,
      epochs: 1,
      // Four updates a step: a whole step's 16 sequences in one pass would not fit in memory.
      miniBatchSize: 4,
      // 5e-5 took held-out accuracy from 66.7% to 40.0% in five steps (docs/results.md, 2026-12-07).
      lr: 1e-5,
      evalEvery: 5,
      evalLimit: 20,
      checkpointEvery: 2,
    },
    eval: { limit: 60, baseEval: true, benchmarks: ['aime24'], benchmark: { samples: 2 }, batchSize: 16 },
  },
} satisfies Record<string, RetoolConfigInput>;

export type PresetName = keyof typeof PRESETS;

/** The SFT stage's LoRA options for the config's adapter. */
export function sftAdapterOptions(adapter: RetoolConfig['adapter']) {
  if (adapter.kind === 'full') return { loraRank: 0 };
  return { loraRank: adapter.rank, loraAlpha: adapter.alpha, loraDropout: adapter.dropout, loraTargets: adapter.targetModules };
}

/** Why a stored-traces teacher cannot cold-start `arm`, or null when it can (or writes traces itself). */
export function storedTracesMissing(teacher: z.output<typeof TeacherSection>, arm: 'code' | 'text'): string | null {
  if (teacher.kind !== 'stored' || teacher[arm]) return null;
  return `the ${arm} arm needs a stored trace dataset of its own (NAME or NAME@VERSION)`;
}

/** The cold-start stage's teacher options for a teacher that writes traces. */
export function coldStartTeacherOptions(teacher: Exclude<RetoolConfig['teacher'], { kind: 'stored' }>) {
  if (teacher.kind === 'builtin') return { teacher: 'builtin' as const, style: teacher.style };
  const { kind: _kind, ...openai } = teacher;
  return { teacher: 'openai' as const, openai };
}

/** A short name of the base model for search attributes and summaries. */
export function modelLabel(model: RetoolConfig['model']): string {
  if ('from' in model) return model.from.split('/').filter(Boolean).pop() ?? model.from;
  return model.preset;
}

/** A preset with a file's (or trigger's) settings laid over it, section by section. */
export function resolveConfig(preset: PresetName | undefined, overrides: Record<string, unknown> = {}): RetoolConfig {
  const base: Record<string, unknown> = preset ? structuredCloneJson(PRESETS[preset]) : {};
  for (const [key, value] of Object.entries(overrides)) {
    // A data override without a source refines the default problem set.
    const prior = base[key] ?? (key === 'data' ? DEFAULT_DATA : undefined);
    // A section is merged key by key, except one of another kind (data source, teacher or adapter
    // kind, pretrained against built-in model), which replaces.
    const merge = isPlainObject(prior) && isPlainObject(value) && sectionKind(prior) === sectionKind(value, prior);
    base[key] = merge ? { ...prior, ...value } : value;
  }
  return RetoolConfigSchema.parse(base);
}

/** What kind of section `v` is, by its discriminating key; an override that names none keeps the prior's. */
function sectionKind(v: Record<string, unknown>, prior?: Record<string, unknown>): unknown {
  if ('source' in v) return v.source;
  if ('kind' in v) return v.kind;
  if ('from' in v) return 'pretrained';
  if ('preset' in v) return 'builtin';
  return prior ? sectionKind(prior) : undefined;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function structuredCloneJson<T>(v: T): T {
  return JSON.parse(JSON.stringify(v)) as T;
}
