import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { synthesizeDataset } from '../datasets/derive.js';
import { importProblems } from '../datasets/problems-io.js';
import { AIME24_FILE } from '../datasets/real-data.js';
import { briefStore, withStore } from '../datasets/store.js';
import { readTraces, resolveTraceDataset } from '../datasets/traces.js';
import { BuiltinTeacher, type BuiltinTeacherOptions } from '../engine/coldstart/builtin-teacher.js';
import { PAPER_STRATEGIES } from '../engine/coldstart/paper-style.js';
import { coldStart } from '../stages/coldstart.js';
import { isFailure, type TeacherProblem, type TeacherTrace } from '../engine/coldstart/teacher.js';
import { Sandbox } from '../engine/sandbox/index.js';
import { codeBlocks } from '../engine/trace/format.js';
import { verifyTrace } from '../engine/trace/verify.js';
import { retool, tempHome } from './helpers/cli.js';

const sandbox = new Sandbox({ poolSize: 2 });
afterAll(() => sandbox.close());

// Hand-checked problems: 4821*397+1150 = 1913937+1150 = 1915087; gcd(84,126) = 42; C(10,3) = 120.
const ARITH: TeacherProblem = {
  id: 'arith_chain-a',
  problem: 'Compute 4821*397+1150.',
  answer: '1915087',
  family: 'arith_chain',
  level: 4,
};
const GCD: TeacherProblem = { id: 'gcd_lcm-a', problem: 'Find gcd(84,126).', answer: '42', family: 'gcd_lcm', level: 2 };
const BINOM: TeacherProblem = { id: 'binomial-a', problem: 'Compute C(10,3).', answer: '120', family: 'binomial', level: 2 };

async function write(problem: TeacherProblem, mode: 'code' | 'text', opts: BuiltinTeacherOptions = {}): Promise<TeacherTrace> {
  const trace = await new BuiltinTeacher(sandbox, opts).write(problem, mode);
  if (isFailure(trace)) throw new Error(trace.error);
  return trace;
}

