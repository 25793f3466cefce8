// How a batch is rolled out: sampling, the interpreter's budget and the sandbox's limits. Zod
// only, so the pipeline config (workflow code) can build on it.
import { z } from 'zod';
import { SandboxLimitsSchema } from '../sandbox/types.js';

export const RolloutOptionsSchema = z.object({
  tools: z.boolean().default(true),
  /** Prompt, response and interpreter outputs together at most, in tokens (default: the model's context). */
  contextTokens: z.number().int().positive().optional(),
  maxToolCalls: z.number().int().min(0).default(4),
  /** Sampled (model) tokens per response at most. */
  maxResponseTokens: z.number().int().positive().default(192),
  /** Tokens of one interpreter output at most (cut in the middle past it). */
  maxInterpreterTokens: z.number().int().positive().default(64),
  temperature: z.number().min(0).default(0),
  topP: z.number().gt(0).max(1).default(1),
  seed: z.number().int().default(0),
  /** Sequences decoded together. */
  batchSize: z.number().int().positive().default(32),
  /** The sandbox's limits for each code run (defaults: the sandbox's own). */
  timeoutMs: SandboxLimitsSchema.shape.timeoutMs,
  memoryMb: SandboxLimitsSchema.shape.memoryMb,
  /** Off: the whole batch waits for each tool call (the baseline the overlap is measured against). */
  overlapTools: z.boolean().default(true),
  /** With overlap: a call's output is appended this many decoding steps after it started (waiting only if it is late). */
  toolLatencySteps: z.number().int().min(0).default(4),
  /** Off: an interpreter output appended to one row costs every row of the batch its length (the baseline). */
  raggedPrefill: z.boolean().default(true),
});
export type RolloutOptions = z.input<typeof RolloutOptionsSchema>;
