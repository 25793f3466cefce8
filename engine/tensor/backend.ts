import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import * as tf from '@tensorflow/tfjs';

export const BACKEND_ORDER = ['tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'] as const;
export type BackendName = (typeof BACKEND_ORDER)[number];

const require = createRequire(import.meta.url);
let chosen: Promise<BackendName> | null = null;

/** tfjs-node(-gpu) are optional: their install downloads libtensorflow, which may be impossible. */
async function tryImport(specifier: string): Promise<boolean> {
  try {
    await import(specifier);
    return true;
  } catch {
    return false;
  }
}

async function activate(name: BackendName): Promise<boolean> {
  switch (name) {
    case 'tensorflow-gpu':
      // tfjs-node-gpu registers itself as "tensorflow"; only CUDA tells the two apart.
      return (await tryImport('@tensorflow/tfjs-node-gpu')) && tf.setBackend('tensorflow');
    case 'tensorflow':
      return (await tryImport('@tensorflow/tfjs-node')) && tf.setBackend('tensorflow');
    case 'wasm': {
      if (!(await tryImport('@tensorflow/tfjs-backend-wasm'))) return false;
      const wasm = await import('@tensorflow/tfjs-backend-wasm');
      wasm.setWasmPaths(`${dirname(require.resolve('@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm'))}/`);
      const ok = await tf.setBackend('wasm');
      if (ok) registerMissingWasmKernels();
      return ok;
    }
    case 'cpu':
      return tf.setBackend('cpu');
  }
}

/**
 * The best backend that loads, once per process: tfjs-node-gpu, tfjs-node, wasm, cpu.
 * RETOOL_BACKEND=wasm (or cpu, tensorflow, tensorflow-gpu) forces one and fails if it cannot load.
 */
export function initBackend(forced = process.env.RETOOL_BACKEND): Promise<BackendName> {
  chosen ??= (async () => {
    if (forced) {
      if (!(BACKEND_ORDER as readonly string[]).includes(forced)) throw new Error(`RETOOL_BACKEND=${forced}: choose one of ${BACKEND_ORDER.join(', ')}`);
      if (!(await activate(forced as BackendName))) throw new Error(`RETOOL_BACKEND=${forced}: that backend did not load`);
      return forced as BackendName;
    }
    for (const name of BACKEND_ORDER) if (await activate(name)) return name;
    throw new Error('no tfjs backend could be initialised');
  })();
  return chosen;
}

let wasmKernelsRegistered = false;

/**
 * The wasm backend has no UnsortedSegmentSum, which tfjs uses for the gradient of gather (the
 * embedding lookup). A plain scatter-add on the heap, registered as that kernel, keeps the
 * model's maths as it is.
 */
function registerMissingWasmKernels(): void {
  if (wasmKernelsRegistered || tf.getKernel('UnsortedSegmentSum', 'wasm')) return;
  wasmKernelsRegistered = true;
  tf.registerKernel({
    kernelName: 'UnsortedSegmentSum',
    backendName: 'wasm',
    kernelFunc: ({ inputs, backend, attrs }) => {
      const { x, segmentIds } = inputs as { x: tf.TensorInfo; segmentIds: tf.TensorInfo };
      const { numSegments } = attrs as unknown as { numSegments: number };
      const wasm = backend as unknown as {
        readSync(id: object): Float32Array | Int32Array;
        makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
        typedArrayFromHeap(t: tf.TensorInfo): Float32Array | Int32Array;
      };
      const rowSize = x.shape.slice(1).reduce((a, b) => a * b, 1);
      const values = wasm.readSync(x.dataId);
      const ids = wasm.readSync(segmentIds.dataId);
      const out = wasm.makeOutput([numSegments, ...x.shape.slice(1)], x.dtype);
      const target = wasm.typedArrayFromHeap(out);
      target.fill(0);
      for (let row = 0; row < ids.length; row++) {
        const seg = ids[row]!;
        if (seg < 0 || seg >= numSegments) continue;
        const from = row * rowSize;
        const to = seg * rowSize;
        for (let j = 0; j < rowSize; j++) target[to + j]! += values[from + j]!;
      }
      return out;
    },
  });
}

export { tf };
