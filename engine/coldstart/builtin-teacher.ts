// The built-in teacher for the synthetic families. It imitates an imperfect LLM on purpose: at
// seeded rates it writes malformed tags, code that does not parse, code that computes the wrong
// thing, or a final answer that disagrees with the interpreter, and sometimes a first block that
// fails (a missing import, an undefined name) followed by a corrected one. Every interpreter
// output in its traces comes from running the code in the sandbox.
import { z } from 'zod';
import { Rng } from '../../domain/rng.js';
import { fnv1a32 } from '../../domain/synth/index.js';
import { renderForModel, type Sandbox } from '../sandbox/index.js';
import { codeBlock, interpreterBlock, TAG } from '../trace/format.js';
import { DefectRatesSchema, TraceStyleSchema } from './options.js';
import { drawStrategy, writePaperTrace } from './paper-style.js';
import { solutionFor } from './solutions.js';
import type { SeededDefect, Teacher, TeacherFailure, TeacherProblem, TeacherTrace, TraceMode } from './teacher.js';

export type DefectRates = z.output<typeof DefectRatesSchema>;

export const BuiltinTeacherOptionsSchema = z.object({
  seed: z.number().int().default(0),
  rates: DefectRatesSchema.default(DefectRatesSchema.parse({})),
  style: TraceStyleSchema,
  /** Force one defect on every trace (tests). */
  force: z.enum(['malformed_tags', 'syntax_error', 'wrong_code', 'wrong_answer', 'self_correction']).optional(),
});
export type BuiltinTeacherOptions = z.input<typeof BuiltinTeacherOptionsSchema>;

function answerBox(answer: string, explained = false): string {
  const nl = explained ? '\n' : '';
  return `${TAG.answerOpen}${nl}\\boxed{${answer}}${nl}${TAG.answerClose}`;
}

/** A different number of the same length: the slip of a careless writer. */
function typo(answer: string, rng: Rng): string {
  const digits = [...answer].map((c, i) => ({ c, i })).filter((d) => /\d/.test(d.c));
  if (digits.length === 0) return `${answer}1`;
  const pick = digits[rng.int(0, digits.length - 1)]!;
  const replacement = String((Number(pick.c) + rng.int(1, 8)) % 10);
  const out = answer.slice(0, pick.i) + replacement + answer.slice(pick.i + 1);
  return /^0\d/.test(out) ? `1${out.slice(1)}` : out;
}

/** Adds one to a random integer literal of the code (a wrong operand). */
function wrongOperand(code: string, rng: Rng): string {
  const literals = [...code.matchAll(/\d+/g)];
  if (literals.length === 0) return code.replace('print(', 'print(1+');
  const m = literals[rng.int(0, literals.length - 1)]!;
  return code.slice(0, m.index) + String(BigInt(m[0]) + 1n) + code.slice(m.index! + m[0].length);
}

function malformTags(response: string, rng: Rng): string {
  switch (rng.int(0, 2)) {
    case 0:
      return response.replace(TAG.codeClose, '');
    case 1:
      return response.replace(TAG.interpreterClose, '');
    default:
      return response.replace(TAG.answerOpen, '');
  }
}

export class BuiltinTeacher implements Teacher {
  readonly name = 'builtin';
  private readonly opts: z.output<typeof BuiltinTeacherOptionsSchema>;

  constructor(
    private readonly sandbox: Sandbox,
    options: BuiltinTeacherOptions = {},
  ) {
    this.opts = BuiltinTeacherOptionsSchema.parse(options);
  }

  private async run(code: string): Promise<string> {
    return (await this.execute(code)).text;
  }

  private async execute(code: string) {
    const result = await this.sandbox.run({ code });
    return { text: renderForModel(result), result };
  }

  /** Which defect (if any) this problem's trace gets: a pure function of the seed and the id. */
  private draw(rng: Rng): SeededDefect | 'self_correction' | null {
    if (this.opts.force) return this.opts.force;
    const r = this.opts.rates;
    const x = rng.u32() / 4294967296;
    let edge = 0;
    for (const [defect, rate] of [
      ['malformed_tags', r.malformedTags],
      ['syntax_error', r.syntaxError],
      ['wrong_code', r.wrongCode],
      ['wrong_answer', r.wrongAnswer],
      ['self_correction', r.selfCorrection],
    ] as const) {
      edge += rate;
      if (x < edge) return defect;
    }
    return null;
  }

