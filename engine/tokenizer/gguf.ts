// A Hugging Face tokenizer rebuilt from a GGUF file's metadata. A GGUF carries no tokenizer.json:
// llama.cpp stores the vocabulary, merges, token kinds and special ids as `tokenizer.ggml.*`
// keys, and names the pre-tokenizer the merges were learned with (`tokenizer.ggml.pre`). This
// writes them back in the standard `tokenizer.json` layout, with the pre-tokenizer of the model's
// original tokenizer, so tokenizers.js (and transformers) encode exactly as the original did.
import { BadInputError } from '../../domain/errors.js';
import type { GgufValue } from '../model/gguf.js';

type Json = Record<string, unknown>;

/** llama.cpp's token kinds (`tokenizer.ggml.token_type`). */
const TOKEN_KIND = { normal: 1, unknown: 2, control: 3, userDefined: 4, unused: 5, byte: 6 } as const;

const BYTE_LEVEL = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false };

/** A split on the pattern the merges were learned with, then the byte-level alphabet. */
function regexThenBytes(pattern: string): Json {
  return {
    type: 'Sequence',
    pretokenizers: [{ type: 'Split', pattern: { Regex: pattern }, behavior: 'Isolated', invert: false }, BYTE_LEVEL],
  };
}

const LLAMA3_SPLIT =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const QWEN2_SPLIT =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/**
 * The normalizer, pre-tokenizer and BPE options of each `tokenizer.ggml.pre` llama.cpp writes for
 * the families this project runs, as the models' own tokenizer.json files have them. A kind not
 * listed is refused: a wrong pre-tokenizer would encode text into ids the model never saw.
 */
const PRE_TOKENIZERS: Record<string, { normalizer: Json | null; preTokenizer: Json; ignoreMerges: boolean }> = {
  // SmolLM / SmolLM2: every digit alone, then GPT-2's byte-level split.
  smollm: {
    normalizer: null,
    preTokenizer: {
      type: 'Sequence',
      pretokenizers: [
        { type: 'Digits', individual_digits: true },
        { ...BYTE_LEVEL, use_regex: true },
      ],
    },
    ignoreMerges: false,
  },
  gpt2: { normalizer: null, preTokenizer: { ...BYTE_LEVEL, use_regex: true }, ignoreMerges: false },
  default: { normalizer: null, preTokenizer: { ...BYTE_LEVEL, use_regex: true }, ignoreMerges: false },
  'llama-bpe': { normalizer: null, preTokenizer: regexThenBytes(LLAMA3_SPLIT), ignoreMerges: true },
  llama3: { normalizer: null, preTokenizer: regexThenBytes(LLAMA3_SPLIT), ignoreMerges: true },
  'llama-v3': { normalizer: null, preTokenizer: regexThenBytes(LLAMA3_SPLIT), ignoreMerges: true },
  qwen2: { normalizer: { type: 'NFC' }, preTokenizer: regexThenBytes(QWEN2_SPLIT), ignoreMerges: false },
  'deepseek-r1-qwen': { normalizer: { type: 'NFC' }, preTokenizer: regexThenBytes(QWEN2_SPLIT), ignoreMerges: false },
};

export interface GgufTokenizerFiles {
  /** tokenizer.json */
  tokenizer: Json;
  /** tokenizer_config.json */
  config: Json;
  chatTemplate: string | undefined;
}

function stringList(meta: Map<string, GgufValue>, key: string, where: string): string[] {
  const v = meta.get(key);
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string'))
    throw new BadInputError(`${where}: ${key} is missing or not a list of strings`);
  return v as string[];
}

function optionalId(meta: Map<string, GgufValue>, key: string): number | undefined {
  const v = meta.get(key);
  return typeof v === 'number' ? v : typeof v === 'bigint' ? Number(v) : undefined;
}

/** The tokenizer files of a byte-level BPE (`tokenizer.ggml.model` "gpt2") GGUF; `where` names the file in errors. */
export function tokenizerFromGguf(meta: Map<string, GgufValue>, where: string): GgufTokenizerFiles {
  const kind = meta.get('tokenizer.ggml.model');
  if (kind !== 'gpt2')
    throw new BadInputError(
      `${where}: tokenizer.ggml.model is ${JSON.stringify(kind)}; only byte-level BPE ("gpt2": SmolLM2, Llama 3, Qwen2/2.5/3) can be rebuilt`,
    );
  const preName = String(meta.get('tokenizer.ggml.pre') ?? 'default');
  const pre = PRE_TOKENIZERS[preName];
  if (!pre)
    throw new BadInputError(`${where}: tokenizer.ggml.pre "${preName}" is not known; known: ${Object.keys(PRE_TOKENIZERS).join(', ')}`);
  const tokens = stringList(meta, 'tokenizer.ggml.tokens', where);
  const merges = stringList(meta, 'tokenizer.ggml.merges', where);
  const kinds = (meta.get('tokenizer.ggml.token_type') as number[] | undefined) ?? [];

  const vocab: Record<string, number> = {};
  tokens.forEach((t, id) => {
    // A later duplicate must not take an earlier token's place (llama.cpp pads some vocabularies).
    if (!(t in vocab)) vocab[t] = id;
  });
  const addedTokens = tokens.flatMap((content, id) => {
    const k = kinds[id];
    if (k !== TOKEN_KIND.control && k !== TOKEN_KIND.userDefined) return [];
    const special = k === TOKEN_KIND.control;
    return [{ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special }];
  });

  const tokenizer: Json = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: addedTokens,
    normalizer: pre.normalizer,
    pre_tokenizer: pre.preTokenizer,
    post_processor: { ...BYTE_LEVEL, trim_offsets: false },
    decoder: { ...BYTE_LEVEL, add_prefix_space: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: pre.ignoreMerges,
      vocab,
      merges,
    },
  };

  const tokenOf = (key: string) => {
    const id = optionalId(meta, `tokenizer.ggml.${key}`);
    return id !== undefined && id < tokens.length ? tokens[id] : undefined;
  };
  const chatTemplate =
    typeof meta.get('tokenizer.chat_template') === 'string' ? (meta.get('tokenizer.chat_template') as string) : undefined;
  const config: Json = {
    tokenizer_class: 'PreTrainedTokenizerFast',
    clean_up_tokenization_spaces: false,
    add_bos_token: meta.get('tokenizer.ggml.add_bos_token') === true,
    add_eos_token: meta.get('tokenizer.ggml.add_eos_token') === true,
    model_max_length: optionalId(meta, `${String(meta.get('general.architecture'))}.context_length`) ?? 2048,
  };
  for (const [name, key] of [
    ['bos_token', 'bos_token_id'],
    ['eos_token', 'eos_token_id'],
    ['unk_token', 'unknown_token_id'],
    ['pad_token', 'padding_token_id'],
  ] as const) {
    const t = tokenOf(key);
    if (t !== undefined) config[name] = t;
  }
  return { tokenizer, config, chatTemplate };
}
