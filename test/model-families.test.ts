import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModel, saveModel } from '../engine/model/checkpoint.js';
import { DecoderConfigSchema } from '../engine/model/config.js';
import { setNativeTraining, DecoderModel } from '../engine/model/decoder.js';
import { generate } from '../engine/model/generate.js';
import { initBackend, tf } from '../engine/tensor/backend.js';
import { lossAndGrads } from '../engine/train/step.js';
import { describeOnEachBackend } from './helpers/backends.js';
import { tempHome } from './helpers/cli.js';
import { maxAbsDiff, reference } from './helpers/reference.js';
import { logitsOf } from './helpers/logits.js';

// Small random configs of each family, each exercising what sets the family apart.
const BASE = {
  vocab_size: 89,
  hidden_size: 48,
  intermediate_size: 80,
  num_hidden_layers: 2,
  num_attention_heads: 6,
  num_key_value_heads: 2,
  max_position_embeddings: 128,
};
const FAMILIES: Record<string, Record<string, unknown>> = {
  // Llama 3.x: no biases, untied head, Llama 3 rotary scaling with a short original context so
  // that all three frequency bands (kept, smoothed, divided) occur.
  llama3: {
    ...BASE,
    model_type: 'llama',
    tie_word_embeddings: false,
    rope_theta: 500_000,
    rope_scaling: { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 64 },
  },
  // SmolLM2's shape: tied embeddings, default rope; here with q/k/v/o biases and a head_dim apart from hidden / heads.
  'llama-bias': { ...BASE, model_type: 'llama', tie_word_embeddings: true, attention_bias: true, head_dim: 12, rope_theta: 100_000 },
  // Qwen3: q/k norms and an explicit head_dim larger than hidden / heads.
  qwen3: { ...BASE, model_type: 'qwen3', tie_word_embeddings: true, head_dim: 16, rope_theta: 1_000_000 },
};
const IDS = [
  [1, 5, 9, 3, 70, 2, 8, 40, 88, 17],
  [4, 4, 60, 0, 13, 13, 7, 1, 2, 3],
];

describe('Llama and Qwen3 against Hugging Face transformers (float32, CPU)', () => {
  const home = tempHome('retool-families-');
  const dir = (name: string) => join(home.dir, name);
  const names = Object.keys(FAMILIES);
  const expected = new Map<string, { logits: number[]; generated: number[]; roundTrip: number[] }>();

  beforeAll(async () => {
    await initBackend();
    // Our own random weights, written for transformers to read back.
    for (const name of names) {
      const m = DecoderModel.init(DecoderConfigSchema.parse(FAMILIES[name]), 21);
      await saveModel(dir(`ours-${name}`), m);
      m.dispose();
    }
    const results = await reference(
      names.flatMap((name, i) => [
        { op: 'make' as const, dir: dir(name), config: FAMILIES[name]!, seed: 30 + i },
        { op: 'logits' as const, dir: dir(name), ids: IDS },
        { op: 'generate' as const, dir: dir(name), ids: [IDS[0]!.slice(0, 4)], new_tokens: 12 },
        { op: 'logits' as const, dir: dir(`ours-${name}`), ids: IDS },
      ]),
    );
    names.forEach((name, i) =>
      expected.set(name, {
        logits: (results[4 * i + 1] as number[][][]).flat(2),
        generated: (results[4 * i + 2] as number[][])[0]!,
        roundTrip: (results[4 * i + 3] as number[][][]).flat(2),
      }),
    );
  }, 300_000);
  afterAll(() => home.cleanup());

  describeOnEachBackend('on', () => {
    it.each(names)('%s: loads a transformers checkpoint to the same logits within 1e-4', (name) => {
      const { model } = loadModel(dir(name));
      expect(model.config.model_type).toBe(FAMILIES[name]!.model_type);
      expect(maxAbsDiff(logitsOf(model, IDS), expected.get(name)!.logits)).toBeLessThanOrEqual(1e-4);
      model.dispose();
    });

    it.each(names)('%s: generates greedily what transformers generates, cached and not', (name) => {
      const { model } = loadModel(dir(name));
      const prompt = IDS[0]!.slice(0, 4);
      const want = expected.get(name)!.generated;
      expect(generate(model, [prompt], { maxNewTokens: 12, temperature: 0 })[0]!.tokens).toEqual(want);
      expect(generate(model, [prompt], { maxNewTokens: 12, temperature: 0, useCache: false })[0]!.tokens).toEqual(want);
      model.dispose();
    });

    it.each(names)('%s: writes a checkpoint transformers reads to the same logits', (name) => {
      const { model } = loadModel(dir(`ours-${name}`));
      expect(maxAbsDiff(logitsOf(model, IDS), expected.get(name)!.roundTrip)).toBeLessThanOrEqual(1e-4);
      model.dispose();
    });

    // On wasm both passes are tfjs's; on the native backend the first is the fused layer.
    it('the fused training layer of a bias-free Llama gives the gradients tfjs derives', () => {
      const { model } = loadModel(dir('llama3'));
      const batch = { ids: IDS, lossMask: IDS.map((r) => r.map((_, i) => (i > 2 ? 1 : 0))) };
      const fused = lossAndGrads(model, batch);
      setNativeTraining(false);
      const derived = lossAndGrads(model, batch);
      setNativeTraining(true);
      expect(Math.abs(fused.loss - derived.loss)).toBeLessThan(1e-5);
      expect([...fused.grads.keys()].sort()).toEqual([...derived.grads.keys()].sort());
      expect([...fused.grads.keys()].some((k) => k.endsWith('_proj.bias'))).toBe(false);
      for (const [k, g] of fused.grads) expect(maxAbsDiff(g.dataSync(), derived.grads.get(k)!.dataSync()), k).toBeLessThan(1e-5);
      tf.dispose([...fused.grads.values(), ...derived.grads.values()]);
      model.dispose();
    });
  });
});

describe('model configs', () => {
  it('refuses rotary scalings it does not implement, naming the field', () => {
    const r = DecoderConfigSchema.safeParse({ ...BASE, model_type: 'llama', rope_scaling: { rope_type: 'yarn', factor: 4 } });
    expect(r.success).toBe(false);
    expect(r.error!.issues[0]!.path).toContain('rope_scaling');
  });

  it('refuses an unknown model_type and a sliding-window Qwen2', () => {
    expect(DecoderConfigSchema.safeParse({ ...BASE, model_type: 'gpt2' }).success).toBe(false);
    expect(DecoderConfigSchema.safeParse({ ...BASE, use_sliding_window: true }).success).toBe(false);
  });
});
