import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { BadInputError } from '../domain/errors.js';
import { loadModel, saveModel } from '../engine/model/checkpoint.js';
import { DecoderConfigSchema } from '../engine/model/config.js';
import { DecoderModel } from '../engine/model/decoder.js';
import { buildExamples, lossMask, padBatch } from '../engine/sft/data.js';
import { ShuffledStream } from '../engine/train/stream.js';
import { SftConfigSchema } from '../engine/sft/config.js';
import { LengthBucketedBatches } from '../engine/sft/batches.js';
import { trainSft } from '../engine/sft/trainer.js';
import { initBackend, tf } from '../engine/tensor/backend.js';
import { builtinTokenizer, saveTokenizer } from '../engine/tokenizer/builtin.js';
import { maskedCrossEntropy, nextTokenTensors } from '../engine/train/step.js';
import { describeOnEachBackend } from './helpers/backends.js';
import { tempHome } from './helpers/cli.js';
import { maxAbsDiff } from './helpers/reference.js';

const tokenizer = builtinTokenizer();
const RESPONSE =
  'Compute it.\n<code>\n```python\nprint(12*3+4)\n```\n</code>\n<interpreter>\n40\n</interpreter>\n<answer>\\boxed{40}</answer>';
// What the model itself wrote: the response without the interpreter's span (tags included).
const MODEL_TEXT = 'Compute it.\n<code>\n```python\nprint(12*3+4)\n```\n</code>\n\n<answer>\\boxed{40}</answer><|endoftext|>';
const PROMPT = 'user: Compute 12*3+4.\nassistant: ';

beforeAll(async () => {
  await initBackend();
});

