// The decoder of Qwen2, Llama and Qwen3 (their *ForCausalLM) in tfjs, in one file: RMSNorm,
// rotary embeddings (with Llama 3's scaling), grouped-query attention with optional biases and
// Qwen3's per-head q/k norms, SwiGLU MLP, tied or separate LM head, plus a value head for PPO's
// critic. Parameter names are exactly Hugging Face's.
import { tf } from '../tensor/backend.js';
import { attentionBiases, hasQkNorm, headDim, ropeInverseFrequencies, type DecoderConfig } from './config.js';
import { isNativeBackend, nativeInference, nativeInferenceActive, nativeTables, type NativeWeights } from '../tensor/native-kernels.js';
import { nativeDecoderLayer, WEIGHT_INDEX, type LayerAdapter } from './native-layer.js';
import { LoraAdapter, loraTargets } from './lora.js';
import type { LoraConfig } from './lora-config.js';
import type { NamedTensor } from './safetensors.js';

export type Params = Map<string, tf.Variable>;

let nativeTraining = true;
/** Turns the hand-differentiated native layers off (on by default), to compare or measure against them. */
export function setNativeTraining(on: boolean): void {
  nativeTraining = on;
}

/** Keys and values of every layer for the tokens seen so far, with their positions and validity. */
export interface KVCache {
  k: tf.Tensor4D[]; // per layer [B, nKV, S, hd]
  v: tf.Tensor4D[];
  positions: tf.Tensor2D; // [B, S] int32
  valid: tf.Tensor2D; // [B, S] float32, 1 for a real token, 0 for padding
}

export interface ForwardInput {
  ids: tf.Tensor2D; // [B, T] int32
  positions: tf.Tensor2D; // [B, T] int32
  /** 1 where the token is real, 0 for padding; all real when absent. */
  valid?: tf.Tensor2D;
  cache?: KVCache;
}

export interface ForwardOutput {
  logits: tf.Tensor3D; // [B, T, V]
  hidden: tf.Tensor3D; // [B, T, H], after the final norm
  cache?: KVCache;
}

export function parameterShapes(c: DecoderConfig): Map<string, number[]> {
  const hd = headDim(c);
  const H = c.hidden_size;
  const biases = attentionBiases(c);
  const shapes = new Map<string, number[]>([['model.embed_tokens.weight', [c.vocab_size, H]]]);
  for (let i = 0; i < c.num_hidden_layers; i++) {
    const p = `model.layers.${i}.`;
    const a = `${p}self_attn.`;
    shapes.set(`${p}input_layernorm.weight`, [H]);
    for (const [n, heads] of [
      ['q', c.num_attention_heads],
      ['k', c.num_key_value_heads],
      ['v', c.num_key_value_heads],
    ] as const) {
      shapes.set(`${a}${n}_proj.weight`, [heads * hd, H]);
      if (biases.qkv) shapes.set(`${a}${n}_proj.bias`, [heads * hd]);
    }
    shapes.set(`${a}o_proj.weight`, [H, c.num_attention_heads * hd]);
    if (biases.o) shapes.set(`${a}o_proj.bias`, [H]);
    if (hasQkNorm(c)) {
      shapes.set(`${a}q_norm.weight`, [hd]);
      shapes.set(`${a}k_norm.weight`, [hd]);
    }
    shapes.set(`${p}post_attention_layernorm.weight`, [H]);
    shapes.set(`${p}mlp.gate_proj.weight`, [c.intermediate_size, H]);
    shapes.set(`${p}mlp.up_proj.weight`, [c.intermediate_size, H]);
    shapes.set(`${p}mlp.down_proj.weight`, [H, c.intermediate_size]);
  }
  shapes.set('model.norm.weight', [H]);
  if (!c.tie_word_embeddings) shapes.set('lm_head.weight', [c.vocab_size, H]);
  return shapes;
}

/**
 * tfjs takes a seed of 0 as "no seed" (a Math.random one), so seed 0 would make the first weight
 * of `retool model init --seed 0` differ on every run; it is mapped to a fixed non-zero value, and
 * every other seed is kept as it was, so models initialised before this fix are the same.
 */
