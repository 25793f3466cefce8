import { mkdirSync, writeFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ChatTemplate } from './chat.js';
import type { ChatMessage, ChatTemplateOptions, TextTokenizer } from './types.js';

/** The specials, in id order (0..7): each is always one token. */
export const BUILTIN_SPECIAL_TOKENS = [
  '<|pad|>',
  '<|endoftext|>',
  '<code>',
  '</code>',
  '<interpreter>',
  '</interpreter>',
  '<answer>',
  '</answer>',
] as const;

export const BUILTIN_PAD_TOKEN = '<|pad|>';
export const BUILTIN_EOS_TOKEN = '<|endoftext|>';
export const BUILTIN_UNK_TOKEN = '<|unk|>';

/**
 * A plain-text chat template for the tiny model (no role tokens of its own: the model learns the
 * `role:` headers as text). Rendered by transformers and by our Jinja runtime identically.
 */
export const BUILTIN_CHAT_TEMPLATE =
  "{% for message in messages %}{{ message['role'] + ': ' + message['content'] + '\\n' }}{% endfor %}" +
  "{% if add_generation_prompt %}{{ 'assistant: ' }}{% endif %}";

/** Anything that can be saved as a Hugging Face tokenizer directory. */
export interface SavableTokenizer {
  toTokenizerJson(): object;
  toTokenizerConfig(): object;
}

/**
 * The tiny model's tokenizer: ids 0..7 are the specials above, 8 is `\n`, 9..103 are the printable
 * ASCII characters 32..126 (one token each), 104 is `<|unk|>` (any other code point, one unk each).
 * Encoding matches specials leftmost-longest first (the same rule as HF's added-token matcher), so the
 * literal text `<code>` is always the single special token; `<|unk|>` is an added special token too.
 */
export class BuiltinTokenizer implements TextTokenizer, SavableTokenizer {
  readonly vocabSize: number;
  readonly eosId: number;
  readonly padId: number;
  readonly unkId: number;
  readonly specialIds: ReadonlySet<number>;
  /** id -> token text, index = id. */
  readonly vocab: readonly string[];
  private readonly ids = new Map<string, number>();
  /** Specials (unk included) sorted longest first for greedy matching; keyed by first char. */
  private readonly specialsByFirst = new Map<string, string[]>();
  private readonly chat = new ChatTemplate(BUILTIN_CHAT_TEMPLATE, {
    eos_token: BUILTIN_EOS_TOKEN,
    pad_token: BUILTIN_PAD_TOKEN,
    unk_token: BUILTIN_UNK_TOKEN,
  });

  constructor() {
    const vocab: string[] = [...BUILTIN_SPECIAL_TOKENS, '\n'];
    for (let c = 32; c <= 126; c++) vocab.push(String.fromCharCode(c));
    vocab.push(BUILTIN_UNK_TOKEN);
    this.vocab = vocab;
    vocab.forEach((t, i) => this.ids.set(t, i));
    this.vocabSize = vocab.length;
    this.padId = this.ids.get(BUILTIN_PAD_TOKEN)!;
    this.eosId = this.ids.get(BUILTIN_EOS_TOKEN)!;
    this.unkId = this.ids.get(BUILTIN_UNK_TOKEN)!;
    const specials = [...BUILTIN_SPECIAL_TOKENS, BUILTIN_UNK_TOKEN];
    this.specialIds = new Set(specials.map((t) => this.ids.get(t)!));
    for (const s of [...specials].sort((a, b) => b.length - a.length)) {
      const first = s[0]!;
      const list = this.specialsByFirst.get(first) ?? [];
      list.push(s);
      this.specialsByFirst.set(first, list);
    }
  }

  encode(text: string): number[] {
    const out: number[] = [];
    let i = 0;
    outer: while (i < text.length) {
      const candidates = this.specialsByFirst.get(text[i]!);
      if (candidates) {
        for (const s of candidates) {
          if (text.startsWith(s, i)) {
            out.push(this.ids.get(s)!);
            i += s.length;
            continue outer;
          }
        }
      }
      const cp = text.codePointAt(i)!;
      const ch = String.fromCodePoint(cp);
      out.push(this.ids.get(ch) ?? this.unkId);
      i += ch.length;
    }
    return out;
  }

