// The ReTool trace format (DESIGN.md): reasoning text, code blocks as
// <code>\n```python\n...\n```\n</code>, each followed by <interpreter>output</interpreter> from the
// sandbox, and one final <answer>\boxed{...}</answer>. Roles are assigned per segment of text here,
// then per token by encoding segment by segment, never by re-parsing strings after tokenisation.
import { extractBoxed, gradeResponse } from '../../domain/grading.js';
import type { TextTokenizer } from '../tokenizer/types.js';

export type Role = 'prompt' | 'model' | 'interpreter';

export interface Segment {
  role: Role;
  text: string;
}

export const TAG = {
  codeOpen: '<code>',
  codeClose: '</code>',
  interpreterOpen: '<interpreter>',
  interpreterClose: '</interpreter>',
  answerOpen: '<answer>',
  answerClose: '</answer>',
} as const;

/** Wraps sandbox output the way the rollout appends it after a `</code>`. */
export function interpreterBlock(rendered: string): string {
  return `\n${TAG.interpreterOpen}\n${rendered}\n${TAG.interpreterClose}\n`;
}

/** A code block as the model writes it. */
export function codeBlock(code: string): string {
  return `${TAG.codeOpen}\n\`\`\`python\n${code.replace(/\n+$/, '')}\n\`\`\`\n${TAG.codeClose}`;
}

/**
 * Splits a response into model and interpreter segments. An interpreter segment runs from
 * `<interpreter>` through `</interpreter>` (the tags included: the model never writes them).
 * An unclosed `<interpreter>` runs to the end.
 */
export function responseSegments(response: string): Segment[] {
  const segments: Segment[] = [];
  let at = 0;
  while (at < response.length) {
    const open = response.indexOf(TAG.interpreterOpen, at);
    if (open === -1) {
      segments.push({ role: 'model', text: response.slice(at) });
      break;
    }
    if (open > at) segments.push({ role: 'model', text: response.slice(at, open) });
    const close = response.indexOf(TAG.interpreterClose, open);
    const end = close === -1 ? response.length : close + TAG.interpreterClose.length;
    segments.push({ role: 'interpreter', text: response.slice(open, end) });
    at = end;
  }
  return segments;
}

/**
 * The model's prose: the response without interpreter spans and without its code blocks. Answers
 * are graded on this, so code that prints (or a program that spells out) `\boxed{...}` earns
 * nothing unless the model states the answer itself.
 */
export function modelProse(response: string): string {
  return responseSegments(response)
    .filter((s) => s.role === 'model')
    .map((s) => s.text.replace(CODE_SPAN, ''))
    .join('');
}
const CODE_SPAN = /<code>[\s\S]*?(?:<\/code>|$)/g;

/** The grade of the model's own final answer (reward, evaluation and trace verification use it). */
export function gradeModelAnswer(response: string, gold: string): { extracted: string | null; correct: boolean } {
  return gradeResponse(modelProse(response), gold);
}

export interface CodeBlock {
  code: string;
  /** The interpreter output recorded right after the block, or null when there is none. */
  output: string | null;
}

const FENCE = /^\s*```(?:python|py)?[ \t]*\n([\s\S]*?)\n?```\s*$/;

/** Code blocks with the interpreter output that follows each. */
export function codeBlocks(response: string): CodeBlock[] {
  const blocks: CodeBlock[] = [];
  const pattern = /<code>([\s\S]*?)<\/code>(\s*<interpreter>([\s\S]*?)<\/interpreter>)?/g;
  for (const m of response.matchAll(pattern)) {
    const fenced = FENCE.exec(m[1]!);
    blocks.push({
      code: fenced ? fenced[1]! : m[1]!.trim(),
      output: m[3] === undefined ? null : m[3].replace(/^\n/, '').replace(/\n$/, ''),
    });
  }
  return blocks;
}

export const FORMAT_DEFECTS = [
  'unbalanced_code',
  'unbalanced_interpreter',
  'nested_tags',
  'interpreter_without_code',
  'code_without_output',
  'missing_fence',
  'empty_code',
  'no_answer',
  'several_answers',
  'text_after_answer',
] as const;
export type FormatDefect = (typeof FORMAT_DEFECTS)[number];

export type FormatVerdict = { ok: true } | { ok: false; defect: FormatDefect; detail: string };

const TAG_PATTERN = /<\/?(?:code|interpreter|answer)>/g;