  async write(problem: TeacherProblem, mode: TraceMode): Promise<TeacherTrace | TeacherFailure> {
    const solution = problem.family ? solutionFor(problem.family, problem.problem) : null;
    if (!solution)
      return {
        problemId: problem.id,
        error: `the built-in teacher knows only the synthetic families (family ${problem.family ?? 'none'}: "${problem.problem.slice(0, 60)}")`,
      };
    const rng = new Rng(fnv1a32(`${this.opts.seed}:${mode}:${problem.id}`));
    const drawn = this.draw(rng);
    const base = { problemId: problem.id, mode, teacher: this.name, seededDefect: null as SeededDefect | null, selfCorrection: false };

    // The paper style's text-mode traces are the terse ones: by hand, in as few characters.
    const explained = this.opts.style === 'explained';
    if (mode === 'code' && this.opts.style === 'paper') {
      // Its own stream, so the strategies do not shift the defects drawn above.
      const strategyRng = new Rng(fnv1a32(`${this.opts.seed}:strategy:${problem.id}`));
      const trace = await writePaperTrace(
        solution,
        problem,
        drawStrategy(strategyRng),
        strategyRng,
        (answer) => typo(answer, strategyRng),
        (code) => this.execute(code),
      );
      // The strategies bring their own failing blocks; of the seeded defects the textual ones apply.
      let response = trace.response;
      let seeded: SeededDefect | null = null;
      if (drawn === 'malformed_tags') [response, seeded] = [malformTags(response, rng), drawn];
      if (drawn === 'wrong_answer') {
        const given = /\\boxed\{([^}]*)\}[^]*$/.exec(response)?.[1] ?? problem.answer;
        [response, seeded] = [response.replace(/\\boxed\{[^}]*\}(?![^]*\\boxed\{)/, `\\boxed{${typo(given, rng)}}`), drawn];
      }
      return { ...base, response, seededDefect: seeded, selfCorrection: trace.selfCorrection, strategy: trace.strategy };
    }
    if (mode === 'text') {
      const answer = drawn === 'wrong_answer' || drawn === 'wrong_code' ? typo(problem.answer, rng) : problem.answer;
      const steps = `${solution.textSteps(answer).join('.\n')}.\n`;
      const response = explained
        ? `We need ${solution.goal}. I will work it out by hand.\n${steps}So the answer is ${answer}.\n${answerBox(answer, true)}`
        : `${steps}${answerBox(answer)}`;
      return { ...base, response, seededDefect: answer === problem.answer ? null : 'wrong_answer' };
    }

    const code = [...solution.setup, solution.compute].join('\n');
    // Terse: no reasoning sentence before the code, since a tiny model learns to copy the
    // problem's numbers into the code far sooner when the copy is short-range (README's results).
    let response = explained ? `We need ${solution.goal}. I will compute it exactly with Python.\n` : '';
    let seeded: SeededDefect | null = null;
    let selfCorrection = false;
    if (drawn === 'self_correction') {
      // A first attempt that fails at run time (never a syntax error: that fails the format stage).
      const broken = solution.setup.length > 0 ? solution.compute : solution.compute.replace(/^print\((.*)\)$/, 'print(value($1))');
      const fix = explained ? 'The code failed, so I fix it and run it again.\n' : 'Fix the error.\n';
      response += `${codeBlock(broken)}${interpreterBlock(await this.run(broken))}${fix}`;
      selfCorrection = true;
    }
    let finalCode = code;
    if (drawn === 'syntax_error') finalCode = code.replace(/\)$/, '');
    if (drawn === 'wrong_code') finalCode = wrongOperand(code, rng);
    const output = await this.run(finalCode);
    const answer = drawn === 'wrong_answer' ? typo(output, rng) : output;
    const conclusion = explained
      ? `The code printed ${output}, so the answer is ${answer}.\n${answerBox(answer, true)}`
      : answerBox(answer);
    response += `${codeBlock(finalCode)}${interpreterBlock(output)}${conclusion}`;
    if (drawn === 'malformed_tags') response = malformTags(response, rng);
    if (drawn !== null && drawn !== 'self_correction') seeded = drawn;
    return { ...base, response, seededDefect: seeded, selfCorrection };
  }
}
