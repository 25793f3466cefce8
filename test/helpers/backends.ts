import { afterAll, beforeAll, describe, expect } from 'vitest';
import { availableBackends, initBackend, useBackend, type BackendName } from '../../engine/tensor/backend.js';

/**
 * The backends the numerical tests run on: the native one `npm install` built here (only one can
 * load in a process) and wasm, the fallback, always. CI checks that the native one is built.
 */
export const TEST_BACKENDS: BackendName[] = availableBackends();

/** Runs the block once per test backend, switching to it first and back to the default after. */
export function describeOnEachBackend(title: string, body: (backend: BackendName) => void): void {
  describe.each(TEST_BACKENDS)(`${title} (%s)`, (backend) => {
    beforeAll(async () => {
      await initBackend();
      expect(await useBackend(backend)).toBe(true);
    });
    afterAll(async () => {
      await useBackend(await initBackend());
    });
    body(backend);
  });
}
