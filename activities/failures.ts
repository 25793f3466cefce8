import { ApplicationFailure } from '@temporalio/common';
import { ZodError } from 'zod';
import { BadInputError } from '../datasets/errors.js';

/**
 * Bad input will be just as bad on the next attempt: fail the activity for good, with the
 * readable message as the failure a person sees in the UI.
 */
export function asActivityFailure(err: unknown): unknown {
  if (err instanceof BadInputError) {
    return ApplicationFailure.create({ message: err.message, type: err.name, nonRetryable: true });
  }
  if (err instanceof ZodError) {
    const message = err.issues.map((i) => `${i.path.join('.') || '(input)'}: ${i.message}`).join('; ');
    return ApplicationFailure.create({ message: `invalid input: ${message}`, type: 'BadInputError', nonRetryable: true });
  }
  return err;
}