function tfSeed(seed: number): number {
  return seed === 0 ? 0x5eed : seed;
}

/** The critic's head, kept apart from the HF weights (saved in its own file). */
export const VALUE_HEAD = { weight: 'value_head.weight', bias: 'value_head.bias' } as const;

/**
 * y = x @ w^T for a weight w [out, in] (HF layout), written so that every product is a plain 2-D
 * matmul, the form tfjs-wasm hands to XNNPACK: the forward multiplies by `wt`, a kept copy of w^T
 * ([in, out]); the gradients are dx = dy @ w and dw = dy^T @ x, as tfjs's own matMul gradient.
 */
function transposedLinear(x: tf.Tensor2D, wt: tf.Tensor2D, w: tf.Variable): tf.Tensor2D {
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const input = args[0] as tf.Tensor2D;
    const weight = args[1] as tf.Tensor2D;
    (args[2] as tf.GradSaveFunc)([input]);
    return {
      value: tf.matMul(input, wt),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => [
        tf.matMul(dy as tf.Tensor2D, weight),
        tf.matMul(dy as tf.Tensor2D, saved[0] as tf.Tensor2D, true, false),
      ],
    };
  });
  return op(x, w) as tf.Tensor2D;
}

interface Packed {
  source: tf.Variable;
  dataId: object;
  wt: tf.Tensor2D;
}

export class DecoderModel {
  readonly headDim: number;
  private readonly invFreq: tf.Tensor1D;
  private readonly invFreqValues: Float32Array;
  /**
   * Every linear weight kept transposed ([in, out]), rebuilt when the variable changes (after an
   * optimizer step). The forward product is then a plain 2-D matmul whose packed XNNPACK operator
   * is cached on this tensor, so decoding packs each weight once instead of once per token.
   */
  private readonly packed = new Map<string, Packed>();
  /** The fused weights of the native no-gradient pass, with the data they were built from. */
  private native: { weights: NativeWeights; sources: [tf.Variable, object][] } | null = null;
  /**
   * The fused native passes know Qwen2's and Llama's layer (a missing bias is a zero one) but not
   * Qwen3's q/k norms, which run the tfjs ops on every backend.
   */
  private readonly nativeCapable: boolean;
  /** A LoRA adapter on the linear layers: when attached, it is what trains (the weights stay frozen). */
  lora: LoraAdapter | null = null;
  /** Zeros standing in for the q/k/v biases of a model without them, in the native passes. */
  private readonly zeroBiases = new Map<number, tf.Tensor1D>();

  constructor(
    readonly config: DecoderConfig,
    readonly params: Params,
  ) {
    this.headDim = headDim(config);
    for (const [name, shape] of parameterShapes(config)) {
      const p = params.get(name);
      if (!p) throw new Error(`checkpoint lacks ${name}`);
      if (p.shape.join(',') !== shape.join(',')) throw new Error(`${name} has shape [${p.shape}], config says [${shape}]`);
    }
    this.nativeCapable = !hasQkNorm(config) && !attentionBiases(config).o;
    this.invFreqValues = ropeInverseFrequencies(config);
    this.invFreq = tf.tensor1d(this.invFreqValues);
    // Built now rather than on first use, so that the model's tensor count is the same before and
    // after a forward pass.
    for (const name of this.linearWeights()) this.packedWeight(name);
    if (this.nativeCapable && nativeInferenceActive()) this.nativeWeights();
  }

  /** Every weight that multiplies activations. */
  private linearWeights(): string[] {
    const names: string[] = [];
    for (let i = 0; i < this.config.num_hidden_layers; i++) {
      const l = `model.layers.${i}.`;
      for (const n of ['q', 'k', 'v', 'o']) names.push(`${l}self_attn.${n}_proj.weight`);
      for (const n of ['gate', 'up', 'down']) names.push(`${l}mlp.${n}_proj.weight`);
    }
    names.push(this.config.tie_word_embeddings ? 'model.embed_tokens.weight' : 'lm_head.weight');
    return names;
  }

