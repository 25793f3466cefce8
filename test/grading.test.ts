import { describe, expect, it } from 'vitest';

import { answersEquivalent, extractBoxed, gradeResponse, gradeVerdict, GradeVerdictSchema, normalizeAnswer } from '../domain/grading.js';

/** [a, b, expected]: every row is checked as (a, b) and as (b, a). Expectations are decided by the mathematics. */
const CASES: Array<[string, string, boolean]> = [
  // Integers, signs, separators, leading zeros
  ['42', '42', true],
  ['007', '7', true],
  ['+5', '5', true],
  ['\u22123', '-3', true], // unicode minus
  ['-0', '0', true],
  ['1,000', '1000', true],
  ['1{,}000', '1000', true],
  ['1\\,000', '1000', true],
  ['1\\!000', '1000', true],
  ['1,000,000', '10^6', true],
  ['1,000', '1', false],
  ['1', '-1', false],
  ['10', '100', false],
  ['-0.5', '0.5', false],
  ['', '0', false],
  ['', '', false], // an empty answer is never correct

  // Big integers (beyond 2^53, exact)
  ['12345678901234567890123', '12345678901234567890123', true],
  ['9007199254740993', '9007199254740993', true],
  ['9007199254740993', '9007199254740992', false],
  ['12345678901234567890', '12345678901234567891', false],
  ['10^{18}', '1000000000000000000', true],
  ['2^{10}', '1024', true],
  ['2^{10}', '2^{11}', false],

  // Fractions and decimals (exact rationals)
  ['\\frac{1}{2}', '1/2', true],
  ['\\dfrac{3}{4}', '0.75', true],
  ['\\tfrac12', '0.5', true],
  ['\\frac12', '\\frac{1}{2}', true],
  ['\\frac{2}{4}', '\\frac{1}{2}', true],
  ['-\\frac{1}{2}', '\\frac{-1}{2}', true],
  ['\\frac{1}{-2}', '-0.5', true],
  ['-1/2', '-\\frac12', true],
  ['0.125', '1/8', true],
  ['0.50', '.5', true],
  ['5.0', '5', true],
  ['\\frac{10}{4}', '2.5', true],
  ['-\\frac{3}{2}', '-1.5', true],
  ['1.5 \\times 10^{3}', '1500', true],
  ['3 \\cdot 4', '12', true],
  ['1/2', '2', false],
  ['12', '1.2', false],
  ['0.333', '1/3', false],
  ['\\frac{1}{2}', '\\frac{2}{1}', false],
  ['-\\frac{1}{2}', '\\frac{1}{2}', false],
  ['0.5', '0.05', false],
  ['3', '\\frac{1}{3}', false],
  ['0.1', '0.10000000000000001', false],
  ['1/0', '0', false],

  // LaTeX wrappers, spacing, units, degrees, percent
  ['$5$', '5', true],
  ['$\\displaystyle \\frac{1}{2}$', '1/2', true],
  ['\\(7\\)', '7', true],
  ['\\boxed{17}', '17', true],
  ['{3}', '3', true],
  ['(3)', '3', true],
  ['5.', '5', true], // sentence-final period
  ['30^\\circ', '30', true],
  ['30^{\\circ}', '30', true],
  ['50\\%', '50', true], // answer-key convention: the percent sign is presentation
  ['5 \\text{ cm}', '5', true],
  ['12\\mbox{ units}', '12', true],
  ['7\\text{ cm}^2', '7', true],
  ['\\$5', '5', true],
  ['5', '5\\sqrt{2}', false],

  // Single-variable assignment
  ['x = 5', '5', true],
  ['n=12', '12', true],
  ['x = -\\tfrac{7}{2}', '-3.5', true],
  ['x = 5', 'x = 6', false],

  // Tuples, intervals, sets
  ['(1, 2)', '(1,2)', true],
  ['\\left( 1, 2 \\right)', '(1,2)', true],
  ['(\\frac{1}{2}, 3)', '(0.5, 3)', true],
  ['\\left(\\frac{1}{2}, -\\frac{1}{3}\\right)', '(0.5,-1/3)', true],
  ['[1, 3)', '[1,3)', true],
  ['\\left[ 1, 3 \\right)', '[1, 3)', true],
  ['(-\\infty, 3]', '(-\u221e, 3]', true],
  ['\\{1, 2\\}', '\\{2, 1\\}', true], // sets are unordered
  ['(1,2)', '(2,1)', false],
  ['(1,2)', '(1,2,3)', false],
  ['[1,3)', '[1,3]', false],
  ['(1,3)', '[1,3)', false],
  ['(1, 2)', '[1, 2]', false],
  ['\\{1,2\\}', '\\{1,3\\}', false],

  // Symbolic and text answers
  ['2\\sqrt{3}', '2 \\sqrt 3', true],
  ['\\frac{\\sqrt{3}}{2}', '\\dfrac{\\sqrt3}{2}', true],
  ['+\\infty', '\\infty', true],
  ['\\infty', '-\\infty', false],
  ['Hello   World', 'hello world', true],
  ['\\text{(B)}', 'B', true],

  // Base-converted digit strings
  ['2A3F', '2a3f', true],
  ['0A', 'a', true],
  ['1011', '01011', true],
  ['1011_2', '1011', true], // answer-key convention: the base subscript is presentation
  ['2A3F_{16}', '2a3f', true],
  ['2A3F', '2A3E', false],
  ['1011', '111', false],
];

