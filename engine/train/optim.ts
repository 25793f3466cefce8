// AdamW (decoupled weight decay, Loshchilov & Hutter) with global-norm clipping and a warm-up +
// cosine/linear schedule. Hand-written because tfjs ships Adam but not AdamW, and because the
// moments must be saved beside a checkpoint for exact resumption.
import { z } from 'zod';
import { tf } from '../tensor/backend.js';

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

/** Scales gradients so that their global L2 norm is at most `maxNorm`; returns the norm before. */
export function clipByGlobalNorm(grads: Map<string, tf.Tensor>, maxNorm: number | null): { grads: Map<string, tf.Tensor>; norm: number } {
  const norm = tf.tidy(() => tf.sqrt(tf.addN([...grads.values()].map((g) => tf.sum(tf.square(g))))).dataSync()[0]!);
  if (maxNorm === null || norm <= maxNorm || !Number.isFinite(norm)) return { grads, norm };
  const scale = maxNorm / (norm + 1e-6);
  const clipped = new Map<string, tf.Tensor>();
  for (const [name, g] of grads) {
    clipped.set(name, tf.mul(g, scale));
    g.dispose();
  }
  return { grads: clipped, norm };
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

  /** Applies `grads` (by parameter name) and disposes them. Returns the learning rate used. */
  apply(grads: Map<string, tf.Tensor>): number {
    const c = this.config;
    const lr = learningRate(this.step, c);
    this.step += 1;
    const bc1 = 1 - c.beta1 ** this.step;
    const bc2 = 1 - c.beta2 ** this.step;
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
      tf.tidy(() => {
        const m1 = tf.add(tf.mul(m, c.beta1), tf.mul(g, 1 - c.beta1));
        const v1 = tf.add(tf.mul(v, c.beta2), tf.mul(tf.square(g), 1 - c.beta2));
        m.assign(m1);
        v.assign(v1);
        const update = tf.div(tf.div(m1, bc1), tf.add(tf.sqrt(tf.div(v1, bc2)), c.eps));
        const decayed = this.decays(name, p) ? tf.mul(p, 1 - lr * c.weightDecay) : p;
        p.assign(tf.sub(decayed, tf.mul(update, lr)));
      });
      g.dispose();
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
