import { describe, expect, it } from 'vitest';
import { chunkedHeadLoss } from '../engine/train/head-loss.js';
import { maskedCrossEntropy } from '../engine/train/step.js';
import { tf } from '../engine/tensor/backend.js';
import { describeOnEachBackend } from './helpers/backends.js';
import { maxAbsDiff } from './helpers/reference.js';

describe('chunked sparse head loss', () => {
  describeOnEachBackend('on', () => {
    it('equals the one-hot cross-entropy of the whole logits, value and gradients, across blocks', () => {
      // 100,000 columns make blocks of 80 rows: 200 rows are 3 blocks, the middle one all masked.
      const N = 200;
      const H = 8;
      const V = 100_000;
      const hidden = tf.randomNormal([N, H], 0, 1, 'float32', 1) as tf.Tensor2D;
      const weight = tf.randomNormal([V, H], 0, 0.5, 'float32', 2) as tf.Tensor2D;
      const targets = Array.from({ length: N }, (_, i) => (i * 7919) % V);
      const mask = Array.from({ length: N }, (_, i) => (i >= 80 && i < 160 ? 0 : i % 3 === 0 ? 0 : 1));
      const chunked = tf.grads((h: tf.Tensor, w: tf.Tensor) =>
        chunkedHeadLoss({ hidden: h as tf.Tensor2D, weight: w as tf.Tensor2D, targets, mask, weightGrad: true }),
      );
      const whole = tf.grads((h: tf.Tensor, w: tf.Tensor) =>
        maskedCrossEntropy(
          tf.reshape(tf.matMul(h as tf.Tensor2D, w as tf.Tensor2D, false, true), [1, N, V]) as tf.Tensor3D,
          tf.tensor2d([targets], [1, N], 'int32'),
          tf.tensor2d([mask], [1, N]),
        ),
      );
      const value = (f: (h: tf.Tensor2D, w: tf.Tensor2D) => tf.Scalar) => f(hidden, weight).dataSync()[0]!;
      const a = value((h, w) => chunkedHeadLoss({ hidden: h, weight: w, targets, mask, weightGrad: true }));
      const b = value((h, w) =>
        maskedCrossEntropy(
          tf.reshape(tf.matMul(h, w, false, true), [1, N, V]) as tf.Tensor3D,
          tf.tensor2d([targets], [1, N], 'int32'),
          tf.tensor2d([mask], [1, N]),
        ),
      );
      expect(Math.abs(a - b)).toBeLessThan(1e-5 * Math.abs(b));
      const [dh1, dw1] = chunked([hidden, weight]);
      const [dh2, dw2] = whole([hidden, weight]);
      expect(maxAbsDiff(dh1!.dataSync(), dh2!.dataSync())).toBeLessThan(1e-6);
      expect(maxAbsDiff(dw1!.dataSync(), dw2!.dataSync())).toBeLessThan(1e-6);
      // Masked rows get exactly nothing.
      const rows = dh1!.arraySync() as number[][];
      expect(
        rows
          .slice(80, 160)
          .flat()
          .every((x) => x === 0),
      ).toBe(true);
      expect(rows[3]!.every((x) => x === 0)).toBe(true);
      tf.dispose([hidden, weight, dh1!, dw1!, dh2!, dw2!]);
    });
  });
});
