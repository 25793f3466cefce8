import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModel, saveModel } from '../engine/model/checkpoint.js';
import { DecoderConfigSchema, PRESETS } from '../engine/model/config.js';
import { Decoder, generate } from '../engine/model/generate.js';
import { DecoderModel } from '../engine/model/decoder.js';
import { initBackend, tf } from '../engine/tensor/backend.js';
import { setNativeConstantLimit } from '../engine/tensor/native-kernels.js';
import { describeOnEachBackend } from './helpers/backends.js';
import { AdamW, OptimizerConfigSchema } from '../engine/train/optim.js';
import { accumulatedTrainStep, lossAndGrads, trainStep, type TokenBatch } from '../engine/train/step.js';
import { json, retool, tempHome } from './helpers/cli.js';
import { maxAbsDiff, reference } from './helpers/reference.js';
import { logitsOf } from './helpers/logits.js';

const GQA = {
  vocab_size: 97,
  hidden_size: 32,
  intermediate_size: 64,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  max_position_embeddings: 64,
  rope_theta: 10000,
};
const IDS = [
  [1, 5, 9, 3, 70, 2, 8, 40],
  [4, 4, 96, 0, 13, 13, 7, 1],
];

describe('Qwen2 against Hugging Face transformers (float32, CPU)', () => {
  const home = tempHome('retool-model-');
  const dir = (name: string) => join(home.dir, name);
  let results: unknown[];

  beforeAll(async () => {
    await initBackend();
    // Checkpoints written here, for transformers to read back.
    for (const tied of [false, true]) {
      const m = DecoderModel.init(DecoderConfigSchema.parse({ ...GQA, tie_word_embeddings: tied }), 11);
      await saveModel(dir(`ours-${tied}`), m, { maxShardBytes: tied ? 20_000 : undefined });
      m.dispose();
    }
    results = await reference([
      { op: 'make', dir: dir('hf-untied'), config: { ...GQA, tie_word_embeddings: false }, seed: 1 },
      { op: 'make', dir: dir('hf-tied'), config: { ...GQA, tie_word_embeddings: true }, seed: 2 },
      {
        op: 'make',
        dir: dir('hf-bf16'),
        config: { ...GQA, tie_word_embeddings: false },
        seed: 3,
        dtype: 'bfloat16',
        max_shard_size: '30KB',
      },
      { op: 'logits', dir: dir('hf-untied'), ids: IDS },
      { op: 'logits', dir: dir('hf-tied'), ids: IDS },
      { op: 'logits', dir: dir('hf-bf16'), ids: IDS },
      { op: 'logits', dir: dir('ours-false'), ids: IDS },
      { op: 'logits', dir: dir('ours-true'), ids: IDS },
      { op: 'generate', dir: dir('hf-untied'), ids: [IDS[0]!.slice(0, 5)], new_tokens: 16 },
    ]);
  }, 300_000);
  afterAll(() => home.cleanup());

  describeOnEachBackend('on', () => {
    it.each([
      ['untied', 'hf-untied', 3],
      ['tied', 'hf-tied', 4],
      ['bf16, sharded', 'hf-bf16', 5],
    ])('loads a transformers checkpoint (%s) and matches its logits within 1e-4', (_label, name, index) => {
      const { model } = loadModel(dir(name));
      const expected = (results[index] as number[][][]).flat(2);
      expect(maxAbsDiff(logitsOf(model, IDS), expected)).toBeLessThanOrEqual(1e-4);
      model.dispose();
    });

    it.each([
      ['untied', 'ours-false', 6],
      ['tied, sharded', 'ours-true', 7],
    ])('writes a checkpoint (%s) that transformers loads to the same logits', (_label, name, index) => {
      const { model } = loadModel(dir(name));
      expect(maxAbsDiff(logitsOf(model, IDS), (results[index] as number[][][]).flat(2))).toBeLessThanOrEqual(1e-4);
      model.dispose();
    });

    it('generates greedily the same tokens as transformers, with and without the cache', () => {
      const { model } = loadModel(dir('hf-untied'));
      const prompt = IDS[0]!.slice(0, 5);
      const expected = (results[8] as number[][])[0]!;
      expect(generate(model, [prompt], { maxNewTokens: 16, temperature: 0 })[0]!.tokens).toEqual(expected);
      expect(generate(model, [prompt], { maxNewTokens: 16, temperature: 0, useCache: false })[0]!.tokens).toEqual(expected);
      model.dispose();
    });
  });
});

