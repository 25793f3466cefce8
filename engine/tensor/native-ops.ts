// Raw libtensorflow ops for hand-written hot paths on the native backend (tfjs-node, backend name
// "tensorflow"): one eager op per call, with no tfjs kernel wrapper around it, no scalar tensor
// uploaded per call and no tape. Used where the maths is known in full (the optimizer's update,
// the hand-written gradients of the training forward); callers branch on nativeOps() !== null and
// keep a tfjs path for the other backends.
import { tf } from './backend.js';

// The parts of tfjs-node's binding and backend the raw ops use (internals of tfjs-node 4.22,
// pinned exactly in package.json for this).
export interface Meta {
  id: number;
  shape: number[];
  dtype: number;
}
export interface Attr {
  name: string;
  type: number;
  value: boolean | number | string | number[];
}
export interface Binding {
  executeOp(name: string, attrs: Attr[], inputs: number[], numOutputs: number): Meta[];
  createTensor(shape: number[], dtype: number, values: Int32Array | Float32Array): number;
  deleteTensor(id: number): void;
  TF_FLOAT: number;
  TF_INT32: number;
  TF_BOOL: number;
  TF_ATTR_TYPE: number;
  TF_ATTR_INT: number;
  TF_ATTR_BOOL: number;
  TF_ATTR_STRING: number;
}
export interface NodeBackend {
  binding: Binding;
  getInputTensorIds(tensors: tf.TensorInfo[]): number[];
  createOutputTensor(meta: Meta): tf.Tensor;
}

/** The dimensions of one decoder layer's pass, for the raw-op paths. */
export interface LayerShape {
  B: number;
  T: number;
  hidden: number;
  intermediate: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  eps: number;
}

/** Per-op timing of raw ops, for measurement only (RETOOL_NATIVE_OPS_PROFILE=1). */
export const PROF: Map<string, { n: number; ms: number }> | null = process.env.RETOOL_NATIVE_OPS_PROFILE ? new Map() : null;

/**
 * A scope of raw float32 ops: every handle it makes is freed by close(), except those handed to
 * tfjs with tensor(). Handles of tfjs tensors (from id()) belong to tfjs and are never freed here.
 */
export class NativeScope {
  private readonly live = new Map<number, Meta>();
  private readonly b: Binding;
  private readonly T: Attr;
  private readonly int32s = new Map<string, number>();

  constructor(private readonly be: NodeBackend) {
    this.b = be.binding;
    this.T = { name: 'T', type: this.b.TF_ATTR_TYPE, value: this.b.TF_FLOAT };
  }

  /** The handle of a tfjs tensor (float32). */
  id(t: tf.TensorInfo): number {
    return this.be.getInputTensorIds([t])[0]!;
  }

  scalar(value: number): number {
    const id = this.b.createTensor([], this.b.TF_FLOAT, Float32Array.of(value));
    this.live.set(id, { id, shape: [], dtype: this.b.TF_FLOAT });
    return id;
  }

  ints(values: readonly number[], scalar = false): number {
    const key = (scalar ? 's' : 'v') + values.join(',');
    let id = this.int32s.get(key);
    if (id === undefined) {
      id = this.b.createTensor(scalar ? [] : [values.length], this.b.TF_INT32, Int32Array.from(values));
      this.int32s.set(key, id);
      this.live.set(id, { id, shape: [], dtype: this.b.TF_INT32 });
    }
    return id;
  }

  op(name: string, inputs: number[], attrs: Attr[] = [this.T], n = 1): number[] {
    const t0 = PROF ? performance.now() : 0;
    const out = this.b.executeOp(name, attrs, inputs, n);
    if (PROF) {
      const key = `${name} ${inputs.map((i) => JSON.stringify(this.live.get(i)?.shape ?? '?')).join('x')} ${attrs
        .filter((a) => a.type === this.b.TF_ATTR_BOOL)
        .map((a) => (a.value ? 1 : 0))
        .join('')}`;
      const e = PROF.get(key) ?? { n: 0, ms: 0 };
      e.n++;
      e.ms += performance.now() - t0;
      PROF.set(key, e);
    }
    for (const m of out) this.live.set(m.id, m);
    return out.map((m) => m.id);
  }

  one(name: string, inputs: number[], attrs?: Attr[]): number {
    return this.op(name, inputs, attrs)[0]!;
  }

