// The RL loss terms, each over the policy's own tokens only. A sequence here is prompt +
// response; `actions[i]` is 1 when token i was sampled by the policy (not prompt, interpreter or
// padding). Per-token inputs (advantages, old log-probs, returns...) are indexed like the tokens
// and are zeroed where `actions` is 0 before they reach a tensor, so no value at a masked position
// can leak into a loss or a gradient.
import { tf } from '../tensor/backend.js';
import type { ForwardOutput, DecoderModel } from '../model/decoder.js';
import { gradsByName, nextTokenTensors } from '../train/step.js';

export interface RlSequence {
  ids: number[];
  actions: number[];
}

export interface PolicyInputs extends RlSequence {
  advantages: number[];
  oldLogprobs: number[];
  /** The reference model's log-probs, when a KL term is on. */
  refLogprobs?: number[];
}

export interface ValueInputs extends RlSequence {
  returns: number[];
  oldValues: number[];
}

export interface PolicyLossConfig {
  clipLow: number;
  clipHigh: number;
  /** Dual clip: with a negative advantage a token's loss is at most -advantage * clipRatioC. */
  clipRatioC: number;
  entropyCoef: number;
  klCoef: number;
  temperature: number;
}

export interface PolicyStats {
  loss: number;
  pgLoss: number;
  entropy: number;
  clipFrac: number;
  /** Mean of old - new log-prob over the actions: how far this update moved the policy (k1). */
  approxKl: number;
  /** k3 estimate of KL(policy || reference), when the reference is given. */
  refKl: number | null;
  tokens: number;
}

/** Bounds of log-ratios before exp and of a token's k3 term (verl's values). */
const LOG_RATIO_BOUND = 20;
const KL_BOUND = 10;

/** Rows right-padded to one length, with the masks nextTokenTensors expects. */
function padded(seqs: RlSequence[], padId: number) {
  const T = Math.max(...seqs.map((s) => s.ids.length));
  const pad = <X>(row: X[], fill: X) => [...row, ...Array<X>(T - row.length).fill(fill)];
  return {
    T,
    batch: {
      ids: seqs.map((s) => pad(s.ids, padId)),
      lossMask: seqs.map((s) => pad(s.actions, 0)),
      valid: seqs.map((s) =>
        pad(
          s.ids.map(() => 1),
          0,
        ),
      ),
    },
    /** A per-token array as a [B, T-1] tensor aligned with the targets, zero off the actions. */
    targetAligned: (pick: (s: RlSequence, i: number) => number) =>
      tf.tensor2d(
        seqs.map((s) => Array.from({ length: T - 1 }, (_, t) => (s.actions[t + 1] ? pick(s, t + 1) : 0))),
        [seqs.length, T - 1],
      ),
  };
}

function logprobsOf(logits: tf.Tensor3D, targets: tf.Tensor2D, temperature: number) {
  const scaled = temperature === 1 ? logits : tf.div(logits, temperature);
  const all = tf.logSoftmax(scaled);
  const picked = tf.sum(tf.mul(all, tf.oneHot(tf.cast(targets, 'int32'), logits.shape[2])), -1) as tf.Tensor2D;
  return { all, picked };
}

/**
 * One no-gradient forward pass over padded sequences, reduced to a value per position and returned
 * per token (index 0, which has no prefix, gets 0), so that it lines up with the ids.
 */
function perToken(
  model: DecoderModel,
  seqs: RlSequence[],
  padId: number,
  reduce: (out: ForwardOutput, targets: tf.Tensor2D) => tf.Tensor2D,
): number[][] {
  const t = nextTokenTensors(padded(seqs, padId).batch);
  try {
    const values = tf.tidy(() =>
      reduce(
        model.forward({ ids: t.ids as tf.Tensor2D, positions: t.positions as tf.Tensor2D, valid: t.valid as tf.Tensor2D }),
        t.targets as tf.Tensor2D,
      ),
    );
    const rows = values.arraySync() as number[][];
    values.dispose();
    return seqs.map((s, b) => [0, ...rows[b]!.slice(0, s.ids.length - 1)]);
  } finally {
    tf.dispose(Object.values(t));
  }
}

/** Log-prob of every token given its prefix. */
export function tokenLogprobs(model: DecoderModel, seqs: RlSequence[], padId: number, temperature = 1): number[][] {
  return perToken(model, seqs, padId, (out, targets) => logprobsOf(out.logits, targets, temperature).picked);
}

/** The critic's estimate before every token. */
export function tokenValues(critic: DecoderModel, seqs: RlSequence[], padId: number): number[][] {
  return perToken(critic, seqs, padId, (out) => critic.values(out.hidden));
}

/**
 * Clipped surrogate (asymmetric clip range: PPO 0.2/0.2, DAPO 0.2/0.28), averaged over every
 * action token of the mini-batch (token-level, so long responses are not down-weighted), minus
 * the entropy bonus, plus the k3 KL to the reference. Gradients by parameter name.
 */