  private packedWeight(name: string): Packed {
    const source = this.p(name);
    const hit = this.packed.get(name);
    if (hit && hit.source === source && hit.dataId === source.dataId) return hit;
    hit?.wt.dispose();
    const entry = { source, dataId: source.dataId, wt: tf.keep(tf.tidy(() => tf.transpose(source) as tf.Tensor2D)) };
    this.packed.set(name, entry);
    return entry;
  }

  /** x [N, in] @ W^T for the weight `name` ([out, in], HF layout), plus the adapter's term. */
  private linear(x: tf.Tensor2D, name: string): tf.Tensor2D {
    const { wt, source } = this.packedWeight(name);
    const y = transposedLinear(x, wt, source);
    return this.lora?.has(name) ? (tf.add(y, this.lora.delta(x, name, recordingGradients())) as tf.Tensor2D) : y;
  }

  /** Attaches a new LoRA adapter (B = 0: the model's outputs are unchanged) or one saved before. */
  attachLora(config: LoraConfig, opts: { seed?: number; values?: Map<string, NamedTensor> } = {}): LoraAdapter {
    this.lora?.dispose();
    this.lora = new LoraAdapter(
      config,
      loraTargets(this.config, config.targetModules, parameterShapes(this.config)),
      opts.values,
      opts.seed,
    );
    return this.lora;
  }

  /** Folds the adapter into the weights (W + alpha/r B A) and drops it: a plain model again. */
  mergeLora(): void {
    const lora = this.lora;
    if (!lora) return;
    for (const name of lora.a.keys()) {
      const merged = lora.merged(name, this.p(name));
      this.p(name).assign(merged);
      merged.dispose();
    }
    lora.dispose();
    this.lora = null;
  }

  /** Random weights as Hugging Face initialises them (normal 0.02, zero biases, unit norms). */
  static init(config: DecoderConfig, seed = 0, withValueHead = false): DecoderModel {
    const params: Params = new Map();
    let n = seed;
    for (const [name, shape] of parameterShapes(config)) {
      const value = name.endsWith('norm.weight')
        ? tf.ones(shape)
        : name.endsWith('.bias')
          ? tf.zeros(shape)
          : tf.randomNormal(shape, 0, 0.02, 'float32', tfSeed(n++));
      params.set(name, tf.variable(value, true));
      value.dispose(); // the variable holds its own reference to the data
    }
    const model = new DecoderModel(config, params);
    if (withValueHead) model.addValueHead(seed + 1_000_003);
    return model;
  }

  addValueHead(seed = 0): void {
    if (this.params.has(VALUE_HEAD.weight)) return;
    tf.tidy(() => {
      this.params.set(
        VALUE_HEAD.weight,
        tf.variable(tf.randomNormal([1, this.config.hidden_size], 0, 0.02, 'float32', tfSeed(seed)), true),
      );
      this.params.set(VALUE_HEAD.bias, tf.variable(tf.zeros([1]), true));
    });
  }

  private p(name: string): tf.Variable {
    return this.params.get(name)!;
  }

  /** A projection's bias, or zeros of its width when the model has none (native passes only). */
  private biasOrZeros(name: string, width: number): tf.Tensor1D {
    const p = this.params.get(name);
    if (p) return p as tf.Tensor as tf.Tensor1D;
    let zeros = this.zeroBiases.get(width);
    if (!zeros) {
      zeros = tf.keep(tf.zeros([width])) as tf.Tensor1D;
      this.zeroBiases.set(width, zeros);
    }
    return zeros;
  }

  /** x + bias when the model has that bias. */
  private addBias(x: tf.Tensor2D, name: string): tf.Tensor2D {
    const b = this.params.get(name);
    return b ? (tf.add(x, b) as tf.Tensor2D) : x;
  }

  private rmsNorm(x: tf.Tensor, weight: string): tf.Tensor {
    const variance = tf.mean(tf.square(x), -1, true);
    return tf.mul(tf.mul(x, tf.rsqrt(tf.add(variance, this.config.rms_norm_eps))), this.p(weight));
  }

