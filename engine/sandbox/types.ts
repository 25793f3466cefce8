import { z } from 'zod';

export const LanguageSchema = z.enum(['python', 'javascript']);
export type Language = z.infer<typeof LanguageSchema>;

/** Per-run limits. Defaults follow the verl recipe's SandboxFusion settings where it has one. */
export const SandboxLimitsSchema = z.object({
  /** Wall clock. */
  timeoutMs: z.number().int().positive().max(600_000).default(10_000),
  /** CPU time; the run is stopped with status `timeout` past it. */
  cpuSeconds: z.number().int().positive().max(600).default(10),
  /** Address space (RLIMIT_AS) for Python; V8 heap + data segment for JavaScript. */
  memoryMb: z.number().int().min(64).max(65_536).default(1024),
  /** Processes and threads of the run's uid (RLIMIT_NPROC), the pool's server included. */
  maxProcesses: z.number().int().min(4).max(4096).default(64),
  /** Largest file the code may write (RLIMIT_FSIZE). */
  maxFileBytes: z
    .number()
    .int()
    .positive()
    .default(16 * 1024 * 1024),
  /** Per stream (stdout, stderr); past it the run is killed and `truncated` set. */
  maxOutputBytes: z
    .number()
    .int()
    .positive()
    .max(64 * 1024 * 1024)
    .default(1024 * 1024),
});
export type SandboxLimits = z.infer<typeof SandboxLimitsSchema>;

export const ExecRequestSchema = z.object({
  lang: LanguageSchema.default('python'),
  code: z.string().max(16 * 1024 * 1024),
  stdin: z.string().default(''),
  limits: SandboxLimitsSchema.partial().default({}),
  /** Seeds Python's random and numpy.random (and JavaScript's Math.random): same code and seed, same output. */
  seed: z
    .number()
    .int()
    .min(0)
    .max(2 ** 32 - 2)
    .default(0),
});
export type ExecRequest = z.input<typeof ExecRequestSchema>;

export const ExecStatusSchema = z.enum(['ok', 'error', 'timeout', 'memory', 'killed', 'sandbox_error']);
export type ExecStatus = z.infer<typeof ExecStatusSchema>;

export const ExecResultSchema = z.object({
  status: ExecStatusSchema,
  exitCode: z.number().int().nullable(),
  /** Decoded as UTF-8 (invalid bytes become U+FFFD) with NULs and terminal control sequences removed. */
  stdout: z.string(),
  stderr: z.string(),
  durationMs: z.number().nonnegative(),
  truncated: z.boolean(),
  /** What stopped the run when it did not end by itself: timeout, cpu, output, signal name, ... */
  reason: z.string().nullable().default(null),
});
export type ExecResult = z.infer<typeof ExecResultSchema>;
