// One config for both algorithms, and the one place its defaults are written: `retool rl`, the RL
// stage and the pipeline config's `rl` section build on it. Defaults are sized for the built-in
// tiny model on a CPU; the paper's values (for a 32B model on GPUs) are given beside each one where
// they differ. Zod only (workflow code reads it).
import { z } from 'zod';
import { RolloutOptionsSchema } from '../rollout/options.js';

/** The rollout's interpreter budget and sandbox limits, as evaluation has them. */
const RolloutBudget = RolloutOptionsSchema.pick({
  contextTokens: true,
  maxToolCalls: true,
  maxResponseTokens: true,
  maxInterpreterTokens: true,
  topP: true,
  timeoutMs: true,
  memoryMb: true,
});

export const RlConfigSchema = RolloutBudget.extend({
  /** GRPO (the verl recipe, DAPO clipping) or PPO with a critic (the paper). */
  algo: z.enum(['ppo', 'grpo']).default('grpo'),
  /** Off: the text-only arm (no interpreter; the same loop otherwise). */
  tools: z.boolean().default(true),
  steps: z.number().int().positive().default(20),
  /** Distinct problems per step (paper: 512). */
  promptsPerStep: z.number().int().positive().default(16),
  /** Samples per problem: GRPO's group (verl recipe: 16). */
  samplesPerPrompt: z.number().int().positive().default(8),
  /** Sampling temperature of the rollouts (evaluation samples greedily unless told otherwise). */
  temperature: z.number().gt(0).default(1),
  rolloutBatchSize: z.number().int().positive().default(64),
  /** Passes over each step's rollouts, and sequences per optimizer step within a pass. */
  epochs: z.number().int().positive().default(2),
  miniBatchSize: z.number().int().positive().default(32),
  /** Actor learning rate (paper: 1e-6). On the tiny model 2e-4 made greedy accuracy fall; 3e-5 raised it. */
  lr: z.number().positive().default(3e-5),
  /** Critic learning rate (PPO only). */
  criticLr: z.number().positive().default(1e-3),
  warmupSteps: z.number().int().min(0).default(0),
  weightDecay: z.number().min(0).default(0),
  maxGradNorm: z.number().positive().nullable().default(1),
  /** Clip range below and above 1; clipHigh defaults to 0.2 for PPO and 0.28 for GRPO (DAPO). */
  clipLow: z.number().positive().default(0.2),
  clipHigh: z.number().positive().optional(),
  /** Dual clip: a token with a negative advantage weighs at most clipRatioC times it (verl: 3). */
  clipRatioC: z.number().gt(1).default(3),
  valueClip: z.number().positive().default(0.2),
  /** PPO: advantages shifted and scaled to mean 0, std 1 over the step's action tokens (verl, OpenRLHF). */
  whitenAdvantages: z.boolean().default(true),
  gamma: z.number().min(0).max(1).default(1),
  lambda: z.number().min(0).max(1).default(1),
  /** KL(policy || SFT model) in the loss (paper: 0, so no reference model is loaded). */
  klCoef: z.number().min(0).default(0),
  entropyCoef: z.number().min(0).default(0),
  /** GRPO: drop the groups whose samples all got the same reward (no signal, only noise). */
  dropUniformGroups: z.boolean().default(true),
  /** verl recipe: +0.1 per tool call for a wrong answer, capped at -0.6. */
  toolCallBonus: z.boolean().default(false),
  /** SimpleTIR: trajectories with a void turn take no part in the loss. */
  filterVoidTurns: z.boolean().default(false),
  seed: z.number().int().default(0),
  /** Resumable checkpoint every this many steps (and always at the end). */
  checkpointEvery: z.number().int().min(0).default(5),
  /** Held-out evaluation every this many steps (and before the first and after the last). 0: never. */
  evalEvery: z.number().int().min(0).default(10),
});
export type RlConfig = z.output<typeof RlConfigSchema>;

export function clipHighOf(c: RlConfig): number {
  return c.clipHigh ?? (c.algo === 'grpo' ? 0.28 : 0.2);
}
export type RlConfigInput = z.input<typeof RlConfigSchema>;