  /**
   * Rotary embedding on [B, heads, T, hd], HF's rotate-half convention: x * cos + rotate_half(x) * sin
   * with rotate_half(x) = [-x2, x1], computed as [x2, x1] * [-sin, sin] (the same products).
   */
  private rope(x: tf.Tensor4D, cos: tf.Tensor4D, signedSin: tf.Tensor4D): tf.Tensor4D {
    const half = this.headDim / 2;
    const [x1, x2] = tf.split(x, [half, half], -1) as [tf.Tensor4D, tf.Tensor4D];
    return tf.add(tf.mul(x, cos), tf.mul(tf.concat([x2, x1], -1), signedSin)) as tf.Tensor4D;
  }

  forward(input: ForwardInput, opts: { useCache?: boolean } = {}): ForwardOutput {
    return this.run(input, opts, true) as ForwardOutput;
  }

  /**
   * The final hidden states [B T, H] (after the last norm) without the LM head, for a loss that
   * applies the head itself in chunks (engine/train/head-loss.ts). Under a gradient tape.
   */
  finalHidden(input: ForwardInput): tf.Tensor2D {
    const { hidden } = this.run(input, {}, false);
    const [B, T, H] = hidden.shape;
    return tf.reshape(hidden, [B * T, H]) as tf.Tensor2D;
  }

  /** The LM head's weight [V, H] (the embedding when tied). */
  headWeight(): tf.Variable {
    return this.p(this.config.tie_word_embeddings ? 'model.embed_tokens.weight' : 'lm_head.weight');
  }

