// The cold-start teachers' settings. Zod only, so the stage's options (and through them the
// pipeline config, which workflow code reads) can build on them without loading a teacher.
import { z } from 'zod';

export const TraceModeSchema = z.enum(['code', 'text']);

/**
 * How the built-in teacher writes. `terse`: code first, answer last, nothing else (what a tiny
 * model learns fastest). `explained`: a one-line plan in words, the code (or the worked steps),
 * a sentence on what it printed, and the answer in the ReTool prompt's `<answer>` block: the shape
 * a pretrained instruct model is asked for and can learn from. `paper`: the paper's mix, each
 * problem drawing a strategy (by hand, by hand then checked, words then code, code first, a
 * search that may time out or fail): see paper-style.ts.
 */
export const TraceStyleSchema = z.enum(['terse', 'explained', 'paper']).default('terse');

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
  /**
   * The environment variable that holds the key, read where the teacher runs (the worker), so a
   * pipeline config names the key without carrying it into workflow history.
   */
  apiKeyEnv: z
    .string()
    .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'an environment variable name')
    .optional(),
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