describe('built-in teacher and two-stage verification', () => {
  it('a clean code trace runs its code for real and passes both stages', async () => {
    const trace = await write(ARITH, 'code', {
      rates: { malformedTags: 0, syntaxError: 0, wrongCode: 0, wrongAnswer: 0, selfCorrection: 0 },
    });
    expect(codeBlocks(trace.response)).toEqual([{ code: 'print(4821*397+1150)', output: '1915087' }]);
    expect(trace.response.endsWith('<answer>\\boxed{1915087}</answer>')).toBe(true);
    expect(await verifyTrace(trace.response, ARITH.answer, sandbox)).toEqual({ ok: true, blocks: 1 });
  });

  it.each([
    ['malformed_tags', 'format', ['nested_tags', 'unbalanced_code', 'unbalanced_interpreter', 'no_answer']],
    ['syntax_error', 'format', ['code_syntax']],
    ['wrong_code', 'answer', ['wrong_answer']],
    ['wrong_answer', 'answer', ['wrong_answer']],
  ] as const)('a seeded %s is rejected at the %s stage for the right reason', async (defect, stage, reasons) => {
    for (const problem of [ARITH, BINOM]) {
      const trace = await write(problem, 'code', { force: defect });
      expect(trace.seededDefect).toBe(defect);
      const verdict = await verifyTrace(trace.response, problem.answer, sandbox);
      expect(verdict.ok).toBe(false);
      if (verdict.ok) continue;
      expect(verdict.stage).toBe(stage);
      expect(reasons as readonly string[]).toContain(verdict.reason);
    }
  });

  it('wrong code is shown with its real (wrong) output, never the right one', async () => {
    const trace = await write(ARITH, 'code', { force: 'wrong_code' });
    const [block] = codeBlocks(trace.response);
    expect(block!.code).not.toBe('print(4821*397+1150)');
    // The recorded output is what Python prints for the wrong operand.
    const rerun = await sandbox.run({ code: block!.code });
    expect(block!.output).toBe(rerun.stdout.trim());
    expect(block!.output).not.toBe('1915087');
  });

  it('a self-correction trace (failing block, then a fixed one) is kept', async () => {
    for (const problem of [GCD, ARITH]) {
      const trace = await write(problem, 'code', { force: 'self_correction' });
      expect(trace.selfCorrection).toBe(true);
      const blocks = codeBlocks(trace.response);
      expect(blocks).toHaveLength(2);
      expect(blocks[0]!.output).toMatch(/^NameError: name '\w+' is not defined$/);
      expect(blocks[1]!.output).toBe(problem.answer);
      expect(await verifyTrace(trace.response, problem.answer, sandbox)).toEqual({ ok: true, blocks: 2 });
    }
  });

  it('text traces show the work, hold no code, and are verified by answer', async () => {
    const trace = await write(ARITH, 'text', {
      rates: { malformedTags: 0, syntaxError: 0, wrongCode: 0, wrongAnswer: 0, selfCorrection: 0 },
    });
    expect(trace.response).toContain('4821*397 = 4821*300+4821*90+4821*7 = 1446300+433890+33747 = 1913937');
    expect(trace.response).toContain('1913937+1150 = 1915087');
    expect(await verifyTrace(trace.response, ARITH.answer, sandbox, { mode: 'text' })).toEqual({ ok: true, blocks: 0 });
    const wrong = await write(ARITH, 'text', { force: 'wrong_answer' });
    expect(await verifyTrace(wrong.response, ARITH.answer, sandbox, { mode: 'text' })).toMatchObject({ ok: false, reason: 'wrong_answer' });
    const code = await write(ARITH, 'code', {
      rates: { malformedTags: 0, syntaxError: 0, wrongCode: 0, wrongAnswer: 0, selfCorrection: 0 },
    });
    expect(await verifyTrace(code.response, ARITH.answer, sandbox, { mode: 'text' })).toMatchObject({
      ok: false,
      reason: 'code_in_text_trace',
    });
  });

  it('the explained style: a plan in words, the code, what it printed, and the answer block the ReTool prompt asks for; both stages pass', async () => {
    const clean = { malformedTags: 0, syntaxError: 0, wrongCode: 0, wrongAnswer: 0, selfCorrection: 0 };
    const code = await write(ARITH, 'code', { rates: clean, style: 'explained' });
    expect(code.response).toBe(
      'We need the value of 4821*397+1150. I will compute it exactly with Python.\n' +
        '<code>\n```python\nprint(4821*397+1150)\n```\n</code>\n<interpreter>\n1915087\n</interpreter>\n' +
        'The code printed 1915087, so the answer is 1915087.\n<answer>\n\\boxed{1915087}\n</answer>',
    );
    expect(await verifyTrace(code.response, ARITH.answer, sandbox)).toEqual({ ok: true, blocks: 1 });
    const text = await write(GCD, 'text', { rates: clean, style: 'explained' });
    expect(text.response).toMatch(/^We need the greatest common divisor of 84, 126\. I will work it out by hand\.\n126 = 1\*84\+42/);
    expect(text.response.endsWith('So the answer is 42.\n<answer>\n\\boxed{42}\n</answer>')).toBe(true);
    expect(await verifyTrace(text.response, GCD.answer, sandbox)).toMatchObject({ ok: true });
    const fixed = await write(GCD, 'code', { force: 'self_correction', style: 'explained' });
    expect(fixed.response).toContain('</interpreter>\nThe code failed, so I fix it and run it again.\n<code>');
    expect(await verifyTrace(fixed.response, GCD.answer, sandbox)).toEqual({ ok: true, blocks: 2 });
  });

  it('the same seed gives the same traces; another seed spoils other problems', async () => {
    const problems = Array.from({ length: 40 }, (_, i) => ({
      ...ARITH,
      id: `arith_chain-${i}`,
      problem: `Compute ${100 + i}*7+3.`,
      answer: String((100 + i) * 7 + 3),
    }));
    const run = (seed: number) => Promise.all(problems.map((p) => new BuiltinTeacher(sandbox, { seed }).write(p, 'code')));
    const [a, b, c] = [await run(1), await run(1), await run(2)];
    expect(a).toEqual(b);
    expect(a.map((t) => (t as TeacherTrace).seededDefect)).not.toEqual(c.map((t) => (t as TeacherTrace).seededDefect));
  });
});

