// One Qwen2 decoder layer for training on the native backend: the forward as raw libtensorflow ops
// and its gradient written by hand, as one tf.customGrad. The tfjs path of DecoderModel.forward
// records some 60 kernels a layer on the tape and autodiff turns them into about 180 more (each with
// its scalar uploads, broadcast reductions, reshapes and saved-tensor clones); here it is about 40
// ops forward and 70 backward. Same maths as the tfjs path, rounded differently: q/k/v and gate/up
// each one product (weights concatenated per pass), the attention scale folded into q's rotary
// tables, rotate-half as a roll by hd/2 with [-sin, sin].
import { tf } from '../tensor/backend.js';
import { nativeScope, type LayerShape, type NativeScope } from '../tensor/native-ops.js';

/** The pass's tables: additive mask [B, 1, rep T, T]; rotary [B, nH + 2 nKV, T, hd] (q's scaled by 1/sqrt(hd), v's cos 1 and sin 0). */
export interface LayerTables {
  bias: tf.Tensor;
  cos: tf.Tensor;
  sin: tf.Tensor;
}

/**
 * The layer's weights, in this order: input norm [H], q [nH hd, H], q bias, k [nKV hd, H], k bias,
 * v [nKV hd, H], v bias, o [H, nH hd], post-attention norm [H], gate [I, H], up [I, H], down [H, I].
 */
export type LayerWeights = tf.Tensor[];

/** Where each projection sits in LayerWeights. */
export const WEIGHT_INDEX = { q_proj: 1, k_proj: 3, v_proj: 5, o_proj: 7, gate_proj: 9, up_proj: 10, down_proj: 11 } as const;

/**
 * A LoRA adapter on one projection: W + scale B A, A [r, in] and B [out, r]. With adapters the
 * layer trains them alone: the other inputs get no gradient (a zero scalar in its place, which the
 * tape never reads, since tfjs prunes the inputs that lead to no variable being trained).
 */
export interface LayerAdapter {
  weight: keyof typeof WEIGHT_INDEX;
  a: tf.Tensor;
  b: tf.Tensor;
}

/** N raw-op handles, named by destructuring (the callers pass exactly N tensors). */
type Handles<N extends number, R extends number[] = []> = R['length'] extends N ? R : Handles<N, [...R, number]>;

/** x * rsqrt(mean(x^2) + eps): returns [normed, rsqrt]. */
function rms(raw: NativeScope, x: number, eps: number): [number, number] {
  const r = raw.unary('Rsqrt', raw.add(raw.mean(raw.unary('Square', x), [-1], true), eps));
  return [raw.mul(x, r), r];
}

/** The gradient of w * (x r) with respect to x and w, given dy, xn = x r and r. */
function rmsGrad(raw: NativeScope, dy: number, xn: number, r: number, w: number): [number, number] {
  const dw = raw.sum(raw.mul(dy, xn), [0]);
  const dxn = raw.mul(dy, w);
  const dx = raw.mul(r, raw.sub(dxn, raw.mul(xn, raw.mean(raw.mul(dxn, xn), [-1], true))));
  return [dx, dw];
}