  private run(
    input: ForwardInput,
    opts: { useCache?: boolean },
    withHead: boolean,
  ): Omit<ForwardOutput, 'logits'> & { logits?: tf.Tensor3D } {
    // On the native backend, a pass whose gradient nobody records runs as fused raw ops.
    if (this.nativeCapable && nativeInferenceActive() && !recordingGradients()) return this.nativeForward(input, opts);
    // The fused training layer trains adapters too, but knows no dropout: that takes the tfjs ops.
    const fusedLora = !this.lora || this.lora.config.dropout === 0;
    if (this.nativeCapable && fusedLora && nativeTraining && isNativeBackend() && !input.cache && !opts.useCache)
      return this.nativeTrainingForward(input, withHead);
    const c = this.config;
    const [B, T] = input.ids.shape;
    const hd = this.headDim;
    const nH = c.num_attention_heads;
    const nKV = c.num_key_value_heads;
    const rep = nH / nKV;
    const { keyPositions, keyValid, S, bias, cos, signedSin } = this.attentionInputs(input);
    const scale = 1 / Math.sqrt(hd);

    let h = tf.reshape(tf.gather(this.p('model.embed_tokens.weight'), tf.reshape(input.ids, [B * T])), [
      B * T,
      c.hidden_size,
    ]) as tf.Tensor2D;
    const newK: tf.Tensor4D[] = [];
    const newV: tf.Tensor4D[] = [];
    for (let i = 0; i < c.num_hidden_layers; i++) {
      // One scope per layer: what the layer made and does not return is freed here, not at the end
      // of the whole pass (what the backward pass needs, tfjs has already kept aside).
      const layer = tf.tidy(() => {
        const l = `model.layers.${i}.`;
        let hl = h;
        const x = this.rmsNorm(hl, `${l}input_layernorm.weight`) as tf.Tensor2D;
        // q, k and v as three products: fused into one [H, q+k+v] product they measured no faster
        // on wasm (the split and the concatenated weight gradient cost what the calls save).
        const heads = (t: tf.Tensor, n: number) => tf.transpose(tf.reshape(t, [B, T, n, hd]), [0, 2, 1, 3]) as tf.Tensor4D;
        const proj = (name: string) => this.addBias(this.linear(x, `${l}self_attn.${name}_proj.weight`), `${l}self_attn.${name}_proj.bias`);
        // Qwen3 normalises every head before the rotary embedding.
        const normed = (t: tf.Tensor4D, name: string) => (this.params.has(name) ? (this.rmsNorm(t, name) as tf.Tensor4D) : t);
        const q = this.rope(normed(heads(proj('q'), nH), `${l}self_attn.q_norm.weight`), cos, signedSin);
        let k = this.rope(normed(heads(proj('k'), nKV), `${l}self_attn.k_norm.weight`), cos, signedSin);
        let v = heads(proj('v'), nKV);
        if (input.cache) {
          k = tf.concat([input.cache.k[i]!, k], 2) as tf.Tensor4D;
          v = tf.concat([input.cache.v[i]!, v], 2) as tf.Tensor4D;
        }
        // Grouped-query attention without copying K/V: the query heads that share a KV head are
        // stacked along the time axis of that head.
        const qg = tf.reshape(q, [B, nKV, rep * T, hd]);
        const scores = tf.reshape(tf.mul(tf.matMul(qg, k, false, true), scale), [B, nKV, rep, T, S]);
        const probs = tf.softmax(tf.add(scores, bias));
        const attn = tf.matMul(tf.reshape(probs, [B, nKV, rep * T, S]), v);
        const merged = tf.reshape(tf.transpose(tf.reshape(attn, [B, nH, T, hd]), [0, 2, 1, 3]), [B * T, nH * hd]) as tf.Tensor2D;
        hl = tf.add(hl, this.addBias(this.linear(merged, `${l}self_attn.o_proj.weight`), `${l}self_attn.o_proj.bias`));
        const y = this.rmsNorm(hl, `${l}post_attention_layernorm.weight`) as tf.Tensor2D;
        // gate and up stay two products: fused, the split of the [N, 2I] result costs more than
        // the second matmul call saves (measured on wasm).
        const gate = this.linear(y, `${l}mlp.gate_proj.weight`);
        const up = this.linear(y, `${l}mlp.up_proj.weight`);
        const gated = tf.mul(tf.mul(gate, tf.sigmoid(gate)), up) as tf.Tensor2D;
        hl = tf.add(hl, this.linear(gated, `${l}mlp.down_proj.weight`));
        return opts.useCache ? { h: hl, k, v } : { h: hl };
      }) as { h: tf.Tensor2D; k?: tf.Tensor4D; v?: tf.Tensor4D };
      h = layer.h;
      if (opts.useCache) {
        newK.push(layer.k!);
        newV.push(layer.v!);
      }
    }
    const hidden = this.rmsNorm(h, 'model.norm.weight') as tf.Tensor2D;
    const head = c.tie_word_embeddings ? 'model.embed_tokens.weight' : 'lm_head.weight';
    const logits = withHead ? (tf.reshape(this.linear(hidden, head), [B, T, c.vocab_size]) as tf.Tensor3D) : undefined;
    const out: Omit<ForwardOutput, 'logits'> & { logits?: tf.Tensor3D } = {
      logits,
      hidden: tf.reshape(hidden, [B, T, c.hidden_size]) as tf.Tensor3D,
    };
    if (opts.useCache) out.cache = { k: newK, v: newV, positions: keyPositions as tf.Tensor2D, valid: keyValid as tf.Tensor2D };
    return out;
  }

