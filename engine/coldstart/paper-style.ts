// The built-in teacher's `paper` style: a cold start like the ReTool paper's, whose traces are
// human-style reasoning rewritten by a teacher. Each problem draws one strategy (seeded):
// - hand: the arithmetic by hand and no code; right on easy levels, error-prone on hard ones;
// - hand-check: by hand, then a code block that checks the result, and a direct computation
//   when the check fails;
// - words-code: a plan and a first step in words, then the code computes the answer;
// - code-first: the code straight away;
// - brute-force: a search first (which times out on the largest inputs) or a block that fails,
//   then, usually, the direct computation; otherwise a guess by hand.
// Verification later keeps only traces whose final answer is right, so the wrong hand results that
// remain in the data are the ones a later block corrected: strategic errors, not wrong labels.
// The words are few and short: the built-in tokenizer spells characters, and a tiny model learns to
// copy the problem's numbers far later across a long prefix (docs/results.md), so each sentence
// names the strategy and nothing more (no restated problem, no "the code printed X").
import type { Rng } from '../../domain/rng.js';
import type { ExecResult } from '../sandbox/index.js';
import { codeBlock, interpreterBlock, TAG } from '../trace/format.js';
import type { Solution } from './solutions.js';

export const PAPER_STRATEGIES = ['hand', 'hand-check', 'words-code', 'code-first', 'brute-force'] as const;
export type PaperStrategy = (typeof PAPER_STRATEGIES)[number];

/** How often each strategy is drawn. */
const STRATEGY_WEIGHTS: Record<PaperStrategy, number> = {
  hand: 0.2,
  'hand-check': 0.25,
  'words-code': 0.2,
  'code-first': 0.2,
  'brute-force': 0.15,
};
/** The chance a hand calculation is right, by level (1-4): a text solver's reliability. */
const HAND_ACCURACY = [0.95, 0.85, 0.5, 0.25];
/** The chance a trace whose first block failed goes on to the direct computation. */
const RECOVERY = 0.7;

export interface PaperTrace {
  response: string;
  strategy: PaperStrategy;
  /** A failing block (error or timeout) followed by one that ran. */
  selfCorrection: boolean;
}

type Run = (code: string) => Promise<{ text: string; result: ExecResult }>;

export function drawStrategy(rng: Rng): PaperStrategy {
  let x = rng.u32() / 4294967296;
  for (const s of PAPER_STRATEGIES) {
    x -= STRATEGY_WEIGHTS[s];
    if (x < 0) return s;
  }
  return 'code-first';
}

const box = (answer: string) => `${TAG.answerOpen}\n\\boxed{${answer}}\n${TAG.answerClose}`;
const expressionOf = (compute: string) => /^print\((.*)\)$/.exec(compute)?.[1] ?? compute;

/**
 * One code-mode trace in the paper's mix. `slip` makes a plausible wrong result of a hand
 * calculation; `run` executes code in the sandbox (every interpreter output is real).
 */
export async function writePaperTrace(
  solution: Solution,
  problem: { answer: string; level: number | null },
  strategy: PaperStrategy,
  rng: Rng,
  slip: (answer: string) => string,
  run: Run,
): Promise<PaperTrace> {
  const level = Math.min(4, Math.max(1, problem.level ?? 2));
  const byHand = () => (rng.u32() / 4294967296 < HAND_ACCURACY[level - 1]! ? problem.answer : slip(problem.answer));
  const handSteps = (result: string) => `${solution.textSteps(result).join('.\n')}.\n`;
  const direct = [...solution.setup, solution.compute].join('\n');
  const block = async (code: string) => {
    const { text, result } = await run(code);
    return { text, ok: result.status === 'ok', shown: `${codeBlock(code)}${interpreterBlock(text)}` };
  };

  switch (strategy) {
    case 'hand': {
      const result = byHand();
      return {
        strategy,
        selfCorrection: false,
        response: `By hand:\n${handSteps(result)}${box(result)}`,
      };
    }
    case 'hand-check': {
      const result = byHand();
      const check = [...solution.setup, `value = ${expressionOf(solution.compute)}`, `print(str(value) == ${JSON.stringify(result)})`].join(
        '\n',
      );
      const checked = await block(check);
      let response = `By hand, then a check:\n${handSteps(result)}${checked.shown}`;
      if (checked.text === 'True')
        return {
          strategy,
          selfCorrection: false,
          response: response + box(result),
        };
      const computed = await block(direct);
      response += `Wrong by hand, so directly:\n${computed.shown}`;
      return {
        strategy,
        selfCorrection: false,
        response: response + box(computed.text),
      };
    }
    case 'words-code': {
      const first = solution.textSteps(problem.answer)[0] ?? '';
      // The first worked step shows the method, unless it already holds the answer.
      const said = first && !first.includes(problem.answer) ? `First, ${first}.\n` : '';
      const computed = await block(direct);
      return {
        strategy,
        selfCorrection: false,
        response: `${said}Python does the rest:\n${computed.shown}${box(computed.text)}`,
      };
    }
    case 'code-first': {
      const computed = await block(direct);
      return {
        strategy,
        selfCorrection: false,
        response: `${computed.shown}${box(computed.text)}`,
      };
    }
    case 'brute-force': {
      // A search where the family has one, else the direct code with its import forgotten.
      const firstTry = solution.bruteForce ?? (solution.setup.length > 0 ? solution.compute : null);
      if (firstTry === null) return writePaperTrace(solution, problem, 'code-first', rng, slip, run);
      const tried = await block(firstTry);
      let response = `${solution.bruteForce ? 'Search:' : 'Python:'}\n${tried.shown}`;
      if (tried.ok)
        return {
          strategy,
          selfCorrection: false,
          response: response + box(tried.text),
        };
      if (rng.u32() / 4294967296 < RECOVERY) {
        const why = /Timeout/.test(tried.text) ? 'Too slow, so the formula:' : 'It failed, so fixed:';
        const computed = await block(direct);
        response += `${why}\n${computed.shown}`;
        return {
          strategy,
          selfCorrection: computed.ok,
          response: response + box(computed.text),
        };
      }
      const result = byHand();
      response += `It failed, so by hand:\n${handSteps(result)}`;
      return { strategy, selfCorrection: false, response: response + box(result) };
    }
  }
}
