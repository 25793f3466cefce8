// Kernels and a fused inference path for the native backend (tfjs-node, backend name
// "tensorflow"). libtensorflow runs one eager op in about 10 us, but tfjs-node wraps most ops in
// more work than that: every Reshape, Transpose, reduction, Concat or Slice first builds its shape
// or axis argument as a fresh tfjs tensor, uploads it and frees it, and every 2-D matMul becomes
// three Reshapes and a BatchMatMul. Decoding one token of the small preset is about 560 such ops,
// so per-op overhead, not arithmetic, set its speed. nativeInference() runs a whole no-gradient
// forward pass (decoding, log-probs) as raw libtensorflow ops on fused weights, with its constant
// arguments kept as libtensorflow tensors keyed by value, handing back to tfjs only the tensors it
// returns.
import { tf } from './backend.js';
import type { Attr, Binding, LayerShape, Meta, NodeBackend } from './native-ops.js';

export function isNativeBackend(): boolean {
  return tf.getBackend() === 'tensorflow';
}

let inferenceOn = true;
/** Turns the fused no-gradient pass off (on by default), to compare or measure against it. */
export function setNativeInference(on: boolean): void {
  inferenceOn = on;
}
/** Whether forward passes without gradients take nativeInference(). */
export function nativeInferenceActive(): boolean {
  return inferenceOn && isNativeBackend();
}

function nodeBackend(): NodeBackend {
  return tf.backend() as unknown as NodeBackend;
}

/** Constant tensors (shapes, axes, permutations, epsilons) kept in libtensorflow, by value. */
const constants = new Map<string, number>();
let maxConstants = 4096;

/** How many constants the cache holds before it is emptied (small in tests, to empty it often); returns the old limit. */
export function setNativeConstantLimit(n: number): number {
  const old = maxConstants;
  maxConstants = n;
  return old;
}

/**
 * Empties the constant cache when it is full. Only between passes: a pass holds the ids of the
 * constants it fetched (an axis, the norm's epsilon) until its end, and a decoder's batch and
 * length change from step to step, so new shapes arrive mid-pass; freeing then broke the pass.
 */
function trimConstants(b: Binding): void {
  if (constants.size < maxConstants) return;
  for (const old of constants.values()) b.deleteTensor(old);
  constants.clear();
}

function int32Constant(b: Binding, values: readonly number[], scalar = false): number {
  const key = (scalar ? 's' : 'v') + values.join(',');
  let id = constants.get(key);
  if (id === undefined) {
    id = b.createTensor(scalar ? [] : [values.length], b.TF_INT32, Int32Array.from(values));
    constants.set(key, id);
  }
  return id;
}

function floatConstant(b: Binding, value: number): number {
  const key = `f${value}`;
  let id = constants.get(key);
  if (id === undefined) {
    id = b.createTensor([], b.TF_FLOAT, Float32Array.of(value));
    constants.set(key, id);
  }
  return id;
}

const typeAttr = (b: Binding, name: string, dtype: number): Attr => ({ name, type: b.TF_ATTR_TYPE, value: dtype });

/** The weights of one layer, fused and laid out for the no-gradient pass (see DecoderModel). */
export interface NativeLayerWeights {
  /** [H, (nH + 2 nKV) hd]: q (scaled by 1/sqrt(hd)), k, v projections, input norm folded in. */
  qkv: tf.Tensor2D;
  /** [(nH + 2 nKV) hd] biases, q's scaled too. */
  qkvBias: tf.Tensor1D;
  /** [nH hd, H] */
  o: tf.Tensor2D;
  /** [H, 2 I]: gate then up, post-attention norm folded in. */
  gateUp: tf.Tensor2D;
  /** [I, H] */
  down: tf.Tensor2D;
}

export interface NativeWeights {
  embed: tf.Tensor2D; // [V, H]
  layers: NativeLayerWeights[];
  /** [H, V], the final norm folded in. */
  head: tf.Tensor2D;
  /** [H], the final norm's weight (for the hidden state returned). */
  finalNorm: tf.Tensor1D;
}

