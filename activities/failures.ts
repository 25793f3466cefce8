import { ApplicationFailure } from '@temporalio/common';
import { ZodError } from 'zod';
import { BAD_INPUT, BadInputError, describeZodError } from '../domain/errors.js';
import { SandboxUnavailableError } from '../engine/sandbox/index.js';

/** An error as Temporal should see it: its message, its type, and whether another attempt can help. */
export interface FailureDescription {
  message: string;
  type: string;
  retryable: boolean;
}

export function describeFailure(err: unknown): FailureDescription {
  // Bad input will be just as bad on the next attempt, and a machine with no sandbox stays without one.
  if (err instanceof BadInputError || err instanceof SandboxUnavailableError)
    return { message: err.message, type: err.name, retryable: false };
  if (err instanceof ZodError) return { message: `invalid input: ${describeZodError(err)}`, type: BAD_INPUT, retryable: false };
  const e = err instanceof Error ? err : new Error(String(err));
  return { message: e.message, type: e.name, retryable: true };
}

/**
 * Fails the activity for good on input that cannot succeed, with the readable message as the
 * failure a person sees in the UI; anything else is passed on to be retried.
 */
export function asActivityFailure(err: unknown): unknown {
  const failure = describeFailure(err);
  return failure.retryable ? err : ApplicationFailure.create({ message: failure.message, type: failure.type, nonRetryable: true });
}

/** Runs an activity body, turning bad input into a failure that is not retried. */
export async function guarded<T>(body: () => Promise<T>): Promise<T> {
  try {
    return await body();
  } catch (err) {
    throw asActivityFailure(err);
  }
}