  /** The attention mask [B, 1, 1, T, S] (0 or -1e9) and rotary tables [B, 1, T, hd] of a pass. */
  private attentionInputs(input: ForwardInput) {
    const [B, T] = input.ids.shape;
    const hd = this.headDim;
    const valid = input.valid ?? tf.ones([B, T]);
    // Positions of every key (cached + new) and which of them may be attended to.
    const keyPositions = input.cache ? tf.concat([input.cache.positions, input.positions], 1) : input.positions;
    const keyValid = input.cache ? tf.concat([input.cache.valid, valid], 1) : valid;
    const S = keyPositions.shape[1];
    const allowed = tf.logicalAnd(
      tf.greater(tf.reshape(keyValid, [B, 1, S]), 0.5),
      tf.lessEqual(tf.reshape(keyPositions, [B, 1, S]), tf.reshape(input.positions, [B, T, 1])),
    );
    const bias = tf.reshape(tf.mul(tf.sub(1, tf.cast(allowed, 'float32')), -1e9), [B, 1, 1, T, S]);

    const freqs = tf.mul(tf.reshape(tf.cast(input.positions, 'float32'), [B, T, 1]), tf.reshape(this.invFreq, [1, 1, hd / 2]));
    const cos = tf.reshape(tf.cos(tf.concat([freqs, freqs], -1)), [B, 1, T, hd]) as tf.Tensor4D;
    const sinHalf = tf.sin(freqs);
    const signedSin = tf.reshape(tf.concat([tf.neg(sinHalf), sinHalf], -1), [B, 1, T, hd]) as tf.Tensor4D;
    return { keyPositions: keyPositions as tf.Tensor2D, keyValid: keyValid as tf.Tensor2D, S, bias, cos, signedSin };
  }

  /**
   * The weights of the native pass: per layer q/k/v as one [H, (nH + 2 nKV) hd] product (q scaled
   * by 1/sqrt(hd)), gate and up as one [H, 2I], all transposed to [in, out], and each RMSNorm's
   * weight folded into the product that follows it. Rebuilt when a parameter changes.
   */
  private nativeWeights(): NativeWeights {
    const c = this.config;
    const sources = [...this.lmParams().values(), ...(this.lora ? this.lora.params().values() : [])];
    if (this.native && this.native.sources.every(([v, id]) => v.dataId === id) && this.native.sources.length === sources.length)
      return this.native.weights;
    this.disposeNative();
    const weights = tf.tidy(() => {
      const H = c.hidden_size;
      const qWidth = c.num_attention_heads * this.headDim;
      const kvWidth = c.num_key_value_heads * this.headDim;
      const scale = 1 / Math.sqrt(this.headDim);
      // An adapter is folded into the weights it adapts: inference costs what it costs without one.
      const t = (name: string) => tf.transpose(this.lora?.has(name) ? this.lora.merged(name, this.p(name)) : this.p(name)) as tf.Tensor2D;
      const column = (name: string) => tf.reshape(this.p(name), [H, 1]);
      const layers = Array.from({ length: c.num_hidden_layers }, (_, i) => {
        const l = `model.layers.${i}.`;
        const a = `${l}self_attn.`;
        return {
          qkv: tf.mul(
            tf.concat([tf.mul(t(`${a}q_proj.weight`), scale), t(`${a}k_proj.weight`), t(`${a}v_proj.weight`)], 1),
            column(`${l}input_layernorm.weight`),
          ) as tf.Tensor2D,
          qkvBias: tf.concat([
            tf.mul(this.biasOrZeros(`${a}q_proj.bias`, qWidth), scale),
            this.biasOrZeros(`${a}k_proj.bias`, kvWidth),
            this.biasOrZeros(`${a}v_proj.bias`, kvWidth),
          ]) as tf.Tensor1D,
          o: t(`${a}o_proj.weight`),
          gateUp: tf.mul(
            tf.concat([t(`${l}mlp.gate_proj.weight`), t(`${l}mlp.up_proj.weight`)], 1),
            column(`${l}post_attention_layernorm.weight`),
          ) as tf.Tensor2D,
          down: t(`${l}mlp.down_proj.weight`),
        };
      });
      const headName = c.tie_word_embeddings ? 'model.embed_tokens.weight' : 'lm_head.weight';
      return {
        embed: tf.clone(this.p('model.embed_tokens.weight')) as tf.Tensor2D,
        layers,
        head: tf.mul(t(headName), column('model.norm.weight')) as tf.Tensor2D,
        finalNorm: tf.clone(this.p('model.norm.weight')) as tf.Tensor1D,
      };
    });
    // Kept: a caller's enclosing tidy must not free them with its own tensors.
    for (const x of nativeTensors(weights)) tf.keep(x);
    this.native = { weights, sources: sources.map((v) => [v, v.dataId]) };
    return weights;
  }