export interface NativeInferenceInput {
  /** [B, T] int32 */
  ids: tf.Tensor2D;
  /** [B, 1, rep T, S] additive mask, the same for every layer. */
  bias: tf.Tensor4D;
  /** [B, nH + 2 nKV, T, hd]: cos for the q and k heads, 1 for the v heads. */
  cos: tf.Tensor4D;
  /** [B, nH + 2 nKV, T, hd]: [-sin, sin] for q and k (rotate-half as a roll by hd/2), 0 for v. */
  signedSin: tf.Tensor4D;
  /** Per layer [B, nKV, S0, hd], or none. */
  cacheK?: tf.Tensor4D[];
  cacheV?: tf.Tensor4D[];
}

export interface NativeInferenceShape extends LayerShape {
  vocab: number;
}

/**
 * The mask and rotary tables of nativeInference, computed in JavaScript (a few kilobytes when
 * decoding) rather than by a score of small tfjs ops. `positions` [B, T] are the new tokens',
 * `keyPositions` and `keyValid` [B, S] every key's (cached then new).
 */
export function nativeTables(
  positions: ArrayLike<number>,
  keyPositions: ArrayLike<number>,
  keyValid: ArrayLike<number>,
  s: NativeInferenceShape & { S: number; invFreq: ArrayLike<number> },
): { bias: tf.Tensor4D; cos: tf.Tensor4D; signedSin: tf.Tensor4D } {
  const { B, T, S, headDim: hd } = s;
  const rep = s.heads / s.kvHeads;
  const G = s.heads + 2 * s.kvHeads;
  const rotated = s.heads + s.kvHeads;
  const half = hd / 2;
  const bias = new Float32Array(B * rep * T * S);
  const cos = new Float32Array(B * G * T * hd);
  const sin = new Float32Array(B * G * T * hd);
  for (let b = 0; b < B; b++)
    for (let t = 0; t < T; t++) {
      const p = positions[b * T + t]!;
      for (let r = 0; r < rep; r++) {
        const row = ((b * rep + r) * T + t) * S;
        for (let k = 0; k < S; k++) {
          const allowed = keyValid[b * S + k]! > 0.5 && keyPositions[b * S + k]! <= p;
          bias[row + k] = allowed ? 0 : -1e9;
        }
      }
      for (let i = 0; i < half; i++) {
        // The same float32 products as the tfjs path: position * inverse frequency.
        const angle = Math.fround(Math.fround(p) * s.invFreq[i]!);
        const c = Math.cos(angle);
        const sn = Math.sin(angle);
        for (let g = 0; g < G; g++) {
          const at = ((b * G + g) * T + t) * hd;
          const on = g < rotated;
          cos[at + i] = on ? c : 1;
          cos[at + half + i] = on ? c : 1;
          sin[at + i] = on ? -sn : 0;
          sin[at + half + i] = on ? sn : 0;
        }
      }
    }
  return {
    bias: tf.tensor4d(bias, [B, 1, rep * T, S]),
    cos: tf.tensor4d(cos, [B, G, T, hd]),
    signedSin: tf.tensor4d(sin, [B, G, T, hd]),
  };
}

/**
 * A forward pass without gradients as raw libtensorflow ops: 30-odd ops a layer against the
 * 60-odd tfjs kernels (and their hidden constant tensors) of the differentiable forward.
 * Returns logits [B, T, V], the normed hidden state [B, T, H] and, per layer, the keys and values
 * of every position [B, nKV, S, hd], all as tfjs tensors; every intermediate is freed here, a
 * layer's as soon as the layer is done.
 */