describe('answersEquivalent', () => {
  it('has a large table of cases', () => {
    expect(CASES.length).toBeGreaterThanOrEqual(70);
  });

  it.each(CASES)('(%j, %j) -> %s', (a, b, expected) => {
    expect(answersEquivalent(a, b)).toBe(expected);
  });

  it.each(CASES)('reversed: (%j, %j) -> %s', (a, b, expected) => {
    expect(answersEquivalent(b, a)).toBe(expected);
  });
});

describe('extractBoxed', () => {
  it.each<[string, string | null]>([
    ['so \\boxed{\\frac{1}{2}}', '\\frac{1}{2}'],
    ['\\boxed{{3}}', '{3}'],
    ['first \\boxed{1}, then \\boxed{2}', '2'],
    ['\\fbox{5}', '5'],
    ['<answer>\\boxed 42</answer>', '42'],
    ['$\\boxed 5$', '5'],
    ['\\boxed{\\{1, 2\\}}', '\\{1, 2\\}'],
    ['\\boxed{ (1, 2) }', '(1, 2)'],
    ['\\boxed{}', ''],
    ['\\boxed{\\frac{1}{2}', null],
    ['\\boxed{1} and then \\boxed{2', null],
    ['the answer is 5', null],
    ['', null],
  ])('%j -> %j', (text, expected) => {
    expect(extractBoxed(text)).toBe(expected);
  });
});

describe('normalizeAnswer', () => {
  it.each<[string, string]>([
    ['\\dfrac{2}{4}', '1/2'],
    ['1,000', '1000'],
    ['007', '7'],
    ['0.125', '1/8'],
    ['\\left( 1,2 \\right)', '(1, 2)'],
    ['x = 5\\text{ cm}', '5'],
    ['{3}', '3'],
    ['  Hello   World ', 'hello world'],
  ])('%j -> %j', (raw, expected) => {
    expect(normalizeAnswer(raw)).toBe(expected);
  });
});

describe('gradeResponse', () => {
  it('grades the last boxed answer of a response', () => {
    const response = 'Code says 0.5.\n<answer>\\boxed{\\dfrac{1}{2}}</answer>';
    expect(gradeResponse(response, '0.5')).toEqual({ extracted: '\\dfrac{1}{2}', correct: true });
  });

  it('uses the last box even when an earlier one is right', () => {
    expect(gradeResponse('\\boxed{7} ... no, \\boxed{8}', '7')).toEqual({ extracted: '8', correct: false });
  });

  it('marks a response without a box incorrect', () => {
    expect(gradeResponse('The answer is 7.', '7')).toEqual({ extracted: null, correct: false });
  });
});

describe('gradeVerdict', () => {
  it('extracts the box from a whole response', () => {
    const v = gradeVerdict('<answer>\\boxed{1,000}</answer>', '1000');
    expect(GradeVerdictSchema.parse(v)).toEqual(v);
    expect(v).toEqual({
      pred: '<answer>\\boxed{1,000}</answer>',
      gold: '1000',
      extracted: '1,000',
      normalizedPred: '1000',
      normalizedGold: '1000',
      correct: true,
    });
  });

  it('treats a pred without a box as the answer itself', () => {
    const v = gradeVerdict(' 007 ', '7');
    expect(v).toMatchObject({ extracted: '007', normalizedPred: '7', normalizedGold: '7', correct: true });
  });

  it('reports an unbalanced box as no answer', () => {
    const v = gradeVerdict('\\boxed{\\frac{1}{2}', '1/2');
    expect(GradeVerdictSchema.parse(v)).toEqual(v);
    expect(v).toMatchObject({ extracted: null, normalizedPred: null, normalizedGold: '1/2', correct: false });
  });
});
