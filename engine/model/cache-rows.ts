// Row-wise surgery on a KV cache, for a decoder whose rows do different work in one step: some
// take a long appended span (an interpreter's output), the rest one sampled token each.
import { tf } from '../tensor/backend.js';
import type { KVCache } from './decoder.js';

/** A new cache made tensor by tensor; `seqAxis` is where each tensor keeps its positions. */
function mapCache(cache: KVCache, f: (t: tf.Tensor, seqAxis: number) => tf.Tensor): KVCache {
  const each = <T extends tf.Tensor>(t: T, seqAxis: number) => tf.tidy(() => f(t, seqAxis)) as T;
  return {
    k: cache.k.map((t) => each(t, 2)),
    v: cache.v.map((t) => each(t, 2)),
    positions: each(cache.positions, 1),
    valid: each(cache.valid, 1),
  };
}

/** A new cache of the given batch rows, in that order. */
export function cacheRows(cache: KVCache, rows: number[]): KVCache {
  const index = tf.tensor1d(rows, 'int32');
  const out = mapCache(cache, (t) => tf.gather(t, index, 0));
  index.dispose();
  return out;
}

/** A new cache with `n` masked-out positions after the last one (valid 0, so never attended to). */
export function padCacheEnd(cache: KVCache, n: number): KVCache {
  return mapCache(cache, (t, seqAxis) => {
    const shape = [...t.shape];
    shape[seqAxis] = n;
    return tf.concat([t, tf.zeros(shape, t.dtype)], seqAxis);
  });
}

/** The batches of `parts` stacked into one cache, reordered so that its row i is stacked row `order[i]`. */
export function stackCacheRows(parts: KVCache[], order: number[]): KVCache {
  const index = tf.tensor1d(order, 'int32');
  const stack = <T extends tf.Tensor>(ts: T[]) => tf.tidy(() => tf.gather(tf.concat(ts, 0), index, 0)) as T;
  const out = {
    k: parts[0]!.k.map((_, layer) => stack(parts.map((p) => p.k[layer]!))),
    v: parts[0]!.v.map((_, layer) => stack(parts.map((p) => p.v[layer]!))),
    positions: stack(parts.map((p) => p.positions)),
    valid: stack(parts.map((p) => p.valid)),
  };
  index.dispose();
  return out;
}
