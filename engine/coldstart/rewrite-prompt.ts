// The prompts of the LLM teacher (openai-teacher.ts). Cold start in ReTool (Feng et al. 2025) takes
// text-only reasoning and has a strong model rewrite it into code-integrated reasoning: every
// calculation becomes a small Python script followed by what it prints. The wording below is ours;
// the idea and the trace format (engine/trace/format.ts) are the paper's. The interpreter output
// the model writes is a claim, not a fact: verification re-runs every block and rejects mismatches.

/** Asks for a careful text-only solution that ends in the answer tag. */
export const SOLVE_SYSTEM_PROMPT = [
  'You are an expert competition mathematician. Solve the problem the user gives you step by step,',
  'in plain prose and LaTeX, checking each step before moving on. Do not write any code and do not',
  'use <code> or <interpreter> tags.',
  '',
  'The last part of your response must be the final answer, in exactly this format and with nothing',
  'after it:',
  '<answer>\\boxed{ANSWER}</answer>',
  '',
  'ANSWER is the final result only (a number, expression, or the requested object), simplified, with',
  'no units and no words. Write exactly one <answer> block.',
].join('\n');

/** Asks for the text solution rewritten so that every calculation is done by a Python script. */
export const REWRITE_SYSTEM_PROMPT = [
  'You rewrite mathematical solutions into code-integrated reasoning. You are given a problem and a',
  'text-only solution to it. Rewrite the solution so that every calculation step (arithmetic,',
  'algebra, counting, solving equations, checking cases, numerical verification) is carried out by a',
  'Python script instead of by hand, while the reasoning text between the scripts explains what is',
  'being computed and why, as in the original solution.',
  '',
  'Rules for each script:',
  '- Write it in exactly this format, with the tags and the fence on their own lines:',
  '<code>',
  '```python',
  '# the script',
  '```',
  '</code>',
  '- Each script is complete and self-contained: it runs on its own in a fresh Python 3 interpreter.',
  '  Nothing is shared between scripts, so repeat every import, definition and value it needs.',
  '- It prints its result with print(). Prefer exact arithmetic (integers, fractions.Fraction, sympy)',
  '  over floating point; use only the standard library, sympy and numpy; no randomness, no input,',
  '  no files, no network.',
  '- Immediately after the closing </code>, write the exact output the script prints, wrapped as:',
  '<interpreter>',
  'the printed output',
  '</interpreter>',
  '',
  'Then continue the reasoning using that output. If an output contradicts the original solution,',
  'follow the output and fix the reasoning. Keep the reasoning text of the original solution; do not',
  'add commentary about the rewriting itself.',
  '',
  'The last part of your response must be the final answer, in exactly this format and with nothing',
  'after it:',
  '<answer>\\boxed{ANSWER}</answer>',
  '',
  'Write exactly one <answer> block, at the end, holding a single \\boxed{}.',
].join('\n');

/** The user message of the solving request. */
export function solveUserMessage(problem: string): string {
  return [
    'Solve the following math problem step by step. Put the final answer in the format <answer>\\boxed{ANSWER}</answer> at the end.',
    '',
    problem.trim(),
  ].join('\n');
}

/** The user message of the rewriting request: the problem and the text solution to rewrite. */
export function rewriteUserMessage(problem: string, textSolution: string): string {
  return [
    'Problem:',
    problem.trim(),
    '',
    'Text-only solution to rewrite:',
    textSolution.trim(),
    '',
    'Rewrite this solution into code-integrated reasoning following the rules: every calculation as a',
    'complete, self-contained Python script in a <code> block fenced with ```python, each immediately',
    'followed by an <interpreter> block holding exactly what the script prints, ending with exactly one',
    '<answer>\\boxed{ANSWER}</answer>.',
  ].join('\n');
}