export function nativeInference(
  w: NativeWeights,
  input: NativeInferenceInput,
  s: NativeInferenceShape,
  keepCache: boolean,
): { logits: tf.Tensor3D; hidden: tf.Tensor3D; k: tf.Tensor4D[]; v: tf.Tensor4D[] } {
  const be = nodeBackend();
  const b = be.binding;
  trimConstants(b);
  const F = b.TF_FLOAT;
  const T_F = typeAttr(b, 'T', F);
  const live: number[] = [];
  const op = (name: string, attrs: Attr[], inputs: number[], n = 1): number[] => {
    const out = b.executeOp(name, attrs, inputs, n).map((m) => m.id);
    live.push(...out);
    return out;
  };
  const one = (name: string, attrs: Attr[], inputs: number[]) => op(name, attrs, inputs)[0]!;
  const metaOf = new Map<number, Meta>();
  const opMeta = (name: string, attrs: Attr[], inputs: number[]): Meta => {
    const m = b.executeOp(name, attrs, inputs, 1)[0]!;
    metaOf.set(m.id, m);
    return m;
  };
  const reshapeAttrs = [T_F, typeAttr(b, 'Tshape', b.TF_INT32)];
  const reshape = (x: number, shape: number[]) => one('Reshape', reshapeAttrs, [x, int32Constant(b, shape)]);
  const transpose = (x: number, perm: number[]) => one('Transpose', [T_F, typeAttr(b, 'Tperm', b.TF_INT32)], [x, int32Constant(b, perm)]);
  const matmul = (x: number, y: number, adjY = false) =>
    one(
      'MatMul',
      [T_F, { name: 'transpose_a', type: b.TF_ATTR_BOOL, value: false }, { name: 'transpose_b', type: b.TF_ATTR_BOOL, value: adjY }],
      [x, y],
    );
  const bmm = (x: number, y: number, adjY = false) =>
    one(
      'BatchMatMulV2',
      [T_F, { name: 'adj_x', type: b.TF_ATTR_BOOL, value: false }, { name: 'adj_y', type: b.TF_ATTR_BOOL, value: adjY }],
      [x, y],
    );
  const bin = (name: string, x: number, y: number) => one(name, [T_F], [x, y]);
  const splitAttrs = (n: number) => [{ name: 'num_split', type: b.TF_ATTR_INT, value: n }, T_F, typeAttr(b, 'Tlen', b.TF_INT32)];
  const split = (x: number, sizes: number[], axis: number) =>
    op('SplitV', splitAttrs(sizes.length), [x, int32Constant(b, sizes), int32Constant(b, [axis], true)], sizes.length);
  const concatAttrs = [{ name: 'N', type: b.TF_ATTR_INT, value: 2 }, typeAttr(b, 'Tidx', b.TF_INT32), T_F];
  const lastAxis = int32Constant(b, [-1]);
  const meanAttrs = [{ name: 'keep_dims', type: b.TF_ATTR_BOOL, value: true }, T_F, typeAttr(b, 'Tidx', b.TF_INT32)];
  const eps = floatConstant(b, s.eps);
  /** x * rsqrt(mean(x^2) + eps); the norm's weight is folded into the next product. */
  const rmsNorm = (x: number) =>
    bin('Mul', x, one('Rsqrt', [T_F], [bin('AddV2', one('Mean', meanAttrs, [one('Square', [T_F], [x]), lastAxis]), eps)]));

  const { B, T, headDim: hd, heads: nH, kvHeads: nKV } = s;
  const rep = nH / nKV;
  const G = nH + 2 * nKV;
  const N = B * T;
  const outK: tf.Tensor4D[] = [];
  const outV: tf.Tensor4D[] = [];
  try {
    const weightIds = (t: tf.Tensor) => be.getInputTensorIds([t])[0]!;
    const [idsId, biasId, cosId, sinId] = be.getInputTensorIds([input.ids, input.bias, input.cos, input.signedSin]);
    const gatherAttrs = [
      { name: 'batch_dims', type: b.TF_ATTR_INT, value: 0 },
      typeAttr(b, 'Tparams', F),
      typeAttr(b, 'Tindices', b.TF_INT32),
      typeAttr(b, 'Taxis', b.TF_INT32),
    ];
    let h = reshape(one('GatherV2', gatherAttrs, [weightIds(w.embed), idsId!, int32Constant(b, [0], true)]), [N, s.hidden]);
    const rollAttrs = [T_F, typeAttr(b, 'Tshift', b.TF_INT32), typeAttr(b, 'Taxis', b.TF_INT32)];
    const half = int32Constant(b, [hd / 2], true);
    const axis3 = int32Constant(b, [3], true);
    w.layers.forEach((lw, i) => {
      // q, k, v: one product, heads-major [B, G, T, hd].
      const qkvFlat = one('BiasAdd', [T_F], [matmul(rmsNorm(h), weightIds(lw.qkv)), weightIds(lw.qkvBias)]);
      const qkv = T === 1 ? reshape(qkvFlat, [B, G, 1, hd]) : transpose(reshape(qkvFlat, [B, T, G, hd]), [0, 2, 1, 3]);
      // Rotary embedding of every head at once, x cos + roll(x, hd/2) [-sin, sin], with tables
      // that leave the value heads as they are (cos 1, sin 0); then one split.
      const rolled = one('Roll', rollAttrs, [qkv, half, axis3]);
      const roped = bin('AddV2', bin('Mul', qkv, cosId!), bin('Mul', rolled, sinId!));
      const [q, kNew, v] = split(roped, [nH, nKV, nKV], 1) as [number, number, number];
      const cacheK = input.cacheK?.[i];
      const cacheV = input.cacheV?.[i];
      const kAll = cacheK ? opMeta('ConcatV2', concatAttrs, [weightIds(cacheK), kNew, int32Constant(b, [2], true)]) : null;
      const vAll = cacheV ? opMeta('ConcatV2', concatAttrs, [weightIds(cacheV), v, int32Constant(b, [2], true)]) : null;
      const kId = kAll ? kAll.id : kNew;
      const vId = vAll ? vAll.id : v;
      // Grouped-query attention: the rep query heads of a KV head stacked along time.
      const scores = bin('AddV2', bmm(reshape(q, [B, nKV, rep * T, hd]), kId, true), biasId!);
      const attn = bmm(one('Softmax', [T_F], [scores]), vId); // [B, nKV, rep T, hd]
      const merged = T === 1 ? reshape(attn, [N, nH * hd]) : reshape(transpose(reshape(attn, [B, nH, T, hd]), [0, 2, 1, 3]), [N, nH * hd]);
      h = bin('AddV2', h, matmul(merged, weightIds(lw.o)));
      const [gate, up] = split(matmul(rmsNorm(h), weightIds(lw.gateUp)), [s.intermediate, s.intermediate], 1) as [number, number];
      const act = bin('Mul', bin('Mul', gate, one('Sigmoid', [T_F], [gate])), up);
      h = bin('AddV2', h, matmul(act, weightIds(lw.down)));
      if (keepCache) {
        // Hand the keys and values to tfjs (an uncached pass has no use for them).
        const kMeta = kAll ?? b.executeOp('Identity', [T_F], [kNew], 1)[0]!;
        const vMeta = vAll ?? b.executeOp('Identity', [T_F], [v], 1)[0]!;
        outK.push(be.createOutputTensor(kMeta) as tf.Tensor4D);
        outV.push(be.createOutputTensor(vMeta) as tf.Tensor4D);
        if (kAll) metaOf.delete(kAll.id);
        if (vAll) metaOf.delete(vAll.id);
      }
      // The layer's intermediates go now: a long prefill of a wide batch would otherwise hold
      // every layer's attention scores at once (measured: 19 GB for SmolLM2 at batch 16).
      for (const id of live) if (id !== h) b.deleteTensor(id);
      live.length = 0;
      live.push(h);
      for (const id of metaOf.keys()) b.deleteTensor(id);
      metaOf.clear();
    });
    const normed = rmsNorm(h);
    const logitsMeta = b.executeOp('Reshape', reshapeAttrs, [matmul(normed, weightIds(w.head)), int32Constant(b, [B, T, s.vocab])], 1)[0]!;
    const hiddenMeta = b.executeOp(
      'Reshape',
      reshapeAttrs,
      [bin('Mul', normed, weightIds(w.finalNorm)), int32Constant(b, [B, T, s.hidden])],
      1,
    )[0]!;
    return {
      logits: be.createOutputTensor(logitsMeta) as tf.Tensor3D,
      hidden: be.createOutputTensor(hiddenMeta) as tf.Tensor3D,
      k: outK,
      v: outV,
    };
  } finally {
    for (const id of live) b.deleteTensor(id);
    for (const id of metaOf.keys()) b.deleteTensor(id);
  }
}
