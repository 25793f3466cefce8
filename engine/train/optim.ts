// AdamW (decoupled weight decay, Loshchilov & Hutter) with global-norm clipping and a warm-up +
// cosine/linear schedule. Hand-written because tfjs ships Adam but not AdamW, and because the
// moments must be saved beside a checkpoint for exact resumption.
import { z } from 'zod';
import { tf } from '../tensor/backend.js';
import { nativeScope } from '../tensor/native-ops.js';

export const OptimizerConfigSchema = z.object({
  lr: z.number().positive().default(1e-3),
  minLr: z.number().min(0).default(0),
  warmupSteps: z.number().int().min(0).default(0),
  totalSteps: z.number().int().positive().default(1000),
  schedule: z.enum(['cosine', 'linear', 'constant']).default('cosine'),
  beta1: z.number().min(0).lt(1).default(0.9),
  beta2: z.number().min(0).lt(1).default(0.95),
  eps: z.number().positive().default(1e-8),
  weightDecay: z.number().min(0).default(0.1),
  maxGradNorm: z.number().positive().nullable().default(1.0),
});
export type OptimizerConfig = z.output<typeof OptimizerConfigSchema>;

export function learningRate(step: number, c: OptimizerConfig): number {
  if (step < c.warmupSteps) return (c.lr * (step + 1)) / c.warmupSteps;
  if (c.schedule === 'constant') return c.lr;
  const progress = Math.min(1, (step - c.warmupSteps) / Math.max(1, c.totalSteps - c.warmupSteps));
  const shape = c.schedule === 'cosine' ? 0.5 * (1 + Math.cos(Math.PI * progress)) : 1 - progress;
  return c.minLr + (c.lr - c.minLr) * shape;
}

/**
 * The global L2 norm of `grads` and the factor that brings it down to `maxNorm` (1 when it is
 * already within, or not finite). The gradients are left as they are: AdamW.apply takes the factor
 * and folds it into its own scalars, rather than a pass over every gradient here.
 */
export function gradNormScale(grads: Map<string, tf.Tensor>, maxNorm: number | null): { norm: number; scale: number } {
  const norm = sumOfSquares([...grads.values()]);
  if (maxNorm === null || norm <= maxNorm || !Number.isFinite(norm)) return { norm, scale: 1 };
  return { norm, scale: maxNorm / (norm + 1e-6) };
}

/** sqrt(sum of every element squared): one op a tensor on the native backend (L2Loss = sum(x^2)/2). */
function sumOfSquares(tensors: tf.Tensor[]): number {
  const raw = nativeScope();
  if (!raw) return tf.tidy(() => tf.sqrt(tf.addN(tensors.map((g) => tf.sum(tf.square(g))))).dataSync()[0]!);
  try {
    const total = raw.tensor(raw.addN(tensors.map((g) => raw.unary('L2Loss', raw.id(g)))));
    const half = total.dataSync()[0]!;
    total.dispose();
    return Math.sqrt(2 * half);
  } finally {
    raw.close();
  }
}

export class AdamW {
  step = 0;
  readonly m = new Map<string, tf.Variable>();
  readonly v = new Map<string, tf.Variable>();

  constructor(
    private readonly params: Map<string, tf.Variable>,
    readonly config: OptimizerConfig,
  ) {}

  /** Decay only matrices: biases, norms and the value head's bias keep their scale. */
  private decays(name: string, p: tf.Variable): boolean {
    return p.rank >= 2 && !name.includes('norm');
  }

  /**
   * One step on gradients clipped to `maxNorm` (the config's by default), unless their norm is not
   * finite: a NaN or Inf would enter the weights and Adam's moments for good, so then nothing
   * changes (weights, moments, step count) and the gradients are freed.
   */
  update(grads: Map<string, tf.Tensor>, maxNorm = this.config.maxGradNorm): { norm: number; applied: boolean; lr: number } {
    const { norm, scale } = gradNormScale(grads, maxNorm);
    if (!Number.isFinite(norm)) {
      tf.dispose([...grads.values()]);
      return { norm, applied: false, lr: learningRate(this.step, this.config) };
    }
    return { norm, applied: true, lr: this.apply(grads, scale) };
  }

