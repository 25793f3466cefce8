import { existsSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { ChatTemplate, type TemplateSpecialTokens } from './chat.js';
import type { ChatMessage, ChatTemplateOptions, TextTokenizer } from './types.js';

type Json = Record<string, unknown>;

/** A special token in tokenizer_config.json: a string or an AddedToken object `{content, ...}`. */
function tokenText(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (v && typeof v === 'object' && typeof (v as Json).content === 'string') return (v as Json).content as string;
  return undefined;
}

/**
 * The chat template: `chat_template.jinja` in the directory wins (transformers >= 4.43 saves it
 * there), else `chat_template` in tokenizer_config.json (a string, or the list/map of named
 * templates, where "default" is used).
 */
function pickTemplate(config: Json, file: string | undefined): string | undefined {
  if (file !== undefined) return file;
  const t = config.chat_template;
  if (typeof t === 'string') return t;
  if (Array.isArray(t)) {
    const named = t.find((x) => x && typeof x === 'object' && (x as Json).name === 'default') ?? t[0];
    const tpl = named && typeof named === 'object' ? (named as Json).template : undefined;
    return typeof tpl === 'string' ? tpl : undefined;
  }
  if (t && typeof t === 'object') {
    const tpl = (t as Json).default ?? Object.values(t)[0];
    return typeof tpl === 'string' ? tpl : undefined;
  }
  return undefined;
}

/** A TextTokenizer over a Hugging Face `tokenizer.json`, via tokenizers.js. */
export class HfTokenizer implements TextTokenizer {
  readonly vocabSize: number;
  readonly eosId: number;
  readonly padId: number;
  readonly bosId: number | undefined;
  readonly specialIds: ReadonlySet<number>;
  readonly chatTemplate: string | undefined;
  readonly applyChatTemplate?: (messages: ChatMessage[], opts?: ChatTemplateOptions) => string;
  private readonly tok: Tokenizer;
  private readonly cleanUpSpaces: boolean;

  constructor(tokenizerJson: object, config: object = {}, chatTemplateFile?: string) {
    const tj = tokenizerJson as Json;
    const cfg = config as Json;
    // tokenizers.js defaults clean_up_tokenization_spaces to true; transformers and the Rust library
    // do not clean up unless the config says so, and clean-up would corrupt code (" ." -> ".").
    this.cleanUpSpaces = cfg.clean_up_tokenization_spaces === true;
    this.tok = new Tokenizer(tj, { ...cfg, clean_up_tokenization_spaces: this.cleanUpSpaces });

    let maxId = -1;
    for (const id of this.tok.get_vocab(true).values()) maxId = Math.max(maxId, id);
    const added = Array.isArray(tj.added_tokens) ? (tj.added_tokens as Json[]) : [];
    for (const t of added) if (typeof t.id === 'number') maxId = Math.max(maxId, t.id);
    this.vocabSize = maxId + 1;

    const idOf = (t: string | undefined) => (t === undefined ? undefined : this.tok.token_to_id(t));
    const names = ['bos_token', 'eos_token', 'unk_token', 'pad_token', 'sep_token', 'cls_token', 'mask_token'] as const;
    const specialTokens: TemplateSpecialTokens = {};
    for (const n of names) {
      const t = tokenText(cfg[n]);
      if (t !== undefined) specialTokens[n] = t;
    }

    const eos = idOf(specialTokens.eos_token) ?? idOf('<|endoftext|>') ?? idOf('<|im_end|>') ?? idOf('</s>');
    if (eos === undefined) throw new Error('tokenizer has no eos token (tokenizer_config.eos_token, <|endoftext|>, <|im_end|> or </s>)');
    this.eosId = eos;
    this.padId = idOf(specialTokens.pad_token) ?? idOf('<|pad|>') ?? idOf('<|endoftext|>') ?? idOf('<|im_end|>') ?? eos;
    this.bosId = idOf(specialTokens.bos_token);

    const specials = new Set<number>();
    for (const t of added) if (t.special === true && typeof t.id === 'number') specials.add(t.id);
    for (const n of names) {
      const id = idOf(specialTokens[n]);
      if (id !== undefined) specials.add(id);
    }
    specials.add(this.eosId).add(this.padId);
    this.specialIds = specials;

    this.chatTemplate = pickTemplate(cfg, chatTemplateFile);
    if (this.chatTemplate !== undefined) {
      const chat = new ChatTemplate(this.chatTemplate, specialTokens);
      this.applyChatTemplate = (messages, opts) => chat.render(messages, opts);
    }
  }

  /** Raw text to ids; adds no BOS/EOS (like transformers' `encode(text, add_special_tokens=False)`). */
  encode(text: string): number[] {
    if (text.length === 0) return [];
    return this.tok.encode(text, { add_special_tokens: false }).ids;
  }

  /** Every known id rendered, specials included; unknown ids skipped (as the Rust library does). */
  decode(ids: number[]): string {
    const known = ids.filter((id) => this.tok.id_to_token(id) !== undefined);
    if (known.length === 0) return '';
    return this.tok.decode(known, { skip_special_tokens: false, clean_up_tokenization_spaces: this.cleanUpSpaces });
  }

  tokenToId(token: string): number | undefined {
    return this.tok.token_to_id(token);
  }

  idToToken(id: number): string | undefined {
    return this.tok.id_to_token(id);
  }
}

const TEMPLATE_FILE = 'chat_template.jinja';

/** Loads a Hugging Face tokenizer directory (`tokenizer.json` + `tokenizer_config.json`, optional `chat_template.jinja`). */
export async function loadTokenizer(dir: string): Promise<TextTokenizer> {
  const json = JSON.parse(await readFile(join(dir, 'tokenizer.json'), 'utf8')) as object;
  const cfgPath = join(dir, 'tokenizer_config.json');
  const config = existsSync(cfgPath) ? (JSON.parse(await readFile(cfgPath, 'utf8')) as object) : {};
  const tplPath = join(dir, TEMPLATE_FILE);
  const tpl = existsSync(tplPath) ? await readFile(tplPath, 'utf8') : undefined;
  return new HfTokenizer(json, config, tpl);
}

export function loadTokenizerSync(dir: string): TextTokenizer {
  const json = JSON.parse(readFileSync(join(dir, 'tokenizer.json'), 'utf8')) as object;
  const cfgPath = join(dir, 'tokenizer_config.json');
  const config = existsSync(cfgPath) ? (JSON.parse(readFileSync(cfgPath, 'utf8')) as object) : {};
  const tplPath = join(dir, TEMPLATE_FILE);
  const tpl = existsSync(tplPath) ? readFileSync(tplPath, 'utf8') : undefined;
  return new HfTokenizer(json, config, tpl);
}
