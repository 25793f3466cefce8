/** One chat turn, as passed to a chat template. */
export interface ChatMessage {
  role: string;
  content: string;
}

export interface ChatTemplateOptions {
  /** Append the header that opens the assistant's turn (transformers' `add_generation_prompt`). */
  addGenerationPrompt?: boolean;
}

/**
 * What the engine needs from a tokenizer. `encode` never adds BOS/EOS or other template tokens: it
 * maps raw text (special-token text included, e.g. `<code>`) to ids; `decode` renders every id,
 * specials included, without any space clean-up.
 */
export interface TextTokenizer {
  /** One more than the largest id (added tokens included): the embedding rows a model needs. */
  readonly vocabSize: number;
  encode(text: string): number[];
  decode(ids: number[]): string;
  tokenToId(token: string): number | undefined;
  readonly eosId: number;
  readonly padId: number;
  readonly specialIds: ReadonlySet<number>;
  applyChatTemplate?(messages: ChatMessage[], opts?: ChatTemplateOptions): string;
}
