// The paper's two-stage verification of a code-integrated trace: format first (tags, fences, one
// boxed answer, code that parses), then answer (every block re-executed in the sandbox must print
// what the trace recorded, and the final answer must grade equal to the ground truth).
import { renderForModel, type Sandbox } from '../sandbox/index.js';
import { checkFormat, codeBlocks, gradeModelAnswer, type FormatDefect } from './format.js';

export type RejectReason = FormatDefect | 'code_in_text_trace' | 'code_syntax' | 'output_mismatch' | 'wrong_answer';

export type Verdict = { ok: true; blocks: number } | { ok: false; stage: 'format' | 'answer'; reason: RejectReason; detail: string };

export interface VerifyOptions {
  /** Size the interpreter output was cut to when the trace was made (renderForModel). */
  renderBytes?: number;
  /** A text-only trace (the baseline arm's cold start) may hold no code at all. */
  mode?: 'code' | 'text';
}

const PARSE_ALL = [
  'import ast, json, sys',
  'for i, src in enumerate(json.load(sys.stdin)):',
  '    try:',
  '        ast.parse(src)',
  '    except SyntaxError as e:',
  '        print(i, e.msg)',
  '        break',
].join('\n');

/** `gold` null (traces imported without answers): the final answer is not graded, only required. */
export async function verifyTrace(response: string, gold: string | null, sandbox: Sandbox, opts: VerifyOptions = {}): Promise<Verdict> {
  const format = checkFormat(response);
  if (!format.ok) return { ok: false, stage: 'format', reason: format.defect, detail: format.detail };
  const blocks = codeBlocks(response);
  if (opts.mode === 'text' && (blocks.length > 0 || /<\/?(?:code|interpreter)>/.test(response))) {
    return { ok: false, stage: 'format', reason: 'code_in_text_trace', detail: 'a text-only trace holds code or interpreter tags' };
  }
  if (blocks.length > 0) {
    // One sandbox run parses every block (ast.parse), so no code is executed at this stage.
    const parsed = await sandbox.run({ code: PARSE_ALL, stdin: JSON.stringify(blocks.map((b) => b.code)) });
    if (parsed.status !== 'ok')
      return { ok: false, stage: 'format', reason: 'code_syntax', detail: `could not check the code: ${parsed.status}` };
    const failed = parsed.stdout.trim();
    if (failed) {
      const [index, ...msg] = failed.split(' ');
      return { ok: false, stage: 'format', reason: 'code_syntax', detail: `code block ${Number(index) + 1}: ${msg.join(' ')}` };
    }
  }
  for (const [i, block] of blocks.entries()) {
    const result = await sandbox.run({ code: block.code });
    const now = renderForModel(result, opts.renderBytes).trim();
    const recorded = (block.output ?? '').trim();
    if (now !== recorded) {
      return {
        ok: false,
        stage: 'answer',
        reason: 'output_mismatch',
        detail: `code block ${i + 1} prints ${JSON.stringify(now.slice(0, 80))}, the trace recorded ${JSON.stringify(recorded.slice(0, 80))}`,
      };
    }
  }
  if (gold === null) return { ok: true, blocks: blocks.length };
  const graded = gradeModelAnswer(response, gold);
  if (!graded.correct)
    return { ok: false, stage: 'answer', reason: 'wrong_answer', detail: `answered ${graded.extracted ?? '(nothing)'}, expected ${gold}` };
  return { ok: true, blocks: blocks.length };
}
