import { ApplicationFailure } from '@temporalio/common';
import { ZodError } from 'zod';
import { BAD_INPUT, BadInputError, describeZodError } from '../domain/errors.js';
import { SandboxUnavailableError } from '../engine/sandbox/index.js';

/**
 * Bad input will be just as bad on the next attempt: fail the activity for good, with the
 * readable message as the failure a person sees in the UI.
 */
export function asActivityFailure(err: unknown): unknown {
  // A machine with no sandbox stays without one: another attempt here would fail the same way.
  if (err instanceof BadInputError || err instanceof SandboxUnavailableError) {
    return ApplicationFailure.create({ message: err.message, type: err.name, nonRetryable: true });
  }
  if (err instanceof ZodError) {
    return ApplicationFailure.create({ message: `invalid input: ${describeZodError(err)}`, type: BAD_INPUT, nonRetryable: true });
  }
  return err;
}

/** Runs an activity body, turning bad input into a failure that is not retried. */
export async function guarded<T>(body: () => Promise<T>): Promise<T> {
  try {
    return await body();
  } catch (err) {
    throw asActivityFailure(err);
  }
}
