import { availableParallelism } from 'node:os';
import { createRequire } from 'node:module';
import { existsSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { BadInputError } from '../../domain/errors.js';
import { BACKENDS, parseBackendName, type BackendName } from './backend-names.js';
import { registerWasmKernels } from './wasm-kernels.js';

export { BACKENDS, parseBackendName, type BackendName };

export interface BackendInfo {
  name: BackendName;
  /** The tfjs version. */
  tfjs: string;
  /** libtensorflow's version on the native backends, else null. */
  tensorflow: string | null;
  /** Where the kernels run: a native backend without a visible GPU computes on the CPU. */
  device: 'gpu' | 'cpu';
  /** Threads one kernel may use. */
  threads: number;
}

const require = createRequire(import.meta.url);
const NATIVE_PACKAGES = { 'node-gpu': '@tensorflow/tfjs-node-gpu', node: '@tensorflow/tfjs-node' } as const;
let chosen: Promise<BackendName> | null = null;
let nativeLoadError: string | null = null;

/**
 * Whether the package's addon was built. Importing a package without one fails only after it has
 * registered its kernels, which would then clash with the other native package's.
 */
export function addonBuilt(name: 'node-gpu' | 'node'): boolean {
  try {
    const packageDir = dirname(require.resolve(`${NATIVE_PACKAGES[name]}/package.json`));
    return readdirSync(join(packageDir, 'lib')).some((napi) => existsSync(join(packageDir, 'lib', napi, 'tfjs_binding.node')));
  } catch {
    return false;
  }
}

/** The backends worth comparing here: the native one that was built (one loads per process) and wasm. */
export function availableBackends(): BackendName[] {
  return [...(['node-gpu', 'node'] as const).filter(addonBuilt).slice(0, 1), 'wasm'];
}

async function loadNative(name: 'node-gpu' | 'node'): Promise<boolean> {
  if (!addonBuilt(name)) {
    nativeLoadError = `${NATIVE_PACKAGES[name]} has no built addon`;
    return false;
  }
  // libtensorflow logs its CPU features and oneDNN notices at load unless told otherwise.
  process.env.TF_CPP_MIN_LOG_LEVEL ??= '2';
  // Without it TensorFlow takes nearly all GPU memory at the first op, whatever the model needs.
  if (name === 'node-gpu') process.env.TF_FORCE_GPU_ALLOW_GROWTH ??= 'true';
  try {
    await import(NATIVE_PACKAGES[name]);
    return true;
  } catch (err) {
    nativeLoadError = String((err as Error).message ?? err).split('\n')[0]!;
    return false;
  }
}

/** Makes `name` the active backend; false when it cannot load here. Tensors do not move between backends. */
export async function useBackend(name: BackendName): Promise<boolean> {
  switch (name) {
    case 'node-gpu':
    case 'node':
      // Both packages register as "tensorflow"; only one addon can be loaded in a process.
      if (tf.findBackend('tensorflow')) return loadedNative() === name && tf.setBackend('tensorflow');
      return (await loadNative(name)) && tf.setBackend('tensorflow');
    case 'wasm': {
      const wasm = await import('@tensorflow/tfjs-backend-wasm');
      wasm.setWasmPaths(`${dirname(require.resolve('@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm'))}/`);
      const ok = await tf.setBackend('wasm');
      if (ok) registerWasmKernels();
      return ok;
    }
    case 'cpu':
      return tf.setBackend('cpu');
  }
}

/** Which native package holds the "tensorflow" backend of this process, if any. */
function loadedNative(): 'node-gpu' | 'node' | null {
  const backend = tf.findBackend('tensorflow') as { isGPUPackage?: boolean } | null;
  if (!backend) return null;
  return backend.isGPUPackage ? 'node-gpu' : 'node';
}

/**
 * The backend of this process, chosen once: `forced` (RETOOL_BACKEND, or --backend) or else the
 * fastest that loads. Falling back from native says so in one line on stderr.
 */
export function initBackend(forced = process.env.RETOOL_BACKEND): Promise<BackendName> {
  chosen ??= (async () => {
    if (forced) {
      const name = parseBackendName(forced);
      if (!(await useBackend(name)))
        throw new BadInputError(
          `RETOOL_BACKEND=${forced}: that backend did not load here${nativeLoadError ? ` (${nativeLoadError})` : ''}`,
        );
      return name;
    }
    for (const name of BACKENDS) {
      if (!(await useBackend(name))) continue;
      if (name === 'wasm' || name === 'cpu')
        console.error(
          `retool: the native TensorFlow backend is not built here (${nativeLoadError ?? 'not installed'}); computing on ${name}, ` +
            'several times slower. `npm run setup` builds it and says what is missing.',
        );
      return name;
    }
    throw new Error('no tfjs backend could be initialised');
  })();
  return chosen;
}

/** What the active backend is: its name, versions, device and threads. */
export function backendInfo(): BackendInfo {
  const active = tf.getBackend();
  if (active === 'tensorflow') {
    const native = tf.backend() as unknown as { isUsingGpuDevice?: boolean; binding?: { TF_Version?: string } };
    return {
      name: loadedNative() ?? 'node',
      tfjs: tf.version.tfjs,
      tensorflow: native.binding?.TF_Version ?? null,
      device: native.isUsingGpuDevice ? 'gpu' : 'cpu',
      // libtensorflow sizes its intra-op pool from this variable, else from the cores it may use.
      threads: Number(process.env.TF_NUM_INTRAOP_THREADS) || availableParallelism(),
    };
  }
  const name = parseBackendName(active ?? 'cpu', 'tfjs backend');
  // tfjs-backend-wasm has no threads under Node; the cpu backend is plain JavaScript.
  return { name, tfjs: tf.version.tfjs, tensorflow: null, device: 'cpu', threads: 1 };
}

/** One line for logs and the runs table, e.g. "node (TensorFlow 2.12.1, cpu, 2 threads)". */
export function backendLabel(info = backendInfo()): string {
  const parts = [
    info.tensorflow ? `TensorFlow ${info.tensorflow}` : `tfjs ${info.tfjs}`,
    info.device,
    `${info.threads} thread${info.threads === 1 ? '' : 's'}`,
  ];
  return `${info.name} (${parts.join(', ')})`;
}

export { tf };
