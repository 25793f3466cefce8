// The built-in teacher's `paper` style: the strategy mix, hand arithmetic that fails more on hard
// levels, checks that catch a wrong hand result, and searches that time out on level 4 before the
// direct computation, every interpreter output from the real sandbox.
import { afterAll, describe, expect, it } from 'vitest';
import { Rng } from '../domain/rng.js';
import { BuiltinTeacher } from '../engine/coldstart/builtin-teacher.js';
import { drawStrategy, PAPER_STRATEGIES, writePaperTrace, type PaperStrategy } from '../engine/coldstart/paper-style.js';
import { solutionFor } from '../engine/coldstart/solutions.js';
import { isFailure } from '../engine/coldstart/teacher.js';
import { classifyCode } from '../engine/eval/code-purpose.js';
import { renderForModel, Sandbox } from '../engine/sandbox/index.js';
import { codeBlocks, gradeModelAnswer } from '../engine/trace/format.js';
import { verifyTrace } from '../engine/trace/verify.js';

// A short time limit, so a search that would take minutes stops in two seconds.
const sandbox = new Sandbox({ poolSize: 2, defaults: { timeoutMs: 2000 } });
afterAll(() => sandbox.close());
const run = async (code: string) => {
  const result = await sandbox.run({ code });
  return { text: renderForModel(result), result };
};
// Hand-checked: 1 + 2 + ... + 30 = 465 (level 1); 7^3 mod 10 = 343 mod 10 = 3; primes below 90000: 8713.
const EASY = { problem: 'Sum of k for k=1..30?', answer: '465', family: 'sequence_sum', level: 1 };
const HARD_PRIMES = { problem: 'Number of primes below 90000?', answer: '8713', family: 'prime_count', level: 4 };
/** An Rng that always draws 0 (every chance taken) or always draws the top (none taken). */
const always = (x: 0 | 1) => ({ u32: () => (x === 0 ? 0 : 4294967295) }) as unknown as Rng;
const slip = (answer: string) => `${answer}1`;
const write = (p: typeof EASY, strategy: PaperStrategy, rng: Rng) =>
  writePaperTrace(solutionFor(p.family, p.problem)!, p, strategy, rng, slip, run);

describe('the paper-style teacher', () => {
  it('draws every strategy, none for most traces', () => {
    const counts = new Map<string, number>();
    for (let seed = 0; seed < 2000; seed++) {
      const s = drawStrategy(new Rng(seed));
      counts.set(s, (counts.get(s) ?? 0) + 1);
    }
    expect([...counts.keys()].sort()).toEqual([...PAPER_STRATEGIES].sort());
    for (const n of counts.values()) expect(n / 2000).toBeGreaterThan(0.1);
    for (const n of counts.values()) expect(n / 2000).toBeLessThan(0.3);
  });

  it('by hand, no code: mostly right on level 1 and mostly wrong on level 4', async () => {
    const rightShare = async (p: typeof EASY) => {
      let right = 0;
      for (let seed = 0; seed < 200; seed++) {
        const trace = await write(p, 'hand', new Rng(seed));
        expect(codeBlocks(trace.response)).toEqual([]);
        if (gradeModelAnswer(trace.response, p.answer).correct) right++;
      }
      return right / 200;
    };
    expect(await rightShare(EASY)).toBeGreaterThan(0.85);
    expect(await rightShare({ ...EASY, level: 4 })).toBeLessThan(0.4);
  });

  it('a wrong hand result is caught by the check block, and the direct computation gives the answer', async () => {
    const trace = await write(EASY, 'hand-check', always(1));
    const blocks = codeBlocks(trace.response);
    expect(blocks.map((b) => b.output)).toEqual(['False', '465']);
    expect(blocks.map((b) => classifyCode(b.code))).toEqual(['verification', 'calculation']);
    expect(trace.response).toContain('4651');
    expect(await verifyTrace(trace.response, EASY.answer, sandbox)).toEqual({ ok: true, blocks: 2 });
    // A right hand result: one check, which passes.
    const checked = await write(EASY, 'hand-check', always(0));
    expect(codeBlocks(checked.response).map((b) => b.output)).toEqual(['True']);
  });

  it('a search times out on level 4; the trace either recovers with the direct computation or guesses by hand', async () => {
    const recovered = await write(HARD_PRIMES, 'brute-force', always(0));
    const blocks = codeBlocks(recovered.response);
    expect(blocks).toHaveLength(2);
    expect(blocks[0]!.output).toMatch(/^TimeoutError/);
    expect(classifyCode(blocks[0]!.code)).toBe('enumeration');
    expect(blocks[1]!.output).toBe('8713');
    expect(recovered.selfCorrection).toBe(true);
    expect(await verifyTrace(recovered.response, HARD_PRIMES.answer, sandbox)).toEqual({ ok: true, blocks: 2 });

    const gaveUp = await write(HARD_PRIMES, 'brute-force', always(1));
    expect(codeBlocks(gaveUp.response)).toHaveLength(1);
    expect(await verifyTrace(gaveUp.response, HARD_PRIMES.answer, sandbox)).toMatchObject({ ok: false, reason: 'wrong_answer' });
  }, 30_000);

  it('the built-in teacher writes the mix in code mode, seeded, with its strategy named', async () => {
    const teacher = new BuiltinTeacher(sandbox, { style: 'paper', seed: 1 });
    const problems = Array.from({ length: 12 }, (_, i) => ({
      id: `s${i}`,
      ...EASY,
      problem: `Sum of k for k=1..${20 + i}?`,
      answer: String(((20 + i) * (21 + i)) / 2),
    }));
    const traces = [];
    for (const p of problems) {
      const trace = await teacher.write(p, 'code');
      if (isFailure(trace)) throw new Error(trace.error);
      traces.push(trace);
    }
    expect(new Set(traces.map((t) => t.strategy)).size).toBeGreaterThan(2);
    const again = await new BuiltinTeacher(sandbox, { style: 'paper', seed: 1 }).write(problems[5]!, 'code');
    expect(again).toEqual(traces[5]);
    // Text mode writes the terse text traces: no code.
    const text = await teacher.write(problems[0]!, 'text');
    expect(isFailure(text) ? 'failed' : codeBlocks(text.response)).toEqual([]);
  }, 30_000);
});
