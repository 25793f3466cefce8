import type { DecoderModel } from '../../engine/model/decoder.js';
import { tf } from '../../engine/tensor/backend.js';

/** The model's logits for rows of token ids at positions 0..T-1, flattened [B, T, V]. */
export function logitsOf(model: DecoderModel, ids: number[][]): Float32Array {
  return tf.tidy(() => {
    const positions = tf.tensor2d(
      ids.map((r) => r.map((_, i) => i)),
      undefined,
      'int32',
    );
    return model.forward({ ids: tf.tensor2d(ids, undefined, 'int32'), positions }).logits.dataSync() as Float32Array;
  });
}
