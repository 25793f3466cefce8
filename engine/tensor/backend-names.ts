// Backend names without tfjs, so the CLI can check a --backend flag without loading it.
import { BadInputError } from '../../domain/errors.js';

/**
 * The tfjs backends, fastest first: libtensorflow with CUDA (tfjs-node-gpu), libtensorflow on the
 * CPU (tfjs-node), WebAssembly (one thread), plain JavaScript. The native two are built by
 * `npm install` (worker/native-backend.mjs) where the machine allows it.
 */
export const BACKENDS = ['node-gpu', 'node', 'wasm', 'cpu'] as const;
export type BackendName = (typeof BACKENDS)[number];
/** Earlier names, still accepted: tfjs calls both native backends "tensorflow". */
const ALIASES: Record<string, BackendName> = { tensorflow: 'node', 'tensorflow-gpu': 'node-gpu' };

/** Accepts a backend's name (or an earlier alias); throws naming the choices otherwise. */
export function parseBackendName(value: string, where = 'RETOOL_BACKEND'): BackendName {
  const name = ALIASES[value] ?? value;
  if (!(BACKENDS as readonly string[]).includes(name)) throw new BadInputError(`${where}=${value}: choose one of ${BACKENDS.join(', ')}`);
  return name as BackendName;
}
