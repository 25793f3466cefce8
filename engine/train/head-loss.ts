// The masked next-token cross-entropy of the LM head, computed a block of rows at a time in the
// forward and again in the backward pass, so that the [tokens, vocabulary] logits never exist
// whole (at SmolLM2's 49,152-token vocabulary, 1,024 tokens of logits are 200 MB, and autodiff of
// log-softmax keeps several such tensors). The loss is sparse: log-sum-exp minus the target's
// logit, no one-hot of the vocabulary. Blocks whose every row is masked out are skipped both ways.
import { tf } from '../tensor/backend.js';

/** Logit elements per block (rows = this / vocabulary): ~32 MB of float32. */
const BLOCK_ELEMENTS = 8_000_000;

export interface HeadLossInput {
  /** [N, H] final hidden states. */
  hidden: tf.Tensor2D;
  /** [V, H] the head's weight. */
  weight: tf.Tensor2D;
  /** N target ids. */
  targets: ArrayLike<number>;
  /** N weights, 1 where the target counts. */
  mask: ArrayLike<number>;
  /** Whether the weight's gradient is wanted (not when it is frozen, as under LoRA). */
  weightGrad: boolean;
}

function blocks(n: number, vocab: number, mask: ArrayLike<number>): { start: number; rows: number }[] {
  const size = Math.max(1, Math.floor(BLOCK_ELEMENTS / vocab));
  const out: { start: number; rows: number }[] = [];
  for (let start = 0; start < n; start += size) {
    const rows = Math.min(size, n - start);
    let any = false;
    for (let i = start; i < start + rows && !any; i++) any = mask[i]! !== 0;
    if (any) out.push({ start, rows });
  }
  return out;
}

/** Mean over masked rows of -log softmax(h W^T)[target]. */
export function chunkedHeadLoss(input: HeadLossInput): tf.Scalar {
  const [N, H] = input.hidden.shape;
  const V = input.weight.shape[0];
  let count = 0;
  for (let i = 0; i < N; i++) count += input.mask[i]!;
  const denominator = Math.max(count, 1);
  const parts = blocks(N, V, input.mask);
  const slices = parts.map(({ start, rows }) => ({
    start,
    rows,
    targets: tf.tensor1d(
      Array.from({ length: rows }, (_, i) => input.targets[start + i]!),
      'int32',
    ),
    mask: tf.tensor1d(Array.from({ length: rows }, (_, i) => input.mask[start + i]!)),
  }));
  // A frozen head (LoRA) is no input of the op: no [V, H] gradient is made for it. It is a
  // variable, so it outlives the tape, unlike what the forward pass makes.
  const inputs = input.weightGrad ? [input.hidden, input.weight] : [input.hidden];
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const hidden = args[0] as tf.Tensor2D;
    const weight = input.weightGrad ? (args[1] as tf.Tensor2D) : input.weight;
    // Saved, not closed over: variableGrads frees what the forward made unless the tape keeps it.
    (args[inputs.length] as tf.GradSaveFunc)([hidden, weight, ...slices.flatMap((s) => [s.targets, s.mask])]);
    const value = tf.tidy(() => {
      let total: tf.Tensor = tf.scalar(0);
      for (const s of slices) {
        const logits = tf.matMul(tf.slice(hidden, [s.start, 0], [s.rows, H]), weight, false, true);
        const picked = tf.gather(
          tf.reshape(logits, [-1]),
          tf.add(tf.mul(tf.range(0, s.rows, 1, 'int32'), tf.scalar(V, 'int32')), s.targets),
        );
        total = tf.add(total, tf.sum(tf.mul(tf.sub(tf.logSumExp(logits, 1), picked), s.mask)));
      }
      return tf.div(total, denominator) as tf.Scalar;
    });
    return {
      value,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) =>
        tf.tidy(() => {
          const [hidden, weight, ...perBlock] = saved as [tf.Tensor2D, tf.Tensor2D, ...tf.Tensor1D[]];
          const scale = tf.div(dy, denominator);
          const dHidden: tf.Tensor2D[] = [];
          let dWeight: tf.Tensor | null = null;
          let at = 0;
          const gap = (rows: number) => rows > 0 && dHidden.push(tf.zeros([rows, H]));
          slices.forEach((s, i) => {
            const targets = perBlock[2 * i]!;
            const mask = perBlock[2 * i + 1]!;
            gap(s.start - at);
            const h = tf.slice(hidden, [s.start, 0], [s.rows, H]);
            const probs = tf.softmax(tf.matMul(h, weight, false, true));
            const g = tf.mul(tf.sub(probs, tf.oneHot(targets, V)), tf.reshape(tf.mul(mask, scale), [s.rows, 1])) as tf.Tensor2D;
            dHidden.push(tf.matMul(g, weight));
            if (input.weightGrad) {
              const part = tf.matMul(g, h, true, false);
              dWeight = dWeight ? tf.add(dWeight, part) : part;
            }
            at = s.start + s.rows;
          });
          gap(N - at);
          const dH = dHidden.length === 1 ? dHidden[0]! : tf.concat(dHidden, 0);
          return input.weightGrad ? [dH, dWeight ?? tf.zeros([V, H])] : [dH];
        }),
    };
  });
  return op(...inputs) as tf.Scalar;
}