  /**
   * Applies `grads` (by parameter name), each multiplied by `scale` (gradNormScale's clipping
   * factor), and disposes them. Returns the learning rate used.
   *
   * The update is the usual p <- p (1 - lr wd) - lr m^ / (sqrt(v^) + eps) with m^ = m / bc1 and
   * v^ = v / bc2, written with the bias corrections and the clipping factor folded into scalars:
   * m <- b1 m + ((1 - b1) s) g, v <- b2 v + ((1 - b2) s^2) g^2,
   * p <- p (1 - lr wd) - (lr sqrt(bc2) / bc1) m / (sqrt(v) + eps sqrt(bc2)): the same maths, rounded
   * differently, in fewer passes over the weights.
   */
  apply(grads: Map<string, tf.Tensor>, scale = 1): number {
    const c = this.config;
    const lr = learningRate(this.step, c);
    this.step += 1;
    const bc1 = 1 - c.beta1 ** this.step;
    const bc2 = 1 - c.beta2 ** this.step;
    const k = {
      gm: (1 - c.beta1) * scale,
      gv: (1 - c.beta2) * scale * scale,
      stepSize: (lr * Math.sqrt(bc2)) / bc1,
      eps: c.eps * Math.sqrt(bc2),
      decay: 1 - lr * c.weightDecay,
    };
    const raw = nativeScope();
    try {
      const consts = raw && {
        b1: raw.scalar(c.beta1),
        b2: raw.scalar(c.beta2),
        gm: raw.scalar(k.gm),
        gv: raw.scalar(k.gv),
        stepSize: raw.scalar(k.stepSize),
        eps: raw.scalar(k.eps),
        decay: raw.scalar(k.decay),
      };
      for (const [name, g] of grads) {
        const p = this.params.get(name);
        if (!p) throw new Error(`gradient for unknown parameter ${name}`);
        if (!this.m.has(name)) {
          // tf.variable copies its initial value: build it in a tidy so the zeros are freed.
          this.m.set(
            name,
            tf.tidy(() => tf.variable(tf.zerosLike(p), false)),
          );
          this.v.set(
            name,
            tf.tidy(() => tf.variable(tf.zerosLike(p), false)),
          );
        }
        const m = this.m.get(name)!;
        const v = this.v.get(name)!;
        const decays = this.decays(name, p);
        if (raw && consts) {
          // A scope per parameter: its temporaries (about nine weight-sized tensors) are freed
          // before the next parameter's are made, not all at the end (5 GB more at 135M).
          const temp = nativeScope()!;
          try {
            const [gi, mi, vi, pi] = [temp.id(g), temp.id(m), temp.id(v), temp.id(p)];
            const m1 = temp.add(temp.mul(mi, consts.b1), temp.mul(gi, consts.gm));
            const v1 = temp.add(temp.mul(vi, consts.b2), temp.mul(temp.unary('Square', gi), consts.gv));
            const step = temp.div(temp.mul(m1, consts.stepSize), temp.add(temp.unary('Sqrt', v1), consts.eps));
            const p1 = temp.sub(decays ? temp.mul(pi, consts.decay) : pi, step);
            const out = [temp.tensor(m1), temp.tensor(v1), temp.tensor(p1)];
            m.assign(out[0]!);
            v.assign(out[1]!);
            p.assign(out[2]!);
            tf.dispose(out);
          } finally {
            temp.close();
          }
        } else {
          tf.tidy(() => {
            const m1 = tf.add(tf.mul(m, c.beta1), tf.mul(g, k.gm));
            const v1 = tf.add(tf.mul(v, c.beta2), tf.mul(tf.square(g), k.gv));
            m.assign(m1);
            v.assign(v1);
            const step = tf.div(tf.mul(m1, k.stepSize), tf.add(tf.sqrt(v1), k.eps));
            p.assign(tf.sub(decays ? tf.mul(p, k.decay) : p, step));
          });
        }
        g.dispose();
      }
    } finally {
      raw?.close();
    }
    return lr;
  }

  /** Moments as plain tensors named `m.<param>` / `v.<param>`, for a checkpoint. */
  stateTensors(): Map<string, { shape: number[]; data: Float32Array }> {
    const out = new Map<string, { shape: number[]; data: Float32Array }>();
    for (const [name, m] of this.m) out.set(`m.${name}`, { shape: m.shape, data: m.dataSync() as Float32Array });
    for (const [name, v] of this.v) out.set(`v.${name}`, { shape: v.shape, data: v.dataSync() as Float32Array });
    return out;
  }

  loadState(step: number, tensors: Map<string, { shape: number[]; data: Float32Array }>): void {
    this.step = step;
    for (const [key, t] of tensors) {
      const [kind, ...rest] = key.split('.');
      const name = rest.join('.');
      if (!this.params.has(name)) throw new Error(`optimizer state for unknown parameter ${name}`);
      const target = kind === 'm' ? this.m : kind === 'v' ? this.v : null;
      if (!target) throw new Error(`unknown optimizer state entry ${key}`);
      target.get(name)?.dispose();
      target.set(
        name,
        tf.tidy(() => tf.variable(tf.tensor(t.data, t.shape), false)),
      );
    }
  }

  dispose(): void {
    for (const t of [...this.m.values(), ...this.v.values()]) t.dispose();
    this.m.clear();
    this.v.clear();
  }
}