  private disposeNative(): void {
    if (!this.native) return;
    tf.dispose(nativeTensors(this.native.weights));
    this.native = null;
  }

  /** forward() without gradients on the native backend (engine/tensor/native-kernels.ts). */
  private nativeForward(input: ForwardInput, opts: { useCache?: boolean }): ForwardOutput {
    const c = this.config;
    const weights = this.nativeWeights();
    return tf.tidy(() => {
      const [B, T] = input.ids.shape;
      const valid = input.valid ?? tf.ones([B, T]);
      const keyPositions = (input.cache ? tf.concat([input.cache.positions, input.positions], 1) : input.positions) as tf.Tensor2D;
      const keyValid = (input.cache ? tf.concat([input.cache.valid, valid], 1) : valid) as tf.Tensor2D;
      const shape = {
        B,
        T,
        hidden: c.hidden_size,
        intermediate: c.intermediate_size,
        heads: c.num_attention_heads,
        kvHeads: c.num_key_value_heads,
        headDim: this.headDim,
        vocab: c.vocab_size,
        eps: c.rms_norm_eps,
      };
      const tables = nativeTables(input.positions.dataSync(), keyPositions.dataSync(), keyValid.dataSync(), {
        ...shape,
        S: keyPositions.shape[1],
        invFreq: this.invFreqValues,
      });
      const out = nativeInference(
        weights,
        { ids: input.ids, ...tables, cacheK: input.cache?.k, cacheV: input.cache?.v },
        shape,
        Boolean(opts.useCache),
      );
      const result: ForwardOutput = { logits: out.logits, hidden: out.hidden };
      if (opts.useCache) result.cache = { k: out.k, v: out.v, positions: keyPositions, valid: keyValid };
      return result as unknown as tf.TensorContainer;
    }) as unknown as ForwardOutput;
  }

  /**
   * forward() on the native backend when gradients may be taken and no cache is involved (the
   * training passes): each decoder layer is one hand-differentiated op (./native-layer.ts); the
   * embedding, final norm and head stay tfjs ops.
   */
  private nativeTrainingForward(input: ForwardInput, withHead: boolean): Omit<ForwardOutput, 'logits'> & { logits?: tf.Tensor3D } {
    const c = this.config;
    const [B, T] = input.ids.shape;
    const hd = this.headDim;
    const shape = {
      B,
      T,
      hidden: c.hidden_size,
      intermediate: c.intermediate_size,
      heads: c.num_attention_heads,
      kvHeads: c.num_key_value_heads,
      headDim: hd,
      vocab: c.vocab_size,
      eps: c.rms_norm_eps,
    };
    const tables = tf.tidy(() => {
      const valid = input.valid ?? tf.ones([B, T]);
      const t = nativeTables(input.positions.dataSync(), input.positions.dataSync(), valid.dataSync(), {
        ...shape,
        S: T,
        invFreq: this.invFreqValues,
      });
      // The attention scale folded into the query heads' rotary tables.
      const G = shape.heads + 2 * shape.kvHeads;
      const scale = tf.tensor4d(
        Float32Array.from({ length: G }, (_, g) => (g < shape.heads ? 1 / Math.sqrt(hd) : 1)),
        [1, G, 1, 1],
      );
      return { bias: t.bias, cos: tf.mul(t.cos, scale), sin: tf.mul(t.signedSin, scale) };
    });
    try {
      let h = tf.reshape(tf.gather(this.p('model.embed_tokens.weight'), tf.reshape(input.ids, [B * T])), [
        B * T,
        c.hidden_size,
      ]) as tf.Tensor2D;
      for (let i = 0; i < c.num_hidden_layers; i++) {
        const l = `model.layers.${i}.`;
        const a = `${l}self_attn.`;
        const qWidth = c.num_attention_heads * hd;
        const kvWidth = c.num_key_value_heads * hd;
        const weights = [
          this.p(`${l}input_layernorm.weight`),
          this.p(`${a}q_proj.weight`),
          this.biasOrZeros(`${a}q_proj.bias`, qWidth),
          this.p(`${a}k_proj.weight`),
          this.biasOrZeros(`${a}k_proj.bias`, kvWidth),
          this.p(`${a}v_proj.weight`),
          this.biasOrZeros(`${a}v_proj.bias`, kvWidth),
          this.p(`${a}o_proj.weight`),
          this.p(`${l}post_attention_layernorm.weight`),
          this.p(`${l}mlp.gate_proj.weight`),
          this.p(`${l}mlp.up_proj.weight`),
          this.p(`${l}mlp.down_proj.weight`),
        ];
        h = nativeDecoderLayer(h, weights, tables, shape, { adapters: this.layerAdapters(i), scale: this.lora?.scale ?? 1 });
      }
      const hidden = this.rmsNorm(h, 'model.norm.weight') as tf.Tensor2D;
      const head = c.tie_word_embeddings ? 'model.embed_tokens.weight' : 'lm_head.weight';
      const logits = withHead ? (tf.reshape(this.linear(hidden, head), [B, T, c.vocab_size]) as tf.Tensor3D) : undefined;
      return { logits, hidden: tf.reshape(hidden, [B, T, c.hidden_size]) as tf.Tensor3D };
    } finally {
      tf.dispose([tables.bias, tables.cos, tables.sin]);
    }
  }