describeOnEachBackend('decoding', () => {
  let model: DecoderModel;
  beforeAll(() => {
    model = DecoderModel.init(DecoderConfigSchema.parse({ ...GQA, tie_word_embeddings: true }), 5);
  });
  afterAll(() => model.dispose());

  it('batches ragged prompts exactly like decoding each alone, cached or not', () => {
    const prompts = [
      [1, 5, 9, 3],
      [7, 2],
      [4, 4, 4, 4, 4, 4, 4],
    ];
    const before = tf.memory().numTensors;
    const batched = generate(model, prompts, { maxNewTokens: 10, temperature: 0 }).map((g) => g.tokens);
    const uncached = generate(model, prompts, { maxNewTokens: 10, temperature: 0, useCache: false }).map((g) => g.tokens);
    const alone = prompts.map((p) => generate(model, [p], { maxNewTokens: 10, temperature: 0 })[0]!.tokens);
    expect(batched).toEqual(alone);
    expect(uncached).toEqual(alone);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('drops finished rows from the batch, and the rest decode exactly as alone, a paused row resuming after the drop', () => {
    const prompts = [
      [1, 5, 9, 3],
      [7, 2],
      [4, 4, 4, 4],
    ];
    const limits = [3, 12, 7];
    const perRow = limits.map((maxNewTokens) => ({ temperature: 0, topP: 1, seed: 0, maxNewTokens }));
    const before = tf.memory().numTensors;
    const decoder = new Decoder(model, prompts, { perRow });
    const batchSizes: number[] = [];
    while (decoder.hasActive) {
      decoder.step();
      batchSizes.push(decoder.batchRows);
    }
    // The batch shrinks at the step after a row's last token: 3 rows, then 2 after row 0, 1 after row 2.
    expect(batchSizes).toEqual([3, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 1]);
    const alone = prompts.map((p, i) => generate(model, [p], { maxNewTokens: limits[i], temperature: 0 })[0]!.tokens);
    expect(decoder.rows.map((r) => r.tokens)).toEqual(alone);
    decoder.dispose();
    expect(tf.memory().numTensors).toBe(before);

    const prompt = [1, 5, 9];
    const pauseAt = generate(model, [prompt], { maxNewTokens: 6, temperature: 0 })[0]!.tokens[2]!;
    const paused = new Decoder(model, [prompt, [7, 7]], {
      pauseIds: [pauseAt],
      perRow: [30, 1].map((maxNewTokens) => ({ temperature: 0, topP: 1, seed: 0, maxNewTokens })),
    });
    while (paused.rows[0]!.state === 'active') paused.step();
    paused.append(0, [40, 41]);
    paused.resume(0);
    for (let i = 0; i < 4; i++) paused.step();
    expect(paused.batchRows).toBe(1);
    const head = paused.rows[0]!.tokens.slice(0, 3);
    const continued = paused.rows[0]!.tokens.slice(5);
    paused.dispose();
    const fresh = generate(model, [[...prompt, ...head, 40, 41]], { maxNewTokens: continued.length, temperature: 0 })[0]!.tokens;
    expect(continued).toEqual(fresh);
  });

  it('feeds an appended span only through the rows that took it: every row decodes as alone, with fewer positions computed than padding the batch', () => {
    const prompts = [
      [1, 5, 9],
      [7, 2, 8],
      [4, 4],
      [6, 3, 1, 2],
    ];
    const span = [40, 41, 42, 43, 44, 45, 46, 47];
    const run = (raggedPrefill: boolean) => {
      const decoder = new Decoder(model, prompts, { maxNewTokens: 12, temperature: 0, raggedPrefill });
      let appended = false;
      // Row 0 takes the span after its second token; the other rows decode on.
      while (decoder.hasActive) {
        decoder.step();
        if (!appended && decoder.rows[0]!.tokens.length === 2) {
          decoder.append(0, span);
          appended = true;
        }
      }
      const out = { tokens: decoder.rows.map((r) => r.tokens), positions: decoder.fedPositions };
      decoder.dispose();
      return out;
    };
    const before = tf.memory().numTensors;
    const ragged = run(true);
    const padded = run(false);
    expect(tf.memory().numTensors).toBe(before);
    const head = ragged.tokens[0]!.slice(0, 2);
    const rest = generate(model, [[...prompts[0]!, ...head, ...span]], { maxNewTokens: 10, temperature: 0 })[0]!.tokens;
    expect(ragged.tokens[0]).toEqual([...head, ...span, ...rest]);
    for (const [i, p] of prompts.entries())
      if (i > 0) expect(ragged.tokens[i]).toEqual(generate(model, [p], { maxNewTokens: 12, temperature: 0 })[0]!.tokens);
    expect(padded.tokens).toEqual(ragged.tokens);
    // The span's 8 positions: once for row 0, not 8 times for each of the other three rows too.
    expect(padded.positions - ragged.positions).toBe(3 * span.length);
  });

  it('decodes the same when the native constant cache must be emptied at every pass (its ids stay valid through a pass)', () => {
    const prompts = [
      [1, 5, 9],
      [7, 2, 8, 3],
    ];
    const want = generate(model, prompts, { maxNewTokens: 8, temperature: 0 }).map((g) => g.tokens);
    const limit = setNativeConstantLimit(1);
    try {
      expect(generate(model, prompts, { maxNewTokens: 8, temperature: 0 }).map((g) => g.tokens)).toEqual(want);
    } finally {
      setNativeConstantLimit(limit);
    }
  });

  it('pauses on a string that a token carries past, cut after the string, and continues from the cut', () => {
    const prompt = [1, 5, 9];
    const [first] = generate(model, [prompt], { maxNewTokens: 1, temperature: 0 })[0]!.tokens;
    // A vocabulary where the first greedy token reads "x</code>." and "x</code>" is two other tokens.
    const cut = [(first! + 1) % 97, (first! + 2) % 97];
    const decode = (ids: number[]) => ids.map((i) => (i === first ? 'x</code>.' : `<${i}>`)).join('');
    const encode = (text: string) => (text === 'x</code>' ? cut : [0]);
    const decoder = new Decoder(model, [prompt], { maxNewTokens: 10, temperature: 0, pauseStrings: ['</code>'] }, decode, encode);
    decoder.step();
    const row = decoder.rows[0]!;
    expect(row.reason).toBe('pause');
    expect(row.tokens).toEqual(cut);
    expect(row.logprobs).toEqual([null, null]);
    decoder.append(0, [40, 41]);
    decoder.resume(0);
    for (let i = 0; i < 4; i++) decoder.step();
    const continued = row.tokens.slice(4);
    decoder.dispose();
    const fresh = generate(model, [[...prompt, ...cut, 40, 41]], { maxNewTokens: continued.length, temperature: 0 })[0]!.tokens;
    expect(continued).toEqual(fresh);
  });

  it('samples reproducibly for a seed and differently for another', () => {
    const a = generate(model, [[1, 2, 3]], { maxNewTokens: 24, temperature: 1.5, seed: 7 })[0]!.tokens;
    const b = generate(model, [[1, 2, 3]], { maxNewTokens: 24, temperature: 1.5, seed: 7 })[0]!.tokens;
    const c = generate(model, [[1, 2, 3]], { maxNewTokens: 24, temperature: 1.5, seed: 8 })[0]!.tokens;
    expect(a).toEqual(b);
    expect(a).not.toEqual(c);
  });

  it('pauses on a stop token, takes appended tokens and continues as if they had been in the prompt', () => {
    const prompt = [1, 5, 9];
    const free = generate(model, [prompt], { maxNewTokens: 6, temperature: 0 })[0]!.tokens;
    const pauseAt = free[2]!;
    const decoder = new Decoder(model, [prompt, [7, 7]], { maxNewTokens: 30, temperature: 0, pauseIds: [pauseAt] });
    while (decoder.rows[0]!.state === 'active') decoder.step();
    expect(decoder.rows[0]!.reason).toBe('pause');
    const before = [...decoder.rows[0]!.tokens];
    expect(before[before.length - 1]).toBe(pauseAt);
    const injected = [40, 41, 42];
    decoder.append(0, injected);
    decoder.resume(0);
    for (let i = 0; i < 5; i++) decoder.step();
    const continued = decoder.rows[0]!.tokens.slice(before.length + injected.length);
    // The interpreter's tokens carry no log-prob: they were not sampled.
    expect(decoder.rows[0]!.logprobs.slice(before.length, before.length + injected.length)).toEqual([null, null, null]);
    decoder.dispose();
    const fresh = generate(model, [[...prompt, ...before, ...injected]], {
      maxNewTokens: continued.length,
      temperature: 0,
      pauseIds: [],
    })[0]!.tokens;
    expect(continued).toEqual(fresh);
  });
});

describeOnEachBackend('training', () => {
  const config = DecoderConfigSchema.parse({ vocab_size: 16, ...PRESETS.tiny });
  function copyBatch(seed: number): TokenBatch {
    let s = seed;
    const rnd = () => (s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const ids: number[][] = [];
    const lossMask: number[][] = [];
    for (let b = 0; b < 8; b++) {
      const x = Array.from({ length: 6 }, () => 2 + Math.floor(rnd() * 14));
      ids.push([...x, 1, ...x]);
      lossMask.push([...Array(7).fill(0), ...Array(6).fill(1)]);
    }
    return { ids, lossMask };
  }
  const optimizerConfig = OptimizerConfigSchema.parse({ lr: 3e-3, warmupSteps: 10, totalSteps: 150 });

  it('learns a copy task, with tf.memory() flat across steps', () => {
    const model = DecoderModel.init(config, 1);
    const opt = new AdamW(model.params, optimizerConfig);
    const losses: number[] = [];
    let tensorsAfterFirst = 0;
    for (let i = 0; i < 150; i++) {
      losses.push(trainStep(model, opt, copyBatch(i)).loss);
      if (i === 0) tensorsAfterFirst = tf.memory().numTensors;
      else expect(tf.memory().numTensors).toBe(tensorsAfterFirst);
    }
    const last = losses.slice(-10).reduce((a, b) => a + b, 0) / 10;
    expect(losses[0]!).toBeGreaterThan(2);
    expect(last).toBeLessThan(0.5);
    opt.dispose();
    model.dispose();
  });

  it('accumulates micro-batches into the step of the whole batch', () => {
    const whole = copyBatch(7);
    const halves: TokenBatch[] = [0, 4].map((at) => ({ ids: whole.ids.slice(at, at + 4), lossMask: whole.lossMask.slice(at, at + 4) }));
    // Unequal loss-token counts, so that a plain mean of the two losses would be wrong.
    halves[1]!.lossMask = halves[1]!.lossMask.map((r) => [...r.slice(0, -2), 0, 0]);
    const merged: TokenBatch = { ids: whole.ids, lossMask: [...halves[0]!.lossMask, ...halves[1]!.lossMask] };
    const a = DecoderModel.init(config, 4);
    const b = DecoderModel.init(config, 4);
    const optA = new AdamW(a.params, optimizerConfig);
    const optB = new AdamW(b.params, optimizerConfig);
    const one = trainStep(a, optA, merged);
    const two = accumulatedTrainStep(b, optB, halves);
    expect(two.tokens).toBe(one.tokens);
    expect(Math.abs(two.loss - one.loss)).toBeLessThan(1e-5);
    expect(Math.abs(two.gradNorm - one.gradNorm)).toBeLessThan(1e-5);
    // Adam's first step moves a weight by about lr·g/(|g|+eps): for a gradient near eps, float
    // noise from summing the micro-batches in another order (which differs between CPUs) shows
    // as a small fraction of one step, so the bound is 2% of the first step's size.
    const firstStep = optimizerConfig.lr / optimizerConfig.warmupSteps;
    for (const [name, p] of a.params) expect(maxAbsDiff(p.dataSync(), b.params.get(name)!.dataSync()), name).toBeLessThan(0.02 * firstStep);
    for (const o of [optA, optB]) o.dispose();
    for (const m of [a, b]) m.dispose();
  });

  it('gives masked tokens exactly zero gradient', () => {
    const model = DecoderModel.init(config, 2);
    const batch = copyBatch(99);
    // The last token of each row is only ever a target. With its loss mask at 0, changing it
    // must not move the loss or any gradient by a single bit.
    const masked: TokenBatch = { ids: batch.ids, lossMask: batch.lossMask.map((r) => [...r.slice(0, -1), 0]) };
    const changed: TokenBatch = { ids: batch.ids.map((r) => [...r.slice(0, -1), (r[r.length - 1]! + 3) % 16]), lossMask: masked.lossMask };
    const counted: TokenBatch = { ids: changed.ids, lossMask: batch.lossMask };
    const a = lossAndGrads(model, masked);
    const b = lossAndGrads(model, changed);
    const c = lossAndGrads(model, counted);
    expect(b.loss).toBe(a.loss);
    for (const [name, g] of a.grads) expect(maxAbsDiff(g.dataSync(), b.grads.get(name)!.dataSync())).toBe(0);
    // The same change where the mask counts it does move the loss: the check above can fail.
    expect(c.loss).not.toBe(a.loss);
    tf.dispose([...a.grads.values(), ...b.grads.values(), ...c.grads.values()]);
    model.dispose();
  });

  it('resumes from a saved checkpoint to the same losses as an uninterrupted run', async () => {
    const home = tempHome('retool-resume-');
    try {
      const straight = DecoderModel.init(config, 3);
      const straightOpt = new AdamW(straight.params, optimizerConfig);
      const expected = Array.from({ length: 12 }, (_, i) => trainStep(straight, straightOpt, copyBatch(1000 + i)).loss);

      const first = DecoderModel.init(config, 3);
      const firstOpt = new AdamW(first.params, optimizerConfig);
      const got = Array.from({ length: 6 }, (_, i) => trainStep(first, firstOpt, copyBatch(1000 + i)).loss);
      await saveModel(home.dir, first, { optimizer: firstOpt });
      const loaded = loadModel(home.dir);
      const resumedOpt = new AdamW(loaded.model.params, optimizerConfig);
      resumedOpt.loadState(loaded.trainerState!.step, loaded.optimizerState!);
      for (let i = 6; i < 12; i++) got.push(trainStep(loaded.model, resumedOpt, copyBatch(1000 + i)).loss);
      expect(got).toEqual(expected);
      for (const m of [straight, first, loaded.model]) m.dispose();
      for (const o of [straightOpt, firstOpt, resumedOpt]) o.dispose();
    } finally {
      home.cleanup();
    }
  });
});

describe('retool model (CLI)', () => {
  const home = tempHome('retool-model-cli-');
  afterAll(() => home.cleanup());

  it('initialises the tiny preset, prints logits and generates', async () => {
    const out = join(home.dir, 'tiny');
    const init = json(await retool(['model', 'init', '--preset', 'tiny', '--out', out, '--json'], { home: home.dir }));
    expect(init.config.vocab_size).toBe(105);
    const logits = json(await retool(['model', 'logits', '--model', out, '--ids', '1,2,3', '--json'], { home: home.dir }));
    expect(logits.logits).toHaveLength(3);
    expect(logits.logits[0]).toHaveLength(init.config.vocab_size);
    const gen = json(
      await retool(['model', 'generate', '--model', out, '--prompt', 'Compute 2+3.', '--max-tokens', '5', '--json'], { home: home.dir }),
    );
    expect(gen.tokens).toHaveLength(5);
    const bad = await retool(['model', 'logits', '--model', out, '--ids', '1,999'], { home: home.dir });
    expect(bad.exitCode).toBe(2);
    expect(String(bad.stderr)).toContain('999 is not a token id');
  });

  it('--positions gives a preset a longer context with the same weights', async () => {
    const out = join(home.dir, 'tiny-384');
    const init = json(await retool(['model', 'init', '--positions', '384', '--out', out, '--json'], { home: home.dir }));
    expect(init.config.max_position_embeddings).toBe(384);
    const plain = json(await retool(['model', 'init', '--out', join(home.dir, 'tiny-256'), '--json'], { home: home.dir }));
    expect(plain.config.max_position_embeddings).toBe(256);
    expect(init.parameters).toBe(plain.parameters);
    const ids = Array.from({ length: 300 }, (_, i) => String(1 + (i % 90))).join(',');
    const logits = json(await retool(['model', 'logits', '--model', out, '--ids', ids, '--json'], { home: home.dir }));
    expect(logits.logits).toHaveLength(300);
    const bad = await retool(['model', 'init', '--positions', '8', '--out', join(home.dir, 'bad')], { home: home.dir });
    expect(bad.exitCode).toBe(2);
    expect(String(bad.stderr)).toContain('positions');
  });
});
