// SFT's knobs and their defaults, written once: the CLI's `retool sft`, the SFT stage and the
// pipeline config's `sft` section all build on this schema. Zod only (workflow code reads it).
import { z } from 'zod';
import { LORA_MODULES, LoraConfigSchema, type LoraConfig } from '../model/lora-config.js';

export const SftConfigSchema = z.object({
  steps: z.number().int().positive().default(2000),
  batchSize: z.number().int().positive().default(8),
  /** Micro-batches of batchSize sequences per optimizer step, their gradients summed (memory of one). */
  gradAccum: z.number().int().positive().default(1),
  seed: z.number().int().default(0),
  /**
   * Optimizer steps whose examples are drawn together, sorted by length and cut into batches, so a
   * batch pads little (engine/sft/batches.ts). 1 keeps each step's examples as drawn and only
   * groups its micro-batches by length.
   */
  lengthBucketSteps: z.number().int().positive().default(1),
  /** Traces longer than this many tokens (prompt included) are left out (default: the model's context). */
  contextTokens: z.number().int().positive().optional(),
  /** Save a resumable checkpoint every this many steps (and always at the end). 0: only at the end. */
  checkpointEvery: z.number().int().min(0).default(250),
  lr: z.number().positive().default(3e-3),
  minLr: z.number().min(0).default(3e-4),
  warmupSteps: z.number().int().min(0).default(20),
  schedule: z.enum(['cosine', 'linear', 'constant']).default('cosine'),
  weightDecay: z.number().min(0).default(0.01),
  maxGradNorm: z.number().positive().nullable().default(1),
  /** LoRA rank: above 0, only an adapter of this rank trains (saved in PEFT's layout); 0 trains every weight. */
  loraRank: z.number().int().min(0).default(0),
  loraAlpha: z.number().positive().optional(),
  loraDropout: z.number().min(0).lt(1).optional(),
  loraTargets: z.array(z.enum(LORA_MODULES)).min(1).optional(),
});
export type SftConfig = z.output<typeof SftConfigSchema>;

/** The adapter a run trains, or null for full fine-tuning. */
export function loraOf(c: Pick<SftConfig, 'loraRank' | 'loraAlpha' | 'loraDropout' | 'loraTargets'>): LoraConfig | null {
  if (c.loraRank === 0) return null;
  return LoraConfigSchema.parse({ rank: c.loraRank, alpha: c.loraAlpha, dropout: c.loraDropout, targetModules: c.loraTargets });
}
