// A GGUF file (llama.cpp's format) turned into a Hugging Face model directory: config.json from
// the `<arch>.*` metadata, the tensors dequantized to float32 under transformers' names (with the
// row order of Llama's q/k projections restored), and the tokenizer rebuilt from the
// `tokenizer.ggml.*` metadata, chat template included. The result loads here and in transformers.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BadInputError } from '../../domain/errors.js';
import { tokenizerFromGguf } from '../tokenizer/gguf.js';
import { writeDirAtomically, writeModelTensors } from './checkpoint-files.js';
import { architectureOf, DecoderConfigSchema, MODEL_TYPES, ropeInverseFrequencies, type DecoderConfig, type ModelType } from './config.js';
import { parameterShapes } from './decoder.js';
import { readGguf, readGgufTensor, type GgufFile, type GgufValue } from './gguf.js';
import type { DType, NamedTensor } from './safetensors.js';

/** llama.cpp's per-layer tensor names and transformers' (after `model.layers.N.`). */
const LAYER_TENSORS: Record<string, string> = {
  attn_norm: 'input_layernorm',
  attn_q: 'self_attn.q_proj',
  attn_k: 'self_attn.k_proj',
  attn_v: 'self_attn.v_proj',
  attn_output: 'self_attn.o_proj',
  attn_q_norm: 'self_attn.q_norm',
  attn_k_norm: 'self_attn.k_norm',
  ffn_norm: 'post_attention_layernorm',
  ffn_gate: 'mlp.gate_proj',
  ffn_up: 'mlp.up_proj',
  ffn_down: 'mlp.down_proj',
};
const GLOBAL_TENSORS: Record<string, string> = {
  token_embd: 'model.embed_tokens',
  output_norm: 'model.norm',
  output: 'lm_head',
};

export function hfTensorName(ggufName: string): string | undefined {
  const layer = /^blk\.(\d+)\.([a-z_]+)\.(weight|bias)$/.exec(ggufName);
  if (layer) {
    const hf = LAYER_TENSORS[layer[2]!];
    return hf ? `model.layers.${layer[1]}.${hf}.${layer[3]}` : undefined;
  }
  const global = /^([a-z_]+)\.(weight|bias)$/.exec(ggufName);
  const hf = global ? GLOBAL_TENSORS[global[1]!] : undefined;
  return hf ? `${hf}.${global![2]}` : undefined;
}

/**
 * llama.cpp stores Llama's q and k rows per head as interleaved pairs (its rotary embedding
 * rotates adjacent dimensions); transformers rotates halves. Row (h, i, j) of the file, i < hd/2,
 * j < 2, is row (h, j, i) of the Hugging Face weight. Works on weights [rows, cols] and biases [rows].
 */
export function unpermuteRotaryRows(values: Float32Array, rows: number, heads: number): Float32Array {
  const cols = values.length / rows;
  const half = rows / heads / 2;
  const out = new Float32Array(values.length);
  for (let h = 0; h < heads; h++)
    for (let i = 0; i < half; i++)
      for (let j = 0; j < 2; j++) {
        const from = (h * 2 * half + i * 2 + j) * cols;
        const to = (h * 2 * half + j * half + i) * cols;
        out.set(values.subarray(from, from + cols), to);
      }
  return out;
}

function number(meta: Map<string, GgufValue>, key: string, where: string, required = true): number | undefined {
  const v = meta.get(key);
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint') return Number(v);
  if (required) throw new BadInputError(`${where}: metadata ${key} is missing or not a number`);
  return undefined;
}

/** config.json of the model a GGUF describes. */
export function configFromGguf(file: GgufFile): DecoderConfig {
  const meta = file.metadata;
  const where = file.path;
  const arch = String(meta.get('general.architecture'));
  if (!(MODEL_TYPES as readonly string[]).includes(arch))
    throw new BadInputError(`${where}: architecture "${arch}" is not one this engine runs (${MODEL_TYPES.join(', ')})`);
  const type = arch as ModelType;
  const has = (name: string) => file.tensors.some((t) => t.name === name);
  const n = (key: string, required = true) => number(meta, `${arch}.${key}`, where, required);
  const heads = n('attention.head_count')!;
  const tokens = meta.get('tokenizer.ggml.tokens');
  const raw = {
    model_type: type,
    vocab_size: n('vocab_size', false) ?? (Array.isArray(tokens) ? tokens.length : undefined),
    hidden_size: n('embedding_length'),
    intermediate_size: n('feed_forward_length'),
    num_hidden_layers: n('block_count'),
    num_attention_heads: heads,
    num_key_value_heads: n('attention.head_count_kv', false) ?? heads,
    head_dim: n('attention.key_length', false) ?? (type === 'qwen3' ? undefined : n('rope.dimension_count', false)),
    rms_norm_eps: n('attention.layer_norm_rms_epsilon'),
    rope_theta: n('rope.freq_base', false) ?? 10_000,
    max_position_embeddings: n('context_length', false),
    tie_word_embeddings: !has('output.weight'),
    ...(type === 'qwen2' ? {} : { attention_bias: has('blk.0.attn_q.bias') }),
    bos_token_id: number(meta, 'tokenizer.ggml.bos_token_id', where, false),
    eos_token_id: number(meta, 'tokenizer.ggml.eos_token_id', where, false),
    torch_dtype: 'float32',
  };
  const parsed = DecoderConfigSchema.safeParse(raw);
  if (!parsed.success)
    throw new BadInputError(
      `${where}: the metadata gives no valid model config (${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')})`,
    );
  const config = { ...parsed.data, architectures: [architectureOf(parsed.data)] };
  if (!has(ROPE_FREQS)) return config;
  const scaling = llama3RopeScaling(readGgufTensor(file, ROPE_FREQS).values, config, where);
  return scaling ? { ...config, rope_scaling: scaling } : config;
}

