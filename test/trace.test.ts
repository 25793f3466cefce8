import { afterAll, describe, expect, it } from 'vitest';
import { Sandbox } from '../engine/sandbox/index.js';
import { builtinTokenizer } from '../engine/tokenizer/builtin.js';
import { checkFormat, codeBlocks, responseSegments, tokenizeWithRoles, type FormatDefect } from '../engine/trace/format.js';
import { verifyTrace } from '../engine/trace/verify.js';

const GOOD = [
  'Multiply first.',
  '<code>',
  '```python',
  'print(4821 * 397 + 1150)',
  '```',
  '</code>',
  '<interpreter>',
  '1915087',
  '</interpreter>',
  'So the value is 1915087.',
  '<answer>\\boxed{1915087}</answer>',
].join('\n');

const SELF_CORRECTION = [
  '<code>\n```python\nprint(10 // 0)\n```\n</code>',
  '<interpreter>\nZeroDivisionError: integer division or modulo by zero\n</interpreter>',
  'Fix the divisor.',
  '<code>\n```python\nprint(10 // 2)\n```\n</code>',
  '<interpreter>\n5\n</interpreter>',
  '<answer>\\boxed{5}</answer>',
].join('\n');

describe('trace format', () => {
  it('accepts a well-formed trace and one that corrects a failing block', () => {
    expect(checkFormat(GOOD)).toEqual({ ok: true });
    expect(checkFormat(SELF_CORRECTION)).toEqual({ ok: true });
    expect(checkFormat('Plain text reasoning: 2+3=5.\n<answer>\\boxed{5}</answer>')).toEqual({ ok: true });
  });

  it.each<[string, string, FormatDefect]>([
    ['a <code> never closed', 'x <code>\n```python\nprint(1)\n```\n<answer>\\boxed{1}</answer>', 'nested_tags'],
    ['a stray </code>', 'x </code> <answer>\\boxed{1}</answer>', 'unbalanced_code'],
    ['an unclosed <interpreter>', '<code>\n```python\nprint(1)\n```\n</code>\n<interpreter>\n1\n', 'unbalanced_interpreter'],
    ['interpreter output without code', 'x\n<interpreter>\n1\n</interpreter>\n<answer>\\boxed{1}</answer>', 'interpreter_without_code'],
    ['code whose output is missing', '<code>\n```python\nprint(1)\n```\n</code>\n<answer>\\boxed{1}</answer>', 'code_without_output'],
    ['code without a fence', '<code>\nprint(1)\n</code>\n<interpreter>\n1\n</interpreter>\n<answer>\\boxed{1}</answer>', 'missing_fence'],
    [
      'an empty code block',
      '<code>\n```python\n\n```\n</code>\n<interpreter>\n\n</interpreter>\n<answer>\\boxed{1}</answer>',
      'empty_code',
    ],
    ['no answer', 'I think it is 5.', 'no_answer'],
    ['an answer with no box', 'x <answer>5</answer>', 'no_answer'],
    ['an unbalanced box', 'x <answer>\\boxed{5</answer>', 'no_answer'],
    ['two answers', '<answer>\\boxed{1}</answer> <answer>\\boxed{2}</answer>', 'several_answers'],
    ['two boxes in one answer', '<answer>\\boxed{1} or \\boxed{2}</answer>', 'several_answers'],
    ['text after the answer', '<answer>\\boxed{1}</answer> and more', 'text_after_answer'],
  ])('rejects %s', (_label, response, defect) => {
    const verdict = checkFormat(response);
    expect(verdict.ok).toBe(false);
    if (!verdict.ok) expect(verdict.defect).toBe(defect);
  });

  it('pairs each code block with the output that follows it', () => {
    expect(codeBlocks(SELF_CORRECTION)).toEqual([
      { code: 'print(10 // 0)', output: 'ZeroDivisionError: integer division or modulo by zero' },
      { code: 'print(10 // 2)', output: '5' },
    ]);
    expect(codeBlocks('<code>\n```python\nx = 1\nprint(x)\n```\n</code> then nothing')).toEqual([
      { code: 'x = 1\nprint(x)', output: null },
    ]);
  });

  it('gives interpreter spans, tags included, their own role', () => {
    const segments = responseSegments(GOOD);
    expect(segments.map((s) => s.role)).toEqual(['model', 'interpreter', 'model']);
    expect(segments[1]!.text).toBe('<interpreter>\n1915087\n</interpreter>');
    expect(segments.map((s) => s.text).join('')).toBe(GOOD);
  });

  it('tags every token with its role, so a loss mask needs no string matching', () => {
    const tok = builtinTokenizer();
    const prompt = 'Compute 4821*397+1150.\n';
    const { ids, roles } = tokenizeWithRoles(tok, prompt, GOOD);
    expect(ids).toEqual(tok.encode(prompt + GOOD));
    expect(roles.filter((r) => r === 'prompt')).toHaveLength(tok.encode(prompt).length);
    const interpreterText = tok.decode(ids.filter((_, i) => roles[i] === 'interpreter'));
    expect(interpreterText).toBe('<interpreter>\n1915087\n</interpreter>');
    // The model writes </code> and the answer; it never writes the interpreter's tags.
    const modelIds = ids.filter((_, i) => roles[i] === 'model');
    expect(modelIds).toContain(tok.tokenToId('</code>'));
    expect(modelIds).not.toContain(tok.tokenToId('<interpreter>'));
    expect(modelIds).not.toContain(tok.tokenToId('</interpreter>'));
  });
});

describe('two-stage verification (real sandbox)', () => {
  const sandbox = new Sandbox({ poolSize: 2 });
  afterAll(() => sandbox.close());

  it('accepts a trace whose recorded outputs and answer hold', async () => {
    expect(await verifyTrace(GOOD, '1915087', sandbox)).toEqual({ ok: true, blocks: 1 });
    // The failing block's recorded output is the last traceback line, as the sandbox renders it.
    expect(await verifyTrace(SELF_CORRECTION, '5', sandbox)).toEqual({ ok: true, blocks: 2 });
  });

  it('rejects an invented interpreter output at the answer stage', async () => {
    const forged = GOOD.replace('<interpreter>\n1915087', '<interpreter>\n1915088');
    expect(await verifyTrace(forged, '1915087', sandbox)).toMatchObject({ ok: false, stage: 'answer', reason: 'output_mismatch' });
  });

  it('rejects a wrong final answer', async () => {
    expect(await verifyTrace(GOOD, '1915086', sandbox)).toMatchObject({ ok: false, stage: 'answer', reason: 'wrong_answer' });
  });

  it('rejects code that does not parse at the format stage, without running it', async () => {
    const broken = GOOD.replace('print(4821 * 397 + 1150)', 'print(4821 * (397 + 1150)');
    expect(await verifyTrace(broken, '1915087', sandbox)).toMatchObject({ ok: false, stage: 'format', reason: 'code_syntax' });
  });

  it('rejects a malformed trace before touching the sandbox', async () => {
    expect(await verifyTrace('no tags at all', '5', sandbox)).toMatchObject({ ok: false, stage: 'format', reason: 'no_answer' });
  });
});