export function nativeDecoderLayer(
  h: tf.Tensor2D,
  weights: LayerWeights,
  tables: LayerTables,
  s: LayerShape,
  lora: { adapters: LayerAdapter[]; scale: number } = { adapters: [], scale: 1 },
): tf.Tensor2D {
  const { B, T, headDim: hd, heads: nH, kvHeads: nKV, intermediate: I } = s;
  const rep = nH / nKV;
  const G = nH + 2 * nKV;
  const N = B * T;
  const half = hd / 2;
  const { adapters } = lora;
  const foldedO = adapters.some((a) => a.weight === 'o_proj');
  const foldedDown = adapters.some((a) => a.weight === 'down_proj');
  const count = 13 + 2 * adapters.length;
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const inputs = args.slice(0, count) as tf.Tensor[];
    const save = args[count] as tf.GradSaveFunc;
    const raw = nativeScope()!;
    try {
      const handles = inputs.map((t) => raw.id(t));
      // The adapted weights with their adapters folded in (a small [out, r] @ [r, in] product each):
      // the pass then costs what a pass without adapters costs.
      const scale = raw.scalar(lora.scale);
      adapters.forEach((adapter, i) => {
        const at = 1 + WEIGHT_INDEX[adapter.weight];
        handles[at] = raw.add(handles[at]!, raw.mul(raw.matmul(handles[14 + 2 * i]!, handles[13 + 2 * i]!), scale));
      });
      const [hIn, wIn, wq, bq, wk, bk, wv, bv, wo, wPost, wg, wu, wd] = handles as Handles<13>;
      const eps = raw.scalar(s.eps);
      const [cos, sin, bias] = [raw.id(tables.cos), raw.id(tables.sin), raw.id(tables.bias)];
      // Attention.
      const [xn, r1] = rms(raw, hIn!, eps);
      const x = raw.mul(xn, wIn!);
      const wqkv = raw.concat([wq!, wk!, wv!], 0);
      const qkv = raw.one('BiasAdd', [raw.matmul(x, wqkv, false, true), raw.concat([bq!, bk!, bv!], 0)]);
      const heads = raw.transpose(raw.reshape(qkv, [B, T, G, hd]), [0, 2, 1, 3]);
      const roped = raw.add(raw.mul(heads, cos), raw.mul(raw.roll(heads, half, 3), sin));
      const [q, k, v] = raw.split(roped, [nH, nKV, nKV], 1) as [number, number, number];
      const qg = raw.reshape(q, [B, nKV, rep * T, hd]);
      const p = raw.unary('Softmax', raw.add(raw.bmm(qg, k, false, true), bias));
      const attn = raw.bmm(p, v);
      const merged = raw.reshape(raw.transpose(raw.reshape(attn, [B, nH, T, hd]), [0, 2, 1, 3]), [N, nH * hd]);
      const h1 = raw.add(hIn!, raw.matmul(merged, wo!, false, true));
      // MLP.
      const [yn, r2] = rms(raw, h1, eps);
      const y = raw.mul(yn, wPost!);
      const wgu = raw.concat([wg!, wu!], 0);
      const [g, u] = raw.split(raw.matmul(y, wgu, false, true), [I, I], 1) as [number, number];
      const sg = raw.unary('Sigmoid', g);
      const a = raw.mul(g, sg);
      const act = raw.mul(a, u);
      const out = raw.add(h1, raw.matmul(act, wd!, false, true));
      // The tables too: the pass's own scope frees them before the backward pass runs.
      save([
        ...[xn, r1, x, wqkv, qg, k, v, p, merged, yn, r2, y, wgu, g, u, sg, a, act].map((id) => raw.tensor(id)),
        tables.cos,
        tables.sin,
        // Folded o and down weights, for the input gradient (folded q/k/v and gate/up are in wqkv, wgu).
        ...(foldedO ? [raw.tensor(wo!)] : []),
        ...(foldedDown ? [raw.tensor(wd!)] : []),
      ]);
      return {
        value: raw.tensor<tf.Rank.R2>(out),
        gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => layerGrad(dy, saved, inputs, s),
      };
    } finally {
      raw.close();
    }
  });
  return op(h, ...weights, ...adapters.flatMap((a) => [a.a, a.b])) as tf.Tensor2D;

  function layerGrad(dyT: tf.Tensor, saved: tf.Tensor[], inputs: tf.Tensor[], sh: LayerShape): tf.Tensor[] {
    const raw = nativeScope()!;
    try {
      const handles = saved.map((t) => raw.id(t));
      const [xn, r1, x, wqkv, qg, k, v, p, merged, yn, r2, y, wgu, g, u, sg, a, act, cos, sin] = handles as Handles<20>;
      const wIn = raw.id(inputs[1]!);
      const wo = foldedO ? handles[20]! : raw.id(inputs[8]!);
      const wPost = raw.id(inputs[9]!);
      const wd = foldedDown ? handles[foldedO ? 21 : 20]! : raw.id(inputs[12]!);
      const dOut = raw.id(dyT);
      // MLP: out = h1 + act wd^T, act = silu(g) u.
      const dAct = raw.matmul(dOut, wd);
      const dU = raw.mul(dAct, a);
      // silu'(g) = sg (1 + g (1 - sg)) = sg (1 + g - a)
      const dG = raw.mul(raw.mul(dAct, u), raw.mul(sg, raw.add(raw.sub(g, a), raw.scalar(1))));
      const dGU = raw.concat([dG, dU], 1);
      const [dH1Norm, dWPost] = rmsGrad(raw, raw.matmul(dGU, wgu), yn, r2, wPost);
      const dH1 = raw.add(dOut, dH1Norm);
      // Attention: h1 = h + merged wo^T.
      const dMerged = raw.matmul(dH1, wo);
      const dAttn = raw.reshape(raw.transpose(raw.reshape(dMerged, [B, T, nH, hd]), [0, 2, 1, 3]), [B, nKV, rep * T, hd]);
      const dP = raw.bmm(dAttn, v, false, true);
      const dV = raw.bmm(p, dAttn, true, false);
      const dScores = raw.mul(p, raw.sub(dP, raw.sum(raw.mul(dP, p), [-1], true)));
      const dQg = raw.bmm(dScores, k);
      const dK = raw.bmm(dScores, qg, true, false);
      const dRoped = raw.concat([raw.reshape(dQg, [B, nH, T, hd]), dK, dV], 1);
      // roped = x cos + roll(x, hd/2) sin; a roll by hd/2 is its own inverse.
      const dHeads = raw.add(raw.mul(dRoped, cos), raw.roll(raw.mul(dRoped, sin), half, 3));
      const dQKV = raw.reshape(raw.transpose(dHeads, [0, 2, 1, 3]), [N, G * hd]);
      const [dHNorm, dWIn] = rmsGrad(raw, raw.matmul(dQKV, wqkv), xn, r1, wIn);
      const dH = raw.add(dH1, dHNorm);
      const widths = [nH * hd, nKV * hd, nKV * hd];
      if (adapters.length === 0) {
        const dWd = raw.matmul(dOut, act, true, false);
        const [dWg, dWu] = raw.split(raw.matmul(dGU, y, true, false), [sh.intermediate, sh.intermediate], 0) as [number, number];
        const dWo = raw.matmul(dH1, merged, true, false);
        const [dBq, dBk, dBv] = raw.split(raw.sum(dQKV, [0]), widths, 0) as [number, number, number];
        const [dWq, dWk, dWv] = raw.split(raw.matmul(dQKV, x, true, false), widths, 0) as [number, number, number];
        return [dH, dWIn, dWq, dBq, dWk, dBk, dWv, dBv, dWo, dWPost, dWg, dWu, dWd].map((id) => raw.tensor(id));
      }
      // y = x W^T + s (x A^T) B^T: dB = s dy^T (x A^T), dA = s (dy B)^T x. No [out, in] product.
      const [dQ, dK2, dV2] = raw.split(dQKV, widths, 1) as [number, number, number];
      const flows: Record<LayerAdapter['weight'], [number, number]> = {
        q_proj: [x, dQ],
        k_proj: [x, dK2],
        v_proj: [x, dV2],
        o_proj: [merged, dH1],
        gate_proj: [y, dG],
        up_proj: [y, dU],
        down_proj: [act, dOut],
      };
      const scale = raw.scalar(lora.scale);
      const adapterGrads = adapters.flatMap((adapter, i) => {
        const [input, dy] = flows[adapter.weight];
        const A = raw.id(inputs[13 + 2 * i]!);
        const Bm = raw.id(inputs[14 + 2 * i]!);
        const dA = raw.mul(raw.matmul(raw.matmul(dy, Bm), input, true, false), scale);
        const dB = raw.mul(raw.matmul(dy, raw.matmul(input, A, false, true), true, false), scale);
        return [dA, dB];
      });
      const frozen = Array.from({ length: 12 }, () => raw.scalar(0));
      return [dH, ...frozen, ...adapterGrads].map((id) => raw.tensor(id));
    } finally {
      raw.close();
    }
  }
}