  /** Layer i's LoRA matrices, for the fused training layer. */
  private layerAdapters(i: number): LayerAdapter[] {
    const lora = this.lora;
    if (!lora) return [];
    return (Object.keys(WEIGHT_INDEX) as LayerAdapter['weight'][]).flatMap((module) => {
      const parent = module === 'gate_proj' || module === 'up_proj' || module === 'down_proj' ? 'mlp' : 'self_attn';
      const name = `model.layers.${i}.${parent}.${module}.weight`;
      return lora.has(name) ? [{ weight: module, a: lora.a.get(name)!, b: lora.b.get(name)! }] : [];
    });
  }

  /** The critic's estimate for every position, from the final hidden states: [B, T]. */
  values(hidden: tf.Tensor3D): tf.Tensor2D {
    const [B, T, H] = hidden.shape;
    const v = tf.add(
      tf.matMul(tf.reshape(hidden, [B * T, H]) as tf.Tensor2D, this.p(VALUE_HEAD.weight), false, true),
      this.p(VALUE_HEAD.bias),
    );
    return tf.reshape(v, [B, T]) as tf.Tensor2D;
  }

  /** The language model's weights: everything but the critic's value head. */
  lmParams(): Params {
    return new Map([...this.params].filter(([name]) => !name.startsWith('value_head.')));
  }

  /** What training the policy updates: the adapter's matrices when one is attached, else every weight. */
  policyParams(): Params {
    return this.lora ? this.lora.params() : this.lmParams();
  }

  parameterCount(): number {
    let n = 0;
    for (const p of this.lmParams().values()) n += p.size;
    return n;
  }

  dispose(): void {
    for (const p of this.params.values()) p.dispose();
    for (const { wt } of this.packed.values()) wt.dispose();
    this.packed.clear();
    this.disposeNative();
    this.lora?.dispose();
    this.lora = null;
    for (const z of this.zeroBiases.values()) z.dispose();
    this.zeroBiases.clear();
    this.invFreq.dispose();
  }
}

function nativeTensors(w: NativeWeights): tf.Tensor[] {
  return [w.embed, w.head, w.finalNorm, ...w.layers.flatMap((l) => [l.qkv, l.qkvBias, l.o, l.gateUp, l.down])];
}

/** Whether a gradient tape is being recorded (inside tf.grads / variableGrads). */
function recordingGradients(): boolean {
  return (tf.engine() as unknown as { state: { gradientDepth: number } }).state.gradientDepth > 0;
}

export function disposeCache(cache: KVCache | undefined): void {
  if (!cache) return;
  tf.dispose([...cache.k, ...cache.v, cache.positions, cache.valid]);
}
