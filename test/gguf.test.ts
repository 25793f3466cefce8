// The GGUF reader against llama.cpp's own Python package: a file written and quantized by `gguf`,
// read here, must give gguf's metadata and gguf's own dequantized values.
import { readFileSync, truncateSync, writeFileSync, copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { halfToFloat, readGguf, readGgufTensor } from '../engine/model/gguf.js';
import { ROOT, tempHome } from './helpers/cli.js';
import { maxAbsDiff } from './helpers/reference.js';

const PYTHON = process.env.RETOOL_TEST_PYTHON ?? join(ROOT, '.venv', 'bin', 'python');

describe('GGUF reader against the gguf package', () => {
  const home = tempHome('retool-gguf-');
  const file = join(home.dir, 'test.gguf');
  let expected: Record<string, { shape: number[]; type: string; values: number[] }>;

  beforeAll(async () => {
    const { stdout } = await execa(PYTHON, [join(ROOT, 'test', 'reference', 'gguf_reference.py'), file], { timeout: 120_000 });
    expected = JSON.parse(stdout) as typeof expected;
  }, 120_000);
  afterAll(() => home.cleanup());

  it('reads the metadata of every value kind', () => {
    const gguf = readGguf(file);
    expect(gguf.version).toBe(3);
    expect(gguf.metadata.get('general.architecture')).toBe('llama');
    expect(gguf.metadata.get('general.name')).toBe('gguf reader test');
    expect(gguf.metadata.get('llama.block_count')).toBe(30);
    expect(gguf.metadata.get('llama.rope.freq_base')).toBe(100000);
    expect(gguf.metadata.get('tokenizer.ggml.add_bos_token')).toBe(false);
    expect(gguf.metadata.get('test.negative')).toBe(-5);
    expect(gguf.metadata.get('test.big')).toBe(2n ** 40n + 3n);
    expect(gguf.metadata.get('test.double')).toBe(0.1);
    expect(gguf.metadata.get('tokenizer.ggml.tokens')).toEqual(['<|im_start|>', 'a', 'Ġb']);
    expect(gguf.metadata.get('tokenizer.ggml.token_type')).toEqual([3, 1, 1]);
  });

  it('dequantizes F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q4_K, Q5_K and Q6_K to what gguf gives back', () => {
    const gguf = readGguf(file);
    expect(gguf.tensors.map((t) => t.name).sort()).toEqual(Object.keys(expected).sort());
    for (const [name, want] of Object.entries(expected)) {
      const got = readGgufTensor(gguf, name);
      expect(got.shape, name).toEqual(want.shape);
      expect(gguf.tensors.find((t) => t.name === name)!.typeName, name).toBe(want.type);
      // Both sides compute in float32 from the same bits, in the same order: equal to the bit.
      expect(maxAbsDiff(got.values, want.values), name).toBe(0);
    }
  });

  it('converts halves exactly, subnormals and infinities included', () => {
    expect(halfToFloat(0x3c00)).toBe(1);
    expect(halfToFloat(0xc000)).toBe(-2);
    expect(halfToFloat(0x0001)).toBe(2 ** -24);
    expect(halfToFloat(0x7bff)).toBe(65504);
    expect(halfToFloat(0x7c00)).toBe(Infinity);
    expect(halfToFloat(0x7e00)).toBeNaN();
  });

  it('refuses a file that is not GGUF, and one cut short, naming the file', () => {
    const notGguf = join(home.dir, 'model.safetensors');
    writeFileSync(notGguf, Buffer.from('{"__metadata__":{}}'));
    expect(() => readGguf(notGguf)).toThrow(/model\.safetensors: not a GGUF file/);
    const cut = join(home.dir, 'cut.gguf');
    copyFileSync(file, cut);
    truncateSync(cut, Math.floor(readFileSync(file).length / 2));
    expect(() => readGguf(cut)).toThrow(/cut\.gguf: tensor .* runs past the end of the file/);
    truncateSync(cut, 40);
    expect(() => readGguf(cut)).toThrow(/cut\.gguf: not a GGUF file, or cut short/);
  });
});
