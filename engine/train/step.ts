import { tf } from '../tensor/backend.js';
import type { DecoderModel } from '../model/decoder.js';
import type { AdamW } from './optim.js';
import { chunkedHeadLoss } from './head-loss.js';

/**
 * Mean cross-entropy of `targets` over the tokens where `mask` is 1. The mask is what keeps
 * prompt and interpreter tokens out of the loss: they get exactly zero gradient.
 */
export function maskedCrossEntropy(logits: tf.Tensor3D, targets: tf.Tensor2D, mask: tf.Tensor2D): tf.Scalar {
  return tf.tidy(() => {
    const V = logits.shape[2];
    const logProbs = tf.logSoftmax(logits);
    const picked = tf.sum(tf.mul(logProbs, tf.oneHot(tf.cast(targets, 'int32'), V)), -1);
    const total = tf.sum(tf.mul(picked, mask));
    return tf.neg(tf.div(total, tf.maximum(tf.sum(mask), 1))) as tf.Scalar;
  });
}

export interface TokenBatch {
  /** [B, T] inputs; targets are the inputs shifted left by one. */
  ids: number[][];
  /** [B, T] 1 where the NEXT token (the target at t) counts in the loss. */
  lossMask: number[][];
  /** [B, T] 1 for real tokens, 0 for padding; all real when absent. */
  valid?: number[][];
}

export interface StepResult {
  loss: number;
  gradNorm: number;
  lr: number;
  tokens: number;
  /** False when the gradients were not finite and the step was skipped (nothing changed). */
  applied: boolean;
}

/** Shifted tensors for next-token prediction: inputs t < T-1 predict targets t+1. */
export function nextTokenTensors(batch: TokenBatch) {
  const B = batch.ids.length;
  const T = batch.ids[0]!.length - 1;
  const ids = tf.tensor2d(
    batch.ids.map((r) => r.slice(0, T)),
    [B, T],
    'int32',
  );
  const targets = tf.tensor2d(
    batch.ids.map((r) => r.slice(1)),
    [B, T],
    'int32',
  );
  const mask = tf.tensor2d(
    batch.lossMask.map((r) => r.slice(1)),
    [B, T],
  );
  const valid = tf.tensor2d(
    (batch.valid ?? batch.ids.map((r) => r.map(() => 1))).map((r) => r.slice(0, T)),
    [B, T],
  );
  const positions = tf.tensor2d(
    (batch.valid ?? batch.ids.map((r) => r.map(() => 1))).map((r) => {
      let p = 0;
      return r.slice(0, T).map((v) => (v ? p++ : 0));
    }),
    [B, T],
    'int32',
  );
  return { ids, targets, mask, valid, positions };
}

/**
 * The value of `loss` and its gradients with respect to `params`, keyed by parameter name (the
 * caller disposes them). Every trainer's loss goes through here.
 */
export function gradsByName(params: Map<string, tf.Variable>, loss: () => tf.Scalar): { value: number; grads: Map<string, tf.Tensor> } {
  const byVariable = new Map<string, string>();
  for (const [name, p] of params) byVariable.set(p.name, name);
  const { value, grads } = tf.variableGrads(loss, [...params.values()]);
  const result = value.dataSync()[0]!;
  value.dispose();
  const named = new Map<string, tf.Tensor>();
  for (const [varName, g] of Object.entries(grads)) named.set(byVariable.get(varName)!, g);
  return { value: result, grads: named };
}

/** Gradients of the masked loss by parameter name (caller disposes them). */
export function lossAndGrads(model: DecoderModel, batch: TokenBatch): { loss: number; grads: Map<string, tf.Tensor>; tokens: number } {
  const t = nextTokenTensors(batch);
  try {
    const targets = batch.ids.flatMap((r) => r.slice(1));
    const mask = batch.lossMask.flatMap((r) => r.slice(1));
    const { value, grads } = gradsByName(model.policyParams(), () =>
      chunkedHeadLoss({
        hidden: model.finalHidden({ ids: t.ids as tf.Tensor2D, positions: t.positions as tf.Tensor2D, valid: t.valid as tf.Tensor2D }),
        weight: model.headWeight() as tf.Tensor as tf.Tensor2D,
        targets,
        mask,
        weightGrad: model.lora === null,
      }),
    );
    const tokens = batch.lossMask.reduce((n, r) => n + r.slice(1).reduce((a, b) => a + b, 0), 0);
    return { loss: value, grads, tokens };
  } finally {
    tf.dispose(Object.values(t));
  }
}

/** One optimizer step on the masked next-token loss. Leaves no tensors behind. */
export function trainStep(model: DecoderModel, optimizer: AdamW, batch: TokenBatch): StepResult {
  return accumulatedTrainStep(model, optimizer, [batch]);
}

/**
 * One optimizer step over several micro-batches, the gradients of each computed and freed before
 * the next (memory of one micro-batch). Each micro-batch's mean loss is weighted by its share of
 * the loss tokens, so the step is the step of the micro-batches taken as one batch.
 */
export function accumulatedTrainStep(model: DecoderModel, optimizer: AdamW, batches: TokenBatch[]): StepResult {
  const counts = batches.map((b) => b.lossMask.reduce((n, r) => n + r.slice(1).reduce((a, x) => a + x, 0), 0));
  const total = counts.reduce((a, b) => a + b, 0);
  let sum: Map<string, tf.Tensor> | null = null;
  let loss = 0;
  batches.forEach((batch, i) => {
    const weight = batches.length === 1 ? 1 : counts[i]! / Math.max(total, 1);
    const part = lossAndGrads(model, batch);
    loss += weight * part.loss;
    if (batches.length === 1) sum = part.grads;
    else {
      const previous: Map<string, tf.Tensor> | null = sum;
      sum = new Map(
        [...part.grads].map(([name, g]) => [
          name,
          tf.tidy(() => (previous ? tf.add(previous.get(name)!, tf.mul(g, weight)) : tf.mul(g, weight))),
        ]),
      );
      tf.dispose([...part.grads.values(), ...(previous ? previous.values() : [])]);
    }
  });
  const grads = sum! as Map<string, tf.Tensor>;
  const { norm, applied, lr } = optimizer.update(grads);
  return { loss, gradNorm: norm, lr, tokens: total, applied };
}
