import { z } from 'zod';

/** The decoder families this engine runs, by Hugging Face `model_type`. */
export const MODEL_TYPES = ['qwen2', 'llama', 'qwen3'] as const;
export type ModelType = (typeof MODEL_TYPES)[number];

const ARCHITECTURE: Record<ModelType, string> = {
  qwen2: 'Qwen2ForCausalLM',
  llama: 'LlamaForCausalLM',
  qwen3: 'Qwen3ForCausalLM',
};

/**
 * Rotary scaling as transformers describes it: `rope_scaling` (transformers < 5) or
 * `rope_parameters` (5.x, which also carries `rope_theta`). `default`, `linear` and Llama 3's
 * `llama3` are implemented; other kinds (yarn, dynamic, longrope) are refused when the config is read.
 */
const RopeSchema = z
  .object({
    rope_type: z.enum(['default', 'linear', 'llama3']).optional(),
    // transformers < 4.45 wrote "type"
    type: z.enum(['default', 'linear', 'llama3']).optional(),
    rope_theta: z.number().positive().optional(),
    factor: z.number().positive().optional(),
    low_freq_factor: z.number().positive().optional(),
    high_freq_factor: z.number().positive().optional(),
    original_max_position_embeddings: z.number().int().positive().optional(),
  })
  .passthrough();

/**
 * The fields of a Hugging Face `config.json` (Qwen2, Llama or Qwen3) this implementation reads.
 * Unknown fields are kept, so a config round-trips unchanged.
 */
export const DecoderConfigSchema = z
  .object({
    architectures: z.array(z.string()).optional(),
    model_type: z.enum(MODEL_TYPES).default('qwen2'),
    vocab_size: z.number().int().positive(),
    hidden_size: z.number().int().positive(),
    intermediate_size: z.number().int().positive(),
    num_hidden_layers: z.number().int().positive(),
    num_attention_heads: z.number().int().positive(),
    num_key_value_heads: z.number().int().positive(),
    /** Llama and Qwen3 may set it apart from hidden_size / heads (Qwen3's own default is 128). */
    head_dim: z.number().int().positive().nullable().optional(),
    /** q/k/v (and o) biases, for Llama and Qwen3; Qwen2 always has q/k/v biases and no o bias. */
    attention_bias: z.boolean().optional(),
    mlp_bias: z.literal(false).optional(),
    rms_norm_eps: z.number().positive().default(1e-6),
    rope_theta: z.number().positive().optional(),
    rope_scaling: RopeSchema.nullable().optional(),
    rope_parameters: RopeSchema.nullable().optional(),
    max_position_embeddings: z.number().int().positive().default(32_768),
    tie_word_embeddings: z.boolean().default(false),
    hidden_act: z.literal('silu').default('silu'),
    use_sliding_window: z.literal(false).optional(),
    torch_dtype: z.string().default('float32'),
    bos_token_id: z.number().int().nullable().optional(),
    eos_token_id: z
      .union([z.number().int(), z.array(z.number().int())])
      .nullable()
      .optional(),
  })
  .passthrough()
  .superRefine((c, ctx) => {
    const hd = headDim(c as DecoderConfig);
    if (hd % 2 !== 0) ctx.addIssue({ code: 'custom', message: `head dimension ${hd} must be even (rotary halves)`, path: ['head_dim'] });
    if (c.model_type !== 'qwen3' && c.head_dim == null && c.hidden_size % c.num_attention_heads !== 0)
      ctx.addIssue({ code: 'custom', message: 'hidden_size must be divisible by num_attention_heads', path: ['hidden_size'] });
    if (c.num_attention_heads % c.num_key_value_heads !== 0)
      ctx.addIssue({
        code: 'custom',
        message: 'num_attention_heads must be divisible by num_key_value_heads',
        path: ['num_key_value_heads'],
      });
    if (c.model_type === 'qwen2' && c.attention_bias === false)
      ctx.addIssue({ code: 'custom', message: 'Qwen2 always has q/k/v biases', path: ['attention_bias'] });
  });
