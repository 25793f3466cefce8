// The messages between a worker and the child process that runs one activity's heavy work. Both
// ends are this codebase, but a child can die half-way through a write or be a different build
// after an upgrade, so what arrives is parsed, not trusted.
import { z } from 'zod';

export const JOB_NAMES = ['probe', 'initModel', 'synthTraces', 'sft', 'rl', 'evaluate'] as const;
export type JobName = (typeof JOB_NAMES)[number];

export const ToChildSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('start'), job: z.enum(JOB_NAMES), input: z.unknown() }),
  /** Stop at the next step boundary, with a checkpoint. */
  z.object({ kind: z.literal('cancel') }),
]);
export type ToChild = z.infer<typeof ToChildSchema>;

const Metrics = z.record(z.string(), z.number().nullable());

export const FromChildSchema = z.discriminatedUnion('kind', [
  /** Sent on a timer: it arrives only while the child's JavaScript thread is free. */
  z.object({ kind: z.literal('alive') }),
  z.object({ kind: z.literal('progress'), step: z.number(), total: z.number().optional(), metrics: Metrics.optional() }),
  z.object({ kind: z.literal('checkpoint'), step: z.number(), path: z.string() }),
  z.object({ kind: z.literal('done'), result: z.unknown() }),
  /** `retryable: false` for input that will be just as bad on the next attempt. */
  z.object({ kind: z.literal('failed'), message: z.string(), type: z.string(), retryable: z.boolean(), stack: z.string().optional() }),
]);
export type FromChild = z.infer<typeof FromChildSchema>;
