import type { TextTokenizer } from '../tokenizer/types.js';

/**
 * The prompt a model sees for a problem: its chat template with the problem as the user's turn
 * and the assistant's turn opened (the built-in template renders `user: ...\nassistant: `), or
 * the bare problem and a newline for a tokenizer without one.
 */
export function promptText(tokenizer: TextTokenizer, problem: string): string {
  if (tokenizer.applyChatTemplate) return tokenizer.applyChatTemplate([{ role: 'user', content: problem }], { addGenerationPrompt: true });
  return `${problem}\n`;
}