export type DecoderConfig = z.infer<typeof DecoderConfigSchema>;

export function architectureOf(c: DecoderConfig): string {
  return ARCHITECTURE[c.model_type];
}

export function headDim(c: DecoderConfig): number {
  if (c.head_dim != null) return c.head_dim;
  return c.model_type === 'qwen3' ? 128 : c.hidden_size / c.num_attention_heads;
}

/** Which projections carry a bias: Qwen2 has q/k/v biases; Llama and Qwen3 all four when attention_bias. */
export function attentionBiases(c: DecoderConfig): { qkv: boolean; o: boolean } {
  if (c.model_type === 'qwen2') return { qkv: true, o: false };
  const on = c.attention_bias === true;
  return { qkv: on, o: on };
}

/** Qwen3 normalises each query and key head (RMSNorm over head_dim) before the rotary embedding. */
export function hasQkNorm(c: DecoderConfig): boolean {
  return c.model_type === 'qwen3';
}

function rope(c: DecoderConfig) {
  const r = c.rope_parameters ?? c.rope_scaling ?? undefined;
  return { kind: r?.rope_type ?? r?.type ?? 'default', ...r };
}

/** Each model family's own default is 10000 (Qwen2.5 and Llama 3 checkpoints set theirs explicitly). */
export function ropeTheta(c: DecoderConfig): number {
  return c.rope_parameters?.rope_theta ?? c.rope_theta ?? 10_000;
}

/**
 * The rotary inverse frequencies, one per pair of head dimensions, with the config's scaling
 * applied as transformers' `ROPE_INIT_FUNCTIONS` do (float64 here, float32 there).
 */
export function ropeInverseFrequencies(c: DecoderConfig): Float32Array {
  const hd = headDim(c);
  const base = ropeTheta(c);
  const freqs = Array.from({ length: hd / 2 }, (_, i) => 1 / base ** ((2 * i) / hd));
  const r = rope(c);
  if (r.kind === 'linear') return Float32Array.from(freqs, (f) => f / (r.factor ?? 1));
  if (r.kind !== 'llama3') return Float32Array.from(freqs);
  const factor = r.factor ?? 8;
  const low = r.low_freq_factor ?? 1;
  const high = r.high_freq_factor ?? 4;
  const context = r.original_max_position_embeddings ?? 8192;
  const lowWavelen = context / low;
  const highWavelen = context / high;
  return Float32Array.from(freqs, (f) => {
    const wavelen = (2 * Math.PI) / f;
    if (wavelen < highWavelen) return f;
    if (wavelen > lowWavelen) return f / factor;
    const smooth = (context / wavelen - low) / (high - low);
    return (1 - smooth) * (f / factor) + smooth * f;
  });
}

/** Presets for `retool model init`. `tiny` is the built-in model; `small` is ~10M parameters. */
export const PRESETS = {
  tiny: {
    hidden_size: 64,
    intermediate_size: 192,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    num_key_value_heads: 4,
    max_position_embeddings: 256,
    tie_word_embeddings: true,
    rope_theta: 10_000,
  },
  small: {
    hidden_size: 320,
    intermediate_size: 960,
    num_hidden_layers: 8,
    num_attention_heads: 8,
    num_key_value_heads: 2,
    max_position_embeddings: 512,
    tie_word_embeddings: true,
    rope_theta: 10_000,
  },
} as const;
export type PresetName = keyof typeof PRESETS;

/** A fresh base model: its size and initialisation seed (`retool model init`, the pipeline's `model`). */
export const ModelInitSchema = z.object({
  preset: z.enum(Object.keys(PRESETS) as [PresetName, ...PresetName[]]).default('tiny'),
  seed: z.number().int().default(0),
  /** The longest sequence it takes (prompt, response and interpreter outputs); default the preset's. */
  positions: z.number().int().min(16).max(32_768).optional(),
});
export type ModelInit = z.output<typeof ModelInitSchema>;
