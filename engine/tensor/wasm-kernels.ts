// Kernels the wasm backend lacks or runs slowly, registered when it activates (the fallback path:
// the native backend has all of these natively).
import * as tf from '@tensorflow/tfjs';

/** Registers the wasm backend's extra and faster kernels; safe to call more than once. */
export function registerWasmKernels(): void {
  registerMissingWasmKernels();
  registerFastWasmMatMul();
  registerSharingWasmIdentity();
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

/**
 * Whether BatchMatMul on wasm takes the fast route below. On by default; turning it off gives
 * the stock kernel back, to measure what the route is worth.
 */
let fastMatMul = true;
export function setFastWasmMatMul(on: boolean): void {
  fastMatMul = on;
}

/** Below this many multiply-adds per matrix, tfjs's own batched loop beats one XNNPACK call per matrix. */
const XNN_MIN_WORK = 16_384;
/** ... and with fewer rows than this (one decoded token per sequence), too. */
const XNN_MIN_ROWS = 16;

// Internals of @tensorflow/tfjs-backend-wasm 4.22 (pinned exactly in package.json for this).
interface WasmBackendInternals {
  wasm: {
    cwrap(name: string, ret: null, args: string[]): (...args: unknown[]) => void;
    tfjs: { registerTensor(id: number, size: number, offset: number): void; disposeData(id: number): void };
  };
  dataIdMap: { get(dataId: object): { id: number; memoryOffset: number } };
  dataIdNextNumber: number;
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  disposeData(dataId: object): boolean;
}

let fastMatMulRegistered = false;

/**
 * tfjs-backend-wasm sends a matmul to XNNPACK only when it is a single 2-D product with neither
 * operand transposed; anything else (a transpose flag, which every matmul gradient has, or a batch
 * of matrices, which attention is) runs a scalar triple loop about 15x slower. This kernel keeps
 * the maths and changes the route: transposed operands are transposed once, explicitly, and a
 * batch is run as one XNNPACK product per matrix on views of the same wasm memory (no copies).
 */
function registerFastWasmMatMul(): void {
  if (fastMatMulRegistered) return;
  const original = tf.getKernel('BatchMatMul', 'wasm');
  const transposeKernel = tf.getKernel('Transpose', 'wasm');
  if (!original || !transposeKernel) return;
  fastMatMulRegistered = true;
  let wasmBatchMatMul: ((...args: unknown[]) => void) | null = null;
  const kernelFunc: tf.KernelFunc = (args) => {
    const { a, b } = args.inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
    const { transposeA, transposeB } = args.attrs as unknown as { transposeA: boolean; transposeB: boolean };
    const backend = args.backend as unknown as WasmBackendInternals;
    const aRank = a.shape.length;
    const bRank = b.shape.length;
    const batchA = a.shape.slice(0, -2).reduce((x, y) => x * y, 1);
    const batchB = b.shape.slice(0, -2).reduce((x, y) => x * y, 1);
    const M = transposeA ? a.shape[aRank - 1]! : a.shape[aRank - 2]!;
    const K = transposeA ? a.shape[aRank - 2]! : a.shape[aRank - 1]!;
    const N = transposeB ? b.shape[bRank - 2]! : b.shape[bRank - 1]!;
    const sameBatch = batchA === batchB && a.shape.slice(0, -2).join(',') === b.shape.slice(0, -2).join(',');
    const fast =
      fastMatMul && a.dtype === 'float32' && b.dtype === 'float32' && sameBatch && M >= XNN_MIN_ROWS && M * K * N >= XNN_MIN_WORK;
    if (!fast) return original.kernelFunc(args);
    if (batchA === 1 && !transposeA && !transposeB) return original.kernelFunc(args);
    wasmBatchMatMul ??= backend.wasm.cwrap('BatchMatMul', null, [
      'number',
      'array',
      'number',
      'number',
      'array',
      'number',
      'number',
      'number',
      'number',
    ]);
    const G = batchA;
    const temporaries: tf.TensorInfo[] = [];
    const asRows = (x: tf.TensorInfo, rows: number, cols: number, transpose: boolean): tf.TensorInfo => {
      if (!transpose) return x;
      // [G, cols, rows] -> [G, rows, cols]. When cols is a large power of two the plain 2-D
      // transpose writes at a 4 KiB-aligned stride and thrashes the cache (8x slower at 1024);
      // splitting cols into 4 blocks gives the same result about 2.5x faster.
      const split = cols >= 256 && cols % 4 === 0;
      const shape = split ? [G, 4, cols / 4, rows] : [G, cols, rows];
      const perm = split ? [0, 3, 1, 2] : [0, 2, 1];
      const t = transposeKernel.kernelFunc({
        inputs: { x: { dataId: x.dataId, shape, dtype: x.dtype } },
        backend: args.backend,
        attrs: { perm },
      }) as tf.TensorInfo;
      temporaries.push(t);
      return t;
    };
    const A = asRows(a, M, K, transposeA); // [G, M, K]
    const B = asRows(b, K, N, transposeB); // [G, K, N]
    const outShape = [...a.shape.slice(0, -2), M, N];
    const out = backend.makeOutput([G, M, N], 'float32');
    const aOffset = backend.dataIdMap.get(A.dataId).memoryOffset;
    const bOffset = backend.dataIdMap.get(B.dataId).memoryOffset;
    const outOffset = backend.dataIdMap.get(out.dataId).memoryOffset;
    const aShape = new Uint8Array(new Int32Array([1, M, K]).buffer);
    const bShape = new Uint8Array(new Int32Array([1, K, N]).buffer);
    for (let g = 0; g < G; g++) {
      // Views into the batch: registered with the C++ side only, never freed on their own.
      const ids = [backend.dataIdNextNumber++, backend.dataIdNextNumber++, backend.dataIdNextNumber++] as const;
      backend.wasm.tfjs.registerTensor(ids[0], M * K, aOffset + 4 * g * M * K);
      backend.wasm.tfjs.registerTensor(ids[1], K * N, bOffset + 4 * g * K * N);
      backend.wasm.tfjs.registerTensor(ids[2], M * N, outOffset + 4 * g * M * N);
      wasmBatchMatMul(ids[0], aShape, 3, ids[1], bShape, 3, false, false, ids[2]);
      for (const id of ids) backend.wasm.tfjs.disposeData(id);
    }
    for (const t of temporaries) backend.disposeData(t.dataId);
    return { ...out, shape: outShape };
  };
  tf.unregisterKernel('BatchMatMul', 'wasm');
  tf.registerKernel({ ...original, kernelFunc });
}

let sharingIdentityRegistered = false;

/**
 * On wasm, Identity (tf.clone) copies the data. tfjs clones every tensor it saves for the backward
 * pass, so a training step held a second copy of most of its activations (about 0.7 GB of the
 * 1.8 GB peak of the small preset). Tensors are immutable and the wasm backend counts references
 * (its Reshape shares data the same way), so the clone can share the data, as on the cpu backend.
 */
function registerSharingWasmIdentity(): void {
  if (sharingIdentityRegistered) return;
  const original = tf.getKernel('Identity', 'wasm');
  if (!original) return;
  sharingIdentityRegistered = true;
  const kernelFunc: tf.KernelFunc = (args) => {
    const { x } = args.inputs as { x: tf.TensorInfo };
    if (x.dtype === 'string') return original.kernelFunc(args);
    (args.backend as unknown as { incRef(dataId: object): void }).incRef(x.dataId);
    return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
  };
  tf.unregisterKernel('Identity', 'wasm');
  tf.registerKernel({ ...original, kernelFunc });
}
