// The cold-start teachers' settings. Zod only, so the stage's options (and through them the
// pipeline config, which workflow code reads) can build on them without loading a teacher.
import { z } from 'zod';

export const TraceModeSchema = z.enum(['code', 'text']);

export const DefectRatesSchema = z.object({
  malformedTags: z.number().min(0).max(1).default(0.04),
  syntaxError: z.number().min(0).max(1).default(0.04),
  wrongCode: z.number().min(0).max(1).default(0.05),
  wrongAnswer: z.number().min(0).max(1).default(0.05),
  selfCorrection: z.number().min(0).max(1).default(0.1),
});

const envOr = (name: string, fallback: string): string => process.env[name] || fallback;

export const OpenAITeacherOptionsSchema = z.object({
  /** API root; requests go to `${baseUrl}/chat/completions`. */
  baseUrl: z.url({ protocol: /^https?$/ }).default(() => envOr('OPENAI_BASE_URL', 'https://api.openai.com/v1')),
  model: z
    .string()
    .min(1)
    .default(() => envOr('OPENAI_MODEL', 'gpt-4o-mini')),
  /** Sent as a bearer token when set; a local server may need none. */
  apiKey: z
    .string()
    .optional()
    .transform((key) => key || process.env.OPENAI_API_KEY || undefined),
  /** Requests in flight at most, whatever the caller's concurrency. */
  concurrency: z.number().int().positive().default(4),
  /** Retries after the first attempt, on network errors, timeouts, 408, 409, 429 and 5xx. */
  maxRetries: z.number().int().nonnegative().default(5),
  initialBackoffMs: z.number().nonnegative().default(500),
  maxBackoffMs: z.number().nonnegative().default(20_000),
  /** Per request (per attempt). */
  timeoutMs: z.number().int().positive().default(120_000),
  temperature: z.number().min(0).max(2).default(0.2),
  seed: z.number().int().default(0),
});
