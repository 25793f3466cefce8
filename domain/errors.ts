import type { ZodError } from 'zod';

/** A zod error as one line: each issue's path and message (configs, activity inputs, CLI options). */
export function describeZodError(err: ZodError): string {
  return err.issues.map((i) => `${i.path.length ? i.path.join('.') : '(input)'}: ${i.message}`).join('; ');
}

/** The failure type of bad input on Temporal: activities and workflows fail with it, never retried. */
export const BAD_INPUT = 'BadInputError';

/**
 * Errors a user can fix by changing their input. The CLI prints the message alone (no stack)
 * and exits 2; activities turn them into non-retryable Temporal failures, so a bad file fails
 * once instead of being retried for hours.
 */
export class BadInputError extends Error {
  override readonly name = BAD_INPUT;
}

/** The DuckDB file is locked by another process (DuckDB allows a single writer process). */
export class StoreBusyError extends Error {
  override readonly name = 'StoreBusyError';
}