/**
 * The format stage of the paper's two-stage verification: tags balanced and in order (code, then
 * its interpreter output), every code block fenced and non-empty, and exactly one final
 * `\boxed{}` answer at the end. (That the code parses is checked by running it; see verify.)
 */
export function checkFormat(response: string, { requireOutputs = true } = {}): FormatVerdict {
  const fail = (defect: FormatDefect, detail: string): FormatVerdict => ({ ok: false, defect, detail });
  let state: 'text' | 'code' | 'interpreter' | 'answer' = 'text';
  let lastClosed: 'code' | 'interpreter' | 'answer' | null = null;
  let answers = 0;
  for (const m of response.matchAll(TAG_PATTERN)) {
    const tag = m[0];
    const where = `at character ${m.index}`;
    switch (tag) {
      case TAG.codeOpen:
        if (state !== 'text') return fail('nested_tags', `<code> inside <${state}> ${where}`);
        if (requireOutputs && lastClosed === 'code')
          return fail('code_without_output', `a code block has no <interpreter> output before the next one ${where}`);
        state = 'code';
        break;
      case TAG.codeClose:
        if (state !== 'code') return fail('unbalanced_code', `</code> without <code> ${where}`);
        state = 'text';
        lastClosed = 'code';
        break;
      case TAG.interpreterOpen:
        if (state !== 'text') return fail('nested_tags', `<interpreter> inside <${state}> ${where}`);
        if (lastClosed !== 'code') return fail('interpreter_without_code', `<interpreter> not right after a code block ${where}`);
        state = 'interpreter';
        break;
      case TAG.interpreterClose:
        if (state !== 'interpreter') return fail('unbalanced_interpreter', `</interpreter> without <interpreter> ${where}`);
        state = 'text';
        lastClosed = 'interpreter';
        break;
      case TAG.answerOpen:
        if (state !== 'text') return fail('nested_tags', `<answer> inside <${state}> ${where}`);
        if (requireOutputs && lastClosed === 'code')
          return fail('code_without_output', `the last code block has no <interpreter> output ${where}`);
        answers += 1;
        state = 'answer';
        break;
      case TAG.answerClose:
        if (state !== 'answer') return fail('nested_tags', `</answer> without <answer> ${where}`);
        state = 'text';
        lastClosed = 'answer';
        break;
    }
  }
  if (state === 'code') return fail('unbalanced_code', 'a <code> block is never closed');
  if (state === 'interpreter') return fail('unbalanced_interpreter', 'an <interpreter> block is never closed');
  if (state === 'answer') return fail('no_answer', 'the <answer> block is never closed');
  if (answers === 0) return fail('no_answer', 'no <answer> block');
  if (answers > 1) return fail('several_answers', `${answers} <answer> blocks`);
  for (const [i, m] of [...response.matchAll(/<code>([\s\S]*?)<\/code>/g)].entries()) {
    const fenced = FENCE.exec(m[1]!);
    if (!fenced) return fail('missing_fence', `code block ${i + 1} is not fenced with \`\`\`python`);
    if (fenced[1]!.trim() === '') return fail('empty_code', `code block ${i + 1} is empty`);
  }
  const answer = /<answer>([\s\S]*?)<\/answer>/.exec(response)![1]!;
  const boxes = answer.match(/\\boxed/g)?.length ?? 0;
  if (boxes === 0 || extractBoxed(answer) === null) return fail('no_answer', 'the <answer> block holds no complete \\boxed{}');
  if (boxes > 1) return fail('several_answers', `the <answer> block holds ${boxes} \\boxed{}`);
  if (response.slice(response.lastIndexOf(TAG.answerClose) + TAG.answerClose.length).trim() !== '')
    return fail('text_after_answer', 'text follows </answer>');
  return { ok: true };
}

export interface RoleTokens {
  ids: number[];
  roles: Role[];
}

/**
 * Token ids with a role each: the prompt, then the response segment by segment, so that a mask
 * (loss on `model` tokens only) needs no string matching after tokenisation.
 */
export function tokenizeWithRoles(tokenizer: TextTokenizer, prompt: string, response: string): RoleTokens {
  const ids: number[] = [];
  const roles: Role[] = [];
  const add = (text: string, role: Role) => {
    for (const id of tokenizer.encode(text)) {
      ids.push(id);
      roles.push(role);
    }
  };
  add(prompt, 'prompt');
  for (const s of responseSegments(response)) add(s.text, s.role);
  return { ids, roles };
}
