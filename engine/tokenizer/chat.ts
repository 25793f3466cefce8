import { Template } from '@huggingface/jinja';
import type { ChatMessage, ChatTemplateOptions } from './types.js';

/** Special-token strings a chat template may read (transformers passes its special_tokens_map). */
export type TemplateSpecialTokens = Partial<
  Record<'bos_token' | 'eos_token' | 'unk_token' | 'pad_token' | 'sep_token' | 'cls_token' | 'mask_token', string>
>;

/**
 * A compiled Jinja chat template rendered like transformers' `apply_chat_template(..., tokenize=False)`:
 * trim_blocks + lstrip_blocks, variables `messages`, `add_generation_prompt` and the special tokens.
 */
export class ChatTemplate {
  private readonly template: Template;

  constructor(
    readonly source: string,
    private readonly specialTokens: TemplateSpecialTokens = {},
  ) {
    this.template = new Template(source);
  }

  render(messages: ChatMessage[], opts: ChatTemplateOptions = {}): string {
    return this.template.render({
      ...this.specialTokens,
      messages: messages.map((m) => ({ ...m })),
      add_generation_prompt: opts.addGenerationPrompt ?? false,
    });
  }
}