describe('SFT examples and masks', () => {
  it('the loss mask covers exactly the model tokens: prompt and interpreter are out', () => {
    const { examples, tooLong } = buildExamples(tokenizer, [{ problem: 'Compute 12*3+4.', response: RESPONSE }], 256);
    expect(tooLong).toBe(0);
    const [e] = examples;
    const mask = lossMask(e!.roles);
    expect(tokenizer.decode(e!.ids.filter((_, i) => mask[i] === 1))).toBe(MODEL_TEXT);
    expect(tokenizer.decode(e!.ids.filter((_, i) => mask[i] === 0))).toBe(`${PROMPT}<interpreter>\n40\n</interpreter>`);
  });

  it('traces longer than the context are dropped and counted, never cut', () => {
    const long = { problem: 'Compute 1+1.', response: `${'a'.repeat(300)}<answer>\\boxed{2}</answer>` };
    const { examples, tooLong } = buildExamples(tokenizer, [long, { problem: 'Compute 12*3+4.', response: RESPONSE }], 256);
    expect(tooLong).toBe(1);
    expect(examples).toHaveLength(1);
  });

  it('the shuffled stream is a permutation per epoch and continues identically from a cursor', () => {
    const a = new ShuffledStream(10, 3);
    const first = a.next(10);
    expect([...first].sort((x, y) => x - y)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    const rest = a.next(13);
    const b = new ShuffledStream(10, 3);
    b.next(7);
    const resumed = new ShuffledStream(10, 3, b.cursor);
    expect(resumed.next(16)).toEqual([...first.slice(7), ...rest]);
    expect(new ShuffledStream(10, 4).next(10)).not.toEqual(first);
  });
});

describe('length-bucketed SFT batches', () => {
  // Lengths as varied as real traces: 20 to 400 tokens.
  const lengths = Array.from({ length: 96 }, (_, i) => 20 + ((i * 7919) % 381));
  const padding = (steps: number[][][]) =>
    steps
      .flat()
      .reduce((n, batch) => n + Math.max(...batch.map((i) => lengths[i]!)) * batch.length - batch.reduce((a, i) => a + lengths[i]!, 0), 0);
  const take = (b: LengthBucketedBatches, n: number) => Array.from({ length: n }, () => b.next());
  const opts = { seed: 5, batchSize: 4, gradAccum: 2 };

  it('one step per window: the step holds the examples the stream drew, its micro-batches grouped by length', () => {
    const drawn = new ShuffledStream(lengths.length, 5);
    for (const step of take(new LengthBucketedBatches(lengths, { ...opts, windowSteps: 1 }), 20)) {
      const expected = drawn.next(8);
      expect(step.flat().sort((a, b) => a - b)).toEqual([...expected].sort((a, b) => a - b));
      expect(Math.min(...step[0]!.map((i) => lengths[i]!))).toBeGreaterThanOrEqual(Math.max(...step[1]!.map((i) => lengths[i]!)));
    }
  });

  it('wider windows pad far less and still take every example once per epoch', () => {
    const plain = take(new LengthBucketedBatches(lengths, { ...opts, windowSteps: 1 }), 12);
    const bucketed = take(new LengthBucketedBatches(lengths, { ...opts, windowSteps: 12 }), 12);
    expect(bucketed.flat(2).sort((a, b) => a - b)).toEqual(lengths.map((_, i) => i));
    expect(padding(bucketed)).toBeLessThan(padding(plain) / 4);
    // The steps of a window come in shuffled order, not longest first.
    const longest = bucketed.map((s) => Math.max(...s.flat().map((i) => lengths[i]!)));
    expect(longest).not.toEqual([...longest].sort((a, b) => b - a));
  });

  it('continues identically from a cursor taken inside a window', () => {
    const whole = take(new LengthBucketedBatches(lengths, { ...opts, windowSteps: 5 }), 17);
    const first = new LengthBucketedBatches(lengths, { ...opts, windowSteps: 5 });
    take(first, 7);
    expect(first.cursor.windowStep).toBe(2);
    const resumed = new LengthBucketedBatches(lengths, { ...opts, windowSteps: 5 }, first.cursor);
    expect(take(resumed, 10)).toEqual(whole.slice(7));
  });
});

describeOnEachBackend('SFT loss mask', () => {
  it('masked positions get exactly zero gradient; model positions do not', () => {
    const { examples } = buildExamples(tokenizer, [{ problem: 'Compute 12*3+4.', response: RESPONSE }], 256);
    const batch = padBatch([examples[0]!, { ids: examples[0]!.ids.slice(0, 30), roles: examples[0]!.roles.slice(0, 30) }], tokenizer.padId);
    const t = nextTokenTensors(batch);
    const T = t.ids.shape[1]!;
    const logits = tf.randomNormal([2, T, tokenizer.vocabSize], 0, 1, 'float32', 1) as tf.Tensor3D;
    const grad = tf.grad((l: tf.Tensor) => maskedCrossEntropy(l as tf.Tensor3D, t.targets as tf.Tensor2D, t.mask as tf.Tensor2D))(logits);
    const perPosition = tf.sum(tf.abs(grad), -1).arraySync() as number[][];
    batch.lossMask.forEach((row, b) => {
      for (let i = 0; i < T; i++) {
        // Position i predicts token i+1: it counts iff that token is the model's.
        if (row[i + 1] === 1) expect(perPosition[b]![i]).toBeGreaterThan(0);
        else expect(perPosition[b]![i]).toBe(0);
      }
    });
    // The short row's padding is neither valid nor in the loss.
    expect(batch.valid![1]!.slice(30).every((v) => v === 0)).toBe(true);
    expect(batch.lossMask[1]!.slice(30).every((v) => v === 0)).toBe(true);
    tf.dispose([logits, grad, ...Object.values(t)]);
  });
});

describeOnEachBackend('SFT resume', () => {
  const home = tempHome('retool-sft-');
  afterAll(() => home.cleanup());
  const config = DecoderConfigSchema.parse({
    vocab_size: tokenizer.vocabSize,
    hidden_size: 32,
    intermediate_size: 64,
    num_hidden_layers: 1,
    num_attention_heads: 2,
    num_key_value_heads: 1,
    max_position_embeddings: 128,
    tie_word_embeddings: true,
    rope_theta: 10_000,
  });
  const traces = Array.from({ length: 12 }, (_, i) => ({
    problem: `Compute ${i}*7+3.`,
    response: `<code>\n\`\`\`python\nprint(${i}*7+3)\n\`\`\`\n</code>\n<interpreter>\n${i * 7 + 3}\n</interpreter>\n<answer>\\boxed{${i * 7 + 3}}</answer>`,
  }));
  const { examples } = buildExamples(tokenizer, traces, 128);
  // Windows of 4 steps: the stop at step 3 falls inside one, which the resumed run must finish.
  const sftConfig = SftConfigSchema.parse({ steps: 6, batchSize: 4, checkpointEvery: 3, warmupSteps: 2, lr: 1e-2, lengthBucketSteps: 4 });

  it('stopping at a checkpoint and resuming gives the same losses and weights as an uninterrupted run', async () => {
    await saveTokenizer(home.dir);
    const run = (name: string, model: DecoderModel, extra: Partial<Parameters<typeof trainSft>[0]> = {}) =>
      trainSft({
        model,
        tokenizerDir: home.dir,
        baseModel: join(home.dir, 'base'),
        examples,
        padId: tokenizer.padId,
        config: sftConfig,
        checkpointDir: (s) => join(home.dir, name, `step-${s}`),
        ...extra,
      });

    const whole = await run('whole', DecoderModel.init(config, 1));
    expect(whole.losses).toHaveLength(6);
    expect(whole.losses[5]!).toBeLessThan(whole.losses[0]!);

    const stop = new AbortController();
    const first = await run('parts', DecoderModel.init(config, 1), { signal: stop.signal, onStep: (m) => m.step === 3 && stop.abort() });
    expect(first).toMatchObject({ step: 3, stopped: true });
    expect(first.losses).toEqual(whole.losses.slice(0, 3));

    const saved = loadModel(join(home.dir, 'parts', 'step-3'));
    expect(saved.trainerState?.step).toBe(3);
    expect(saved.optimizerState?.size).toBeGreaterThan(0);
    const second = await run('parts', saved.model, { resume: saved });
    expect(second.step).toBe(6);
    expect(second.losses).toEqual(whole.losses.slice(3));

    const a = loadModel(join(home.dir, 'whole', 'step-6')).model;
    const b = loadModel(join(home.dir, 'parts', 'step-6')).model;
    for (const [name, p] of a.params) expect(Array.from(b.params.get(name)!.dataSync())).toEqual(Array.from(p.dataSync()));
  });

  it('a LoRA run resumes from its adapter checkpoint to the same losses, and never touches the base weights', async () => {
    const base = DecoderModel.init(config, 2);
    await saveModel(join(home.dir, 'base'), base, { tokenizerFrom: home.dir });
    base.dispose();
    const lora = SftConfigSchema.parse({ steps: 6, batchSize: 4, checkpointEvery: 3, warmupSteps: 2, lr: 2e-2, loraRank: 4 });
    const run = (name: string, loaded: ReturnType<typeof loadModel>, extra: Partial<Parameters<typeof trainSft>[0]> = {}) =>
      trainSft({
        model: loaded.model,
        tokenizerDir: home.dir,
        baseModel: join(home.dir, 'base'),
        examples,
        padId: tokenizer.padId,
        config: lora,
        checkpointDir: (s) => join(home.dir, name, `step-${s}`),
        ...extra,
      });
    const whole = await run('lora-whole', loadModel(join(home.dir, 'base')));
    expect(whole.losses[5]!).toBeLessThan(whole.losses[0]!);
    const stop = new AbortController();
    await run('lora-parts', loadModel(join(home.dir, 'base')), { signal: stop.signal, onStep: (m) => m.step === 3 && stop.abort() });
    // The checkpoint is a PEFT adapter directory on the base model, with the optimizer's state.
    const saved = loadModel(join(home.dir, 'lora-parts', 'step-3'));
    expect(saved.baseModel).toBe(join(home.dir, 'base'));
    expect(saved.model.lora?.config.rank).toBe(4);
    const second = await run('lora-parts', saved, { resume: saved });
    expect(second.losses).toEqual(whole.losses.slice(3));
    const a = loadModel(join(home.dir, 'lora-whole', 'step-6')).model;
    const b = loadModel(join(home.dir, 'lora-parts', 'step-6')).model;
    for (const [name, p] of a.lora!.params())
      expect(Array.from(b.lora!.params().get(name)!.dataSync()), name).toEqual(Array.from(p.dataSync()));
    const original = loadModel(join(home.dir, 'base')).model;
    for (const [name, p] of original.params) expect(maxAbsDiff(b.params.get(name)!.dataSync(), p.dataSync()), name).toBe(0);
    for (const m of [a, b, original, saved.model]) m.dispose();
  });

  it('refuses to resume on different data, as bad input (an activity does not retry it)', async () => {
    const saved = loadModel(join(home.dir, 'parts', 'step-3'));
    const attempt = trainSft({
      model: saved.model,
      tokenizerDir: home.dir,
      baseModel: home.dir,
      examples: examples.slice(1),
      padId: 0,
      config: sftConfig,
      checkpointDir: (s) => join(home.dir, 'other', `step-${s}`),
      resume: saved,
    });
    await expect(attempt).rejects.toThrow(/11/);
    await expect(attempt).rejects.toBeInstanceOf(BadInputError);
  });
});