  mul(x: number, y: number): number {
    return this.one('Mul', [x, y]);
  }
  add(x: number, y: number): number {
    return this.one('AddV2', [x, y]);
  }
  sub(x: number, y: number): number {
    return this.one('Sub', [x, y]);
  }
  div(x: number, y: number): number {
    return this.one('RealDiv', [x, y]);
  }
  unary(name: 'Square' | 'Sqrt' | 'Rsqrt' | 'Sigmoid' | 'Neg' | 'Exp' | 'L2Loss' | 'Softmax', x: number): number {
    return this.one(name, [x]);
  }
  addN(xs: number[]): number {
    return xs.length === 1 ? xs[0]! : this.one('AddN', xs, [{ name: 'N', type: this.b.TF_ATTR_INT, value: xs.length }, this.T]);
  }
  private reduceAttrs(keepDims: boolean): Attr[] {
    return [
      { name: 'keep_dims', type: this.b.TF_ATTR_BOOL, value: keepDims },
      this.T,
      { name: 'Tidx', type: this.b.TF_ATTR_TYPE, value: this.b.TF_INT32 },
    ];
  }
  sum(x: number, axes: number[], keepDims = false): number {
    return this.one('Sum', [x, this.ints(axes)], this.reduceAttrs(keepDims));
  }
  mean(x: number, axes: number[], keepDims = false): number {
    return this.one('Mean', [x, this.ints(axes)], this.reduceAttrs(keepDims));
  }
  reshape(x: number, shape: number[]): number {
    return this.one('Reshape', [x, this.ints(shape)], [this.T, { name: 'Tshape', type: this.b.TF_ATTR_TYPE, value: this.b.TF_INT32 }]);
  }
  transpose(x: number, perm: number[]): number {
    return this.one('Transpose', [x, this.ints(perm)], [this.T, { name: 'Tperm', type: this.b.TF_ATTR_TYPE, value: this.b.TF_INT32 }]);
  }
  matmul(x: number, y: number, transposeA = false, transposeB = false): number {
    return this.one(
      'MatMul',
      [x, y],
      [
        this.T,
        { name: 'transpose_a', type: this.b.TF_ATTR_BOOL, value: transposeA },
        { name: 'transpose_b', type: this.b.TF_ATTR_BOOL, value: transposeB },
      ],
    );
  }
  bmm(x: number, y: number, adjX = false, adjY = false): number {
    return this.one(
      'BatchMatMulV2',
      [x, y],
      [this.T, { name: 'adj_x', type: this.b.TF_ATTR_BOOL, value: adjX }, { name: 'adj_y', type: this.b.TF_ATTR_BOOL, value: adjY }],
    );
  }

  split(x: number, sizes: number[], axis: number): number[] {
    const attrs = [
      { name: 'num_split', type: this.b.TF_ATTR_INT, value: sizes.length },
      this.T,
      { name: 'Tlen', type: this.b.TF_ATTR_TYPE, value: this.b.TF_INT32 },
    ];
    return this.op('SplitV', [x, this.ints(sizes), this.ints([axis], true)], attrs, sizes.length);
  }
  concat(xs: number[], axis: number): number {
    const attrs = [
      { name: 'N', type: this.b.TF_ATTR_INT, value: xs.length },
      { name: 'Tidx', type: this.b.TF_ATTR_TYPE, value: this.b.TF_INT32 },
      this.T,
    ];
    return this.one('ConcatV2', [...xs, this.ints([axis], true)], attrs);
  }
  /** Roll(x, shift, axis): element i moves to i + shift (mod the axis' length). */
  roll(x: number, shift: number, axis: number): number {
    const attrs = [
      this.T,
      { name: 'Tshift', type: this.b.TF_ATTR_TYPE, value: this.b.TF_INT32 },
      { name: 'Taxis', type: this.b.TF_ATTR_TYPE, value: this.b.TF_INT32 },
    ];
    return this.one('Roll', [x, this.ints([shift], true), this.ints([axis], true)], attrs);
  }

  /** Hands a handle to tfjs as a tensor that tfjs then owns; close() leaves it alone. */
  tensor<R extends tf.Rank = tf.Rank>(id: number): tf.Tensor<R> {
    const meta = this.live.get(id);
    if (!meta) {
      // A handle of a tfjs tensor (or one handed over already): give tfjs its own reference.
      const copy = this.b.executeOp('Identity', [this.T], [id], 1)[0]!;
      return this.be.createOutputTensor(copy) as tf.Tensor<R>;
    }
    this.live.delete(id);
    return this.be.createOutputTensor(meta) as tf.Tensor<R>;
  }

  close(): void {
    for (const id of this.live.keys()) this.b.deleteTensor(id);
    this.live.clear();
    this.int32s.clear();
  }
}

/** A raw-op scope on the native backend, or null on any other. Close it in a finally. */
export function nativeScope(): NativeScope | null {
  if (tf.getBackend() !== 'tensorflow') return null;
  return new NativeScope(tf.backend() as unknown as NodeBackend);
}
