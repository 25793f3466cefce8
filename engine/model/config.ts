import { z } from 'zod';

/**
 * The fields of a Hugging Face Qwen2 `config.json` this implementation reads. Unknown fields are
 * kept, so a config round-trips unchanged.
 */
export const Qwen2ConfigSchema = z
  .object({
    architectures: z.array(z.string()).default(['Qwen2ForCausalLM']),
    model_type: z.literal('qwen2').default('qwen2'),
    vocab_size: z.number().int().positive(),
    hidden_size: z.number().int().positive(),
    intermediate_size: z.number().int().positive(),
    num_hidden_layers: z.number().int().positive(),
    num_attention_heads: z.number().int().positive(),
    num_key_value_heads: z.number().int().positive(),
    rms_norm_eps: z.number().positive().default(1e-6),
    // transformers < 5 writes rope_theta; 5.x writes rope_parameters {rope_type, rope_theta}.
    rope_theta: z.number().positive().optional(),
    rope_parameters: z
      .object({ rope_type: z.literal('default').default('default'), rope_theta: z.number().positive() })
      .passthrough()
      .optional(),
    max_position_embeddings: z.number().int().positive().default(32_768),
    tie_word_embeddings: z.boolean().default(false),
    hidden_act: z.literal('silu').default('silu'),
    torch_dtype: z.string().default('float32'),
    bos_token_id: z.number().int().nullable().optional(),
    eos_token_id: z
      .union([z.number().int(), z.array(z.number().int())])
      .nullable()
      .optional(),
  })
  .passthrough()
  .superRefine((c, ctx) => {
    if (c.hidden_size % c.num_attention_heads !== 0)
      ctx.addIssue({ code: 'custom', message: 'hidden_size must be divisible by num_attention_heads', path: ['hidden_size'] });
    if (c.num_attention_heads % c.num_key_value_heads !== 0)
      ctx.addIssue({
        code: 'custom',
        message: 'num_attention_heads must be divisible by num_key_value_heads',
        path: ['num_key_value_heads'],
      });
  });
export type Qwen2Config = z.infer<typeof Qwen2ConfigSchema>;

/** Qwen2Config's own default is 10000 (Qwen2.5 checkpoints set 1e6 explicitly). */
export function ropeTheta(c: Qwen2Config): number {
  return c.rope_parameters?.rope_theta ?? c.rope_theta ?? 10_000;
}

export function headDim(c: Qwen2Config): number {
  return c.hidden_size / c.num_attention_heads;
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
});
