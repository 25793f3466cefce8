// LoRA's settings, zod only: the SFT and RL configs (read by workflow code) build on them.
import { z } from 'zod';

export const LORA_MODULES = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'] as const;
export type LoraModule = (typeof LORA_MODULES)[number];

export const LoraConfigSchema = z.object({
  rank: z.number().int().positive().default(16),
  alpha: z.number().positive().default(32),
  /** Dropout on the adapter's input while training (PEFT's lora_dropout). */
  dropout: z.number().min(0).lt(1).default(0),
  targetModules: z
    .array(z.enum(LORA_MODULES))
    .min(1)
    .default([...LORA_MODULES]),
});
export type LoraConfig = z.output<typeof LoraConfigSchema>;