const ROPE_FREQS = 'rope_freqs.weight';
/** Every Llama 3.x release: only the factor (8 for 3.1, 32 for 3.2) differs. */
const LLAMA3_BANDS = { low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 };

/**
 * Llama 3.1+ GGUFs carry their rotary scaling as one divisor per frequency (rope_freqs.weight, which
 * llama.cpp's converter computes from `rope_scaling`), not as metadata. The scaling factor is the
 * largest divisor; the bands are Llama 3's. The rebuilt `rope_scaling` is kept only if it gives
 * back every divisor, so a file scaled some other way is refused rather than imported wrong.
 */
function llama3RopeScaling(divisors: Float32Array, config: DecoderConfig, where: string) {
  const plain = ropeInverseFrequencies(config);
  if (divisors.length !== plain.length)
    throw new BadInputError(`${where}: ${ROPE_FREQS} has ${divisors.length} values, the heads have ${plain.length} rotary frequencies`);
  if (divisors.every((d) => d === 1)) return null;
  const scaling = { rope_type: 'llama3' as const, factor: Math.max(...divisors), ...LLAMA3_BANDS };
  const scaled = ropeInverseFrequencies({ ...config, rope_scaling: scaling });
  const worst = Math.max(...divisors.map((d, i) => Math.abs(plain[i]! / d - scaled[i]!) / scaled[i]!));
  if (worst > 1e-5)
    throw new BadInputError(
      `${where}: ${ROPE_FREQS} is not Llama 3's rotary scaling (factor ${scaling.factor}, bands 1/4 over 8192: relative error ${worst.toExponential(2)}); import the Hugging Face checkpoint instead`,
    );
  return scaling;
}

/** Every tensor of the file under its transformers name, dequantized to float32. */
export function tensorsFromGguf(file: GgufFile, config: DecoderConfig): Map<string, NamedTensor> {
  const expected = parameterShapes(config);
  const out = new Map<string, NamedTensor>();
  for (const info of file.tensors) {
    if (info.name === ROPE_FREQS) continue; // read into the config's rope_scaling
    const name = hfTensorName(info.name);
    if (!name || !expected.has(name))
      throw new BadInputError(`${file.path}: tensor ${info.name} has no place in a ${config.model_type} model`);
    const shape = expected.get(name)!;
    if (info.shape.join(',') !== shape.join(','))
      throw new BadInputError(`${file.path}: tensor ${info.name} has shape [${info.shape}], the config implies [${shape}]`);
    let { values } = readGgufTensor(file, info.name);
    if (config.model_type === 'llama') {
      if (/self_attn\.q_proj\./.test(name)) values = unpermuteRotaryRows(values, shape[0]!, config.num_attention_heads);
      if (/self_attn\.k_proj\./.test(name)) values = unpermuteRotaryRows(values, shape[0]!, config.num_key_value_heads);
    }
    out.set(name, { shape, data: values });
  }
  for (const name of expected.keys()) if (!out.has(name)) throw new BadInputError(`${file.path}: no tensor for ${name}`);
  return out;
}

export interface ImportOptions {
  /** On-disk dtype of the weights (F32 keeps the dequantized values exactly). */
  dtype?: DType;
}

/** Writes `outDir` (atomically) as a Hugging Face model directory made from the GGUF at `path`. */
export async function importGguf(path: string, outDir: string, opts: ImportOptions = {}) {
  const file = readGguf(path);
  const config = configFromGguf(file);
  const tokenizer = tokenizerFromGguf(file.metadata, path);
  const tensors = tensorsFromGguf(file, config);
  const dtype = opts.dtype ?? 'F32';
  await writeDirAtomically(outDir, (tmp) => {
    const torchDtype = dtype === 'BF16' ? 'bfloat16' : dtype === 'F16' ? 'float16' : 'float32';
    const json = (name: string, value: unknown) => writeFileSync(join(tmp, name), `${JSON.stringify(value, null, 2)}\n`);
    json('config.json', { ...config, torch_dtype: torchDtype });
    json('tokenizer.json', tokenizer.tokenizer);
    json('tokenizer_config.json', tokenizer.config);
    json('generation_config.json', { bos_token_id: config.bos_token_id, eos_token_id: config.eos_token_id });
    if (tokenizer.chatTemplate !== undefined) writeFileSync(join(tmp, 'chat_template.jinja'), tokenizer.chatTemplate);
    writeModelTensors(tmp, tensors, { dtype });
  });
  const parameters = [...tensors.values()].reduce((a, t) => a + t.data.length, 0);
  const quantization = [...new Set(file.tensors.map((t) => t.typeName))].sort();
  return { dir: outDir, modelType: config.model_type, parameters, tensors: tensors.size, quantization, config };
}
