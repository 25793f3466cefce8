import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../util/project-root.js';
import { TAG } from './format.js';
import type { TextTokenizer } from '../tokenizer/types.js';

/** Shipped with the real evaluation data (datasets/real/README.md says where it comes from). */
const RETOOL_PROMPT_TEMPLATE_FILE = join(PROJECT_ROOT, 'datasets', 'real', 'retool_prompt_template.json');
let retoolTemplate: string | null = null;

/**
 * The ReTool authors' rollout prompt (their evaluation/prompt_template.json) with the problem in
 * it. It is a Python format string: `{query}` is the problem and doubled braces are literal.
 */
export function retoolInstruction(problem: string): string {
  retoolTemplate ??= (JSON.parse(readFileSync(RETOOL_PROMPT_TEMPLATE_FILE, 'utf8')) as { retool: string }).retool;
  return retoolTemplate.replace(/\{\{|\}\}|\{query\}/g, (m) => (m === '{query}' ? problem : m[0]!));
}

/**
 * The prompt a model sees for a problem, as the user's turn of its chat template with the
 * assistant's turn opened (the built-in template renders `user: ...\nassistant: `), or the bare
 * problem and a newline for a tokenizer without one. A pretrained model, whose vocabulary was not
 * made for the trace format (no single `<code>` token), gets the problem inside the ReTool
 * authors' instruction, which tells it the format and the interpreter; the built-in model, whose
 * vocabulary was, gets the bare problem.
 */
export function promptText(tokenizer: TextTokenizer, problem: string): string {
  const instructed = tokenizer.tokenToId(TAG.codeOpen) === undefined;
  const content = instructed ? retoolInstruction(problem) : problem;
  if (tokenizer.applyChatTemplate) return tokenizer.applyChatTemplate([{ role: 'user', content }], { addGenerationPrompt: true });
  return `${content}\n`;
}