describe('the cold-start stage', () => {
  const home = tempHome();
  beforeAll(async () => {
    await withStore(home.dir, async (store) => {
      await synthesizeDataset(store, { name: 'world', count: 300, seed: 3 });
      await importProblems(store, { file: AIME24_FILE, name: 'aime', problemField: 'input', answerField: 'output', split: 'train' });
    });
  });
  afterAll(() => home.cleanup());

  it('keeps rejected traces with their reason and stores the counts per reason', async () => {
    const summary = await coldStart(briefStore(home.dir), sandbox, {
      dataset: 'world',
      out: 'world-code',
      seed: 5,
      rates: { malformedTags: 0.1, syntaxError: 0.1, wrongCode: 0.1, wrongAnswer: 0.1, selfCorrection: 0.1 },
    });
    expect(summary.source).toBe('world@1:train');
    expect(summary.kept + summary.rejected).toBe(summary.problems);
    expect(summary.rejected).toBeGreaterThan(0);
    // Every deliberately malformed, unparsable or mis-answered trace is caught.
    for (const defect of ['malformed_tags', 'syntax_error', 'wrong_answer'] as const) {
      expect(summary.seeded[defect]!.seeded).toBeGreaterThan(0);
      expect(summary.seeded[defect]!.rejected).toBe(summary.seeded[defect]!.seeded);
    }
    await withStore(home.dir, async (store) => {
      const dataset = await resolveTraceDataset(store, 'world-code');
      expect(dataset.parents).toEqual([{ name: 'world', version: 1, relation: 'cold-start' }]);
      expect(dataset.params).toMatchObject({ kept: summary.kept, rejectedByReason: summary.rejectedByReason });
      const all = await readTraces(store, dataset, { all: true });
      const kept = await readTraces(store, dataset);
      expect(all).toHaveLength(summary.problems);
      expect(kept).toHaveLength(summary.kept);
      const counted: Record<string, number> = {};
      for (const t of all.filter((x) => !x.verified)) counted[t.rejectReason!] = (counted[t.rejectReason!] ?? 0) + 1;
      expect(counted).toEqual(summary.rejectedByReason);
      // Only train problems: the test split stays held out.
      const train = await store.query<{ id: string }>(
        "SELECT p.id FROM problems p JOIN datasets d ON d.id = p.dataset_id WHERE d.name = 'world' AND split = 'train'",
      );
      expect(new Set(all.map((t) => t.problemId))).toEqual(new Set(train.map((r) => r.id)));
    });
  });

  it('the paper style counts its traces per strategy, written and kept', async () => {
    const summary = await coldStart(briefStore(home.dir), sandbox, {
      dataset: 'world',
      out: 'world-paper',
      style: 'paper',
      limit: 40,
      seed: 2,
    });
    const counts = Object.values(summary.strategies);
    expect(Object.keys(summary.strategies).every((s) => (PAPER_STRATEGIES as readonly string[]).includes(s))).toBe(true);
    expect(counts.reduce((a, c) => a + c.written, 0)).toBe(summary.problems);
    expect(counts.reduce((a, c) => a + c.kept, 0)).toBe(summary.kept);
    expect(Object.keys(summary.strategies).length).toBeGreaterThan(2);
  });

  it('leaves the store free while the teacher writes, so a parallel arm can use it', async () => {
    const builtin = new BuiltinTeacher(sandbox, { seed: 1 });
    const others: number[] = [];
    let asked = false;
    const teacher = {
      name: builtin.name,
      async write(problem: TeacherProblem, mode: 'code' | 'text') {
        // Another process writes to the store (as the other arm's SFT does) mid cold start.
        if (!asked) {
          asked = true;
          others.push((await retool(['data', 'synth', '--name', 'other', '--count', '40', '--seed', '1'], { home: home.dir })).exitCode!);
        }
        return builtin.write(problem, mode);
      },
    };
    const summary = await coldStart(briefStore(home.dir), sandbox, { dataset: 'world', out: 'world-beside', limit: 5 }, undefined, teacher);
    expect(others).toEqual([0]);
    expect(summary.problems).toBe(5);
  }, 60_000);

  it('says which problems the built-in teacher cannot write, instead of inventing traces', async () => {
    const summary = await coldStart(briefStore(home.dir), sandbox, { dataset: 'aime', out: 'aime-code', limit: 3 });
    expect(summary).toMatchObject({ problems: 3, kept: 0, teacherFailures: 3, rejectedByReason: { teacher_failed: 3 } });
  });
});
