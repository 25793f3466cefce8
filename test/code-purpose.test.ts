// The code-purpose classifier (engine/eval/code-purpose.ts) against hand-labelled blocks, the
// features its rules read, and the purpose counts the evaluation metrics report.
import { describe, expect, it } from 'vitest';
import { classifyCode, CODE_PURPOSES, codeFeatures } from '../engine/eval/code-purpose.js';
import { evalMetrics, type SampleFacts } from '../engine/eval/metrics.js';
import { LABELLED_CODE } from './fixtures/code-purposes.js';
import { SMOLLM2_CODE } from './fixtures/code-purposes-smollm2.js';

describe('code purposes', () => {
  it('agree with every hand label, and the labelled set covers every purpose', () => {
    const disagreements = LABELLED_CODE.map((c) => ({ ...c, got: classifyCode(c.code) })).filter((c) => c.got !== c.label);
    expect(disagreements).toEqual([]);
    expect(new Set(LABELLED_CODE.map((c) => c.label))).toEqual(new Set(CODE_PURPOSES));
  });

  it("agree with the hand labels of SmolLM2's own code on at least three blocks in four, the blind sample included, and on every block that does not parse", () => {
    const agreement = (sample: string) => {
      const blocks = SMOLLM2_CODE.filter((b) => b.sample === sample);
      return blocks.filter((b) => classifyCode(b.code) === b.label).length / blocks.length;
    };
    // Measured when the fixture was made: A 29/31, B 27/31, C (blind) 24/31.
    for (const sample of ['A', 'B', 'C']) expect(agreement(sample), `sample ${sample}`).toBeGreaterThanOrEqual(0.75);
    for (const b of SMOLLM2_CODE) expect(classifyCode(b.code) === 'unparsed', b.code).toBe(b.label === 'unparsed');
  });

  it('read modules, callees, search loops and printed checks from the syntax tree, not from strings or comments', () => {
    const f = codeFeatures(
      [
        'import numpy.linalg as la, math',
        'from sympy.abc import x',
        '# for i in range(3): if i: solve(i)',
        's = "while True: assert 1 == 1"',
        'for i in range(3):',
        '    if i:',
        '        print(la.norm([i, 4]), i >= 1)',
        'for j in range(2):',
        '    print(j)',
        'print([k for k in range(9) if k % 2])',
        'print(sum(1 for d in range(9) if d))',
      ].join('\n'),
    );
    expect([...f.modules].sort()).toEqual(['math', 'numpy', 'sympy']);
    expect(f.callees).toEqual(['range', 'print', 'la.norm', 'range', 'print', 'print', 'range', 'print', 'sum', 'range']);
    // The list comprehension and the generator passed to sum() both filter.
    expect(f).toMatchObject({ parsed: true, searchLoops: 1, whileLoops: 0, filteredComprehensions: 2, asserts: 0, printedChecks: 1 });
    expect(codeFeatures('print((1 + 2)').parsed).toBe(false);
    // Names imported from sympy, and no others: numpy's alias is not one.
    const mixed = codeFeatures('import sympy as sp\nimport numpy as np\nfrom sympy import Symbol\nprint(np.array([1, 2]))');
    expect([...mixed.sympyNames].sort()).toEqual(['Symbol', 'sp', 'sympy']);
    expect(classifyCode('import sympy as sp\nimport numpy as np\nprint(np.array([1, 2]).sum())')).toBe('calculation');
  });

  it('the metrics count blocks by purpose over the whole set, the blocks that ran, and self-corrections that end right', () => {
    const sample = (blocks: SampleFacts['codeBlocks'], correct = true): SampleFacts => ({
      problemId: 'p',
      family: null,
      level: null,
      correct,
      responseTokens: 10,
      firstCodeToken: blocks.length ? 0 : null,
      codeBlocks: blocks,
    });
    const m = evalMetrics([
      sample([
        { lines: 2, ok: false, purpose: 'enumeration' },
        { lines: 1, ok: true, purpose: 'verification' },
      ]),
      sample([{ lines: 3, ok: true, purpose: 'enumeration' }]),
      sample([]),
      // Fails, then runs, but the answer is wrong: a recovery, not a self-correction.
      sample(
        [
          { lines: 1, ok: false, purpose: 'calculation' },
          { lines: 1, ok: true, purpose: 'calculation' },
        ],
        false,
      ),
    ]);
    expect(m.codePurposes).toEqual({ enumeration: 2, verification: 1, calculation: 2 });
    expect([m.codeBlocks, m.passingCodeBlocks]).toEqual([5, 3]);
    // Of the 3 responses with code, one self-corrects to a right answer; 2 of the 2 with a failing block recover.
    expect(m.selfCorrectionRate).toBeCloseTo(1 / 3, 12);
    expect(m.recoveryRate).toBe(1);
  });
});
