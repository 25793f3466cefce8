// LoRA (Hu et al., 2021) on the decoder's linear layers: y = x W^T + (alpha / r) (x A^T) B^T, with
// W frozen and only A [r, in] and B [out, r] trained. Saved in PEFT's layout (adapter_config.json +
// adapter_model.safetensors, tensors named base_model.model.<module>.lora_{A,B}.weight) so Python's
// peft loads it onto the transformers model, and mergeable into W for a plain checkpoint.
import { z } from 'zod';
import { tf } from '../tensor/backend.js';
import { LORA_MODULES, LoraConfigSchema, type LoraConfig, type LoraModule } from './lora-config.js';
import type { DecoderConfig } from './config.js';
import type { NamedTensor } from './safetensors.js';

const PEFT_PREFIX = 'base_model.model.';
export const ADAPTER_CONFIG_FILE = 'adapter_config.json';
export const ADAPTER_WEIGHTS_FILE = 'adapter_model.safetensors';

/** The HF weight names (`model.layers.N.self_attn.q_proj.weight`) the adapter applies to, with [out, in]. */
export function loraTargets(config: DecoderConfig, modules: readonly LoraModule[], shapes: Map<string, number[]>): Map<string, number[]> {
  const targets = new Map<string, number[]>();
  for (const [name, shape] of shapes) {
    const m = /^model\.layers\.\d+\.(?:self_attn|mlp)\.([a-z_]+)\.weight$/.exec(name);
    if (m && (modules as readonly string[]).includes(m[1]!)) targets.set(name, shape);
  }
  if (targets.size === 0) throw new Error(`LoRA: no ${modules.join('/')} layers in this ${config.model_type} model`);
  return targets;
}

/** The adapter's trained matrices, keyed by the weight they adapt. */
export class LoraAdapter {
  readonly scale: number;
  readonly a = new Map<string, tf.Variable>();
  readonly b = new Map<string, tf.Variable>();

  constructor(
    readonly config: LoraConfig,
    targets: Map<string, number[]>,
    values?: Map<string, NamedTensor>,
    seed = 0,
  ) {
    this.scale = config.alpha / config.rank;
    let n = seed === 0 ? 0x10ca : seed;
    for (const [weight, [out, inDim]] of targets) {
      const module = weight.slice(0, -'.weight'.length);
      const aName = `${module}.lora_A.weight`;
      const bName = `${module}.lora_B.weight`;
      const r = config.rank;
      const given = (name: string, shape: number[]) => {
        const t = values?.get(name);
        if (!values) return undefined;
        if (!t) throw new Error(`the adapter has no tensor ${PEFT_PREFIX}${name}`);
        if (t.shape.join(',') !== shape.join(',')) throw new Error(`${PEFT_PREFIX}${name} has shape [${t.shape}], expected [${shape}]`);
        return tf.tensor(t.data, shape);
      };
      // PEFT's initialisation: A as nn.Linear's default (kaiming uniform, bound 1/sqrt(in)), B zero,
      // so a new adapter changes nothing.
      const a = given(aName, [r, inDim!]) ?? tf.randomUniform([r, inDim!], -1 / Math.sqrt(inDim!), 1 / Math.sqrt(inDim!), 'float32', n++);
      const b = given(bName, [out!, r]) ?? tf.zeros([out!, r]);
      this.a.set(weight, tf.variable(a, true));
      this.b.set(weight, tf.variable(b, true));
      tf.dispose([a, b]);
    }
  }

  /** Trainable variables by their PEFT names (less the `base_model.model.` prefix). */
  params(): Map<string, tf.Variable> {
    const out = new Map<string, tf.Variable>();
    for (const [weight, a] of this.a) {
      const module = weight.slice(0, -'.weight'.length);
      out.set(`${module}.lora_A.weight`, a);
      out.set(`${module}.lora_B.weight`, this.b.get(weight)!);
    }
    return out;
  }

  has(weight: string): boolean {
    return this.a.has(weight);
  }

  /** The low-rank term (alpha / r) (x A^T) B^T of `weight` for x [N, in]. */
  delta(x: tf.Tensor2D, weight: string, training: boolean): tf.Tensor2D {
    const input = training && this.config.dropout > 0 ? (tf.dropout(x, this.config.dropout) as tf.Tensor2D) : x;
    const down = tf.matMul(input, this.a.get(weight)!, false, true);
    return tf.mul(tf.matMul(down, this.b.get(weight)!, false, true), this.scale) as tf.Tensor2D;
  }

  /** W + (alpha / r) B A, the weight with the adapter folded in ([out, in]). */
  merged(weight: string, w: tf.Tensor): tf.Tensor2D {
    return tf.tidy(() => tf.add(w, tf.mul(tf.matMul(this.b.get(weight)!, this.a.get(weight)!), this.scale)) as tf.Tensor2D);
  }

  /** adapter_model.safetensors' tensors, PEFT-named. */
  tensors(): Map<string, NamedTensor> {
    const out = new Map<string, NamedTensor>();
    for (const [name, v] of this.params()) out.set(`${PEFT_PREFIX}${name}`, { shape: v.shape, data: v.dataSync() as Float32Array });
    return out;
  }

  /** adapter_config.json as PEFT writes it for a causal LM. */
  peftConfig(baseModel: string): Record<string, unknown> {
    return {
      peft_type: 'LORA',
      task_type: 'CAUSAL_LM',
      base_model_name_or_path: baseModel,
      r: this.config.rank,
      lora_alpha: this.config.alpha,
      lora_dropout: this.config.dropout,
      target_modules: [...this.config.targetModules].sort(),
      bias: 'none',
      fan_in_fan_out: false,
      use_rslora: false,
      use_dora: false,
      init_lora_weights: true,
      modules_to_save: null,
      inference_mode: true,
    };
  }

  dispose(): void {
    for (const v of [...this.a.values(), ...this.b.values()]) v.dispose();
  }
}

const PeftConfigSchema = z
  .object({
    peft_type: z.literal('LORA'),
    base_model_name_or_path: z.string().min(1),
    r: z.number().int().positive(),
    lora_alpha: z.number().positive(),
    lora_dropout: z.number().min(0).lt(1).default(0),
    target_modules: z.union([z.array(z.enum(LORA_MODULES)).min(1), z.enum(LORA_MODULES)]),
    bias: z.literal('none').default('none'),
    use_rslora: z.literal(false).default(false),
    use_dora: z.literal(false).default(false),
    fan_in_fan_out: z.literal(false).default(false),
  })
  .passthrough();

/** An adapter_config.json read back: the base model's directory and the LoRA settings. */
export function parsePeftConfig(json: unknown, where: string): { baseModel: string; config: LoraConfig } {
  const parsed = PeftConfigSchema.safeParse(json);
  if (!parsed.success)
    throw new Error(
      `${where}: not a LoRA adapter this engine loads (${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')})`,
    );
  const p = parsed.data;
  return {
    baseModel: p.base_model_name_or_path,
    config: LoraConfigSchema.parse({
      rank: p.r,
      alpha: p.lora_alpha,
      dropout: p.lora_dropout,
      targetModules: Array.isArray(p.target_modules) ? p.target_modules : [p.target_modules],
    }),
  };
}

export function stripPeftPrefix(tensors: Map<string, NamedTensor>): Map<string, NamedTensor> {
  const out = new Map<string, NamedTensor>();
  for (const [name, t] of tensors) out.set(name.startsWith(PEFT_PREFIX) ? name.slice(PEFT_PREFIX.length) : name, t);
  return out;
}