export function policyLossAndGrads(
  model: DecoderModel,
  seqs: PolicyInputs[],
  padId: number,
  c: PolicyLossConfig,
): { grads: Map<string, tf.Tensor>; stats: PolicyStats } {
  const p = padded(seqs, padId);
  const t = nextTokenTensors(p.batch);
  const adv = p.targetAligned((s, i) => (s as PolicyInputs).advantages[i]!);
  const old = p.targetAligned((s, i) => (s as PolicyInputs).oldLogprobs[i]!);
  const ref = c.klCoef > 0 || seqs[0]?.refLogprobs ? p.targetAligned((s, i) => (s as PolicyInputs).refLogprobs?.[i] ?? 0) : null;
  let stats: tf.Tensor1D | null = null;
  try {
    const { value, grads } = gradsByName(model.policyParams(), () => {
      const mask = t.mask as tf.Tensor2D;
      const n = tf.maximum(tf.sum(mask), 1);
      const meanOver = (x: tf.Tensor) => tf.div(tf.sum(tf.mul(x, mask)), n);
      const { logits } = model.forward({ ids: t.ids as tf.Tensor2D, positions: t.positions as tf.Tensor2D, valid: t.valid as tf.Tensor2D });
      const { all, picked } = logprobsOf(logits, t.targets as tf.Tensor2D, c.temperature);
      // Off the actions `picked - old` would be a real log-prob: mask it before exp. Clamped as verl
      // does, so that one far-off token cannot overflow the ratio.
      const logRatio = tf.mul(tf.clipByValue(tf.sub(picked, old), -LOG_RATIO_BOUND, LOG_RATIO_BOUND), mask);
      const ratio = tf.exp(logRatio);
      const unclipped = tf.mul(tf.neg(adv), ratio);
      const clipped = tf.mul(tf.neg(adv), tf.clipByValue(ratio, 1 - c.clipLow, 1 + c.clipHigh));
      const surrogate = tf.maximum(unclipped, clipped);
      // Dual clip (Ye et al. 2020; verl's clip_ratio_c): a negative advantage on a token whose ratio
      // ran far above 1 would otherwise weigh without bound.
      const dual = tf.where(tf.less(adv, 0), tf.minimum(surrogate, tf.mul(tf.neg(adv), c.clipRatioC)), surrogate);
      const pg = meanOver(dual);
      const entropy = meanOver(tf.neg(tf.sum(tf.mul(tf.exp(all), all), -1)));
      let loss = tf.sub(pg, tf.mul(entropy, c.entropyCoef));
      // k3 = exp(ref - logp) - (ref - logp) - 1: unbiased, never negative (Schulman's estimator);
      // the difference and the term clamped as verl's low_var_kl, so a far-off token stays finite.
      const d = ref ? tf.mul(tf.clipByValue(tf.sub(ref, picked), -LOG_RATIO_BOUND, LOG_RATIO_BOUND), mask) : null;
      const kl = d ? meanOver(tf.clipByValue(tf.sub(tf.sub(tf.exp(d), d), 1), -KL_BOUND, KL_BOUND)) : tf.scalar(0);
      if (c.klCoef > 0) loss = tf.add(loss, tf.mul(kl, c.klCoef));
      // Kept past the tape and read once: one device sync per mini-batch, not one per number.
      stats = tf.keep(
        tf.stack([
          pg,
          entropy,
          meanOver(tf.cast(tf.greater(clipped, unclipped), 'float32')),
          meanOver(tf.neg(logRatio)),
          kl,
          tf.sum(mask),
        ]) as tf.Tensor1D,
      );
      return loss as tf.Scalar;
    });
    const [pgLoss, entropy, clipFrac, approxKl, refKl, tokens] = stats!.dataSync() as Float32Array;
    return {
      grads,
      stats: {
        loss: value,
        pgLoss: pgLoss!,
        entropy: entropy!,
        clipFrac: clipFrac!,
        approxKl: approxKl!,
        refKl: ref ? refKl! : null,
        tokens: tokens!,
      },
    };
  } finally {
    tf.dispose([...Object.values(t), adv, old, ...(ref ? [ref] : []), ...(stats ? [stats] : [])]);
  }
}

export interface ValueStats {
  valueLoss: number;
  valueClipFrac: number;
  /** Mean of the critic's estimates over the actions, before this update. */
  valueMean: number;
}

/** PPO's clipped value loss: 0.5 * max((V - R)^2, (clip(V, V_old ± c) - R)^2), token mean. */
export function valueLossAndGrads(
  critic: DecoderModel,
  seqs: ValueInputs[],
  padId: number,
  valueClip: number,
): { grads: Map<string, tf.Tensor>; stats: ValueStats } {
  const p = padded(seqs, padId);
  const t = nextTokenTensors(p.batch);
  const returns = p.targetAligned((s, i) => (s as ValueInputs).returns[i]!);
  const oldValues = p.targetAligned((s, i) => (s as ValueInputs).oldValues[i]!);
  let stats: tf.Tensor1D | null = null;
  try {
    const { value, grads } = gradsByName(critic.params, () => {
      const mask = t.mask as tf.Tensor2D;
      const n = tf.maximum(tf.sum(mask), 1);
      const meanOver = (x: tf.Tensor) => tf.div(tf.sum(tf.mul(x, mask)), n);
      const v = critic.values(
        critic.forward({ ids: t.ids as tf.Tensor2D, positions: t.positions as tf.Tensor2D, valid: t.valid as tf.Tensor2D }).hidden,
      );
      const vClipped = tf.add(oldValues, tf.clipByValue(tf.sub(v, oldValues), -valueClip, valueClip));
      const plain = tf.square(tf.sub(v, returns));
      const clipped = tf.square(tf.sub(vClipped, returns));
      stats = tf.keep(tf.stack([meanOver(tf.cast(tf.greater(clipped, plain), 'float32')), meanOver(v)]) as tf.Tensor1D);
      return tf.mul(meanOver(tf.maximum(plain, clipped)), 0.5) as tf.Scalar;
    });
    const [valueClipFrac, valueMean] = stats!.dataSync() as Float32Array;
    return { grads, stats: { valueLoss: value, valueClipFrac: valueClipFrac!, valueMean: valueMean! } };
  } finally {
    tf.dispose([...Object.values(t), returns, oldValues, ...(stats ? [stats] : [])]);
  }
}