  /** Inverse of encode; ids outside the vocabulary are skipped (as HF tokenizers does). */
  decode(ids: number[]): string {
    let s = '';
    for (const id of ids) s += this.vocab[id] ?? '';
    return s;
  }

  tokenToId(token: string): number | undefined {
    return this.ids.get(token);
  }

  applyChatTemplate(messages: ChatMessage[], opts?: ChatTemplateOptions): string {
    return this.chat.render(messages, opts);
  }

  /**
   * A standard `tokenizer.json`: a BPE model with no merges over the one-character vocabulary (so
   * every character is its own token and unknown characters become `<|unk|>`, one per code point),
   * no normalizer / pre-tokenizer / post-processor, the specials as added tokens, and a Fuse decoder
   * that concatenates token texts without inserting spaces.
   */
  toTokenizerJson(): object {
    const vocab: Record<string, number> = {};
    this.vocab.forEach((t, i) => (vocab[t] = i));
    return {
      version: '1.0',
      truncation: null,
      padding: null,
      added_tokens: [...this.specialIds]
        .sort((a, b) => a - b)
        .map((id) => ({
          id,
          content: this.vocab[id]!,
          single_word: false,
          lstrip: false,
          rstrip: false,
          normalized: false,
          special: true,
        })),
      normalizer: null,
      pre_tokenizer: null,
      post_processor: null,
      decoder: { type: 'Fuse' },
      model: {
        type: 'BPE',
        dropout: null,
        unk_token: BUILTIN_UNK_TOKEN,
        continuing_subword_prefix: null,
        end_of_word_suffix: null,
        fuse_unk: false,
        byte_fallback: false,
        ignore_merges: false,
        vocab,
        merges: [],
      },
    };
  }

  /** `tokenizer_config.json` for transformers' AutoTokenizer (PreTrainedTokenizerFast). */
  toTokenizerConfig(): object {
    const added_tokens_decoder: Record<string, object> = {};
    for (const id of [...this.specialIds].sort((a, b) => a - b)) {
      added_tokens_decoder[String(id)] = {
        content: this.vocab[id]!,
        single_word: false,
        lstrip: false,
        rstrip: false,
        normalized: false,
        special: true,
      };
    }
    return {
      tokenizer_class: 'PreTrainedTokenizerFast',
      bos_token: null,
      eos_token: BUILTIN_EOS_TOKEN,
      pad_token: BUILTIN_PAD_TOKEN,
      unk_token: BUILTIN_UNK_TOKEN,
      additional_special_tokens: BUILTIN_SPECIAL_TOKENS.filter((t) => t !== BUILTIN_EOS_TOKEN && t !== BUILTIN_PAD_TOKEN),
      added_tokens_decoder,
      clean_up_tokenization_spaces: false,
      model_max_length: 1_000_000,
      chat_template: BUILTIN_CHAT_TEMPLATE,
    };
  }
}

let shared: BuiltinTokenizer | undefined;
/** The (stateless) built-in tokenizer, constructed once. */
export function builtinTokenizer(): BuiltinTokenizer {
  return (shared ??= new BuiltinTokenizer());
}

function files(tokenizer: SavableTokenizer): [string, string][] {
  return [
    ['tokenizer.json', `${JSON.stringify(tokenizer.toTokenizerJson(), null, 2)}\n`],
    ['tokenizer_config.json', `${JSON.stringify(tokenizer.toTokenizerConfig(), null, 2)}\n`],
  ];
}

/** Writes `tokenizer.json` and `tokenizer_config.json` into `dir` (created if missing). */
export async function saveTokenizer(dir: string, tokenizer: SavableTokenizer = builtinTokenizer()): Promise<void> {
  await mkdir(dir, { recursive: true });
  for (const [name, text] of files(tokenizer)) await writeFile(join(dir, name), text);
}

export function saveTokenizerSync(dir: string, tokenizer: SavableTokenizer = builtinTokenizer()): void {
  mkdirSync(dir, { recursive: true });
  for (const [name, text] of files(tokenizer)) writeFileSync(join(dir, name), text);
}
