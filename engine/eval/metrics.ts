// The paper's evaluation numbers: accuracy (pass@1 averaged over k samples, and pass@k) and the
// behaviour metrics of its analysis section, overall and per family and difficulty level.
import type { CodePurpose } from './code-purpose.js';

export interface SampleFacts {
  problemId: string;
  family: string | null;
  level: number | null;
  correct: boolean;
  /** Response tokens, model and interpreter ones both. */
  responseTokens: number;
  /** Token index in the response where the first `<code>` starts; null without code. */
  firstCodeToken: number | null;
  /** Each code block written: its non-empty lines, whether it ran without error (null: not run), what it is for. */
  codeBlocks: { lines: number; ok: boolean | null; purpose: CodePurpose }[];
}

export interface AccuracyMetrics {
  problems: number;
  samples: number;
  /** Samples per problem. */
  k: number;
  /** Mean correctness over all samples: pass@1 averaged over k samples (avg@k). */
  avgAtK: number;
  /** Share of problems with at least one correct sample among its k. */
  passAtK: number;
}

export interface BehaviourMetrics {
  /** Mean response length in tokens. */
  responseLength: number;
  /** Share of responses with at least one code block. */
  codeRatio: number;
  /** Mean non-empty code lines per response with code. */
  codeLines: number | null;
  /** Share of responses with code whose last block ran without error; also among correct and among incorrect responses. */
  codePassRate: { all: number | null; correct: number | null; incorrect: number | null };
  /** Mean (token where the first code block starts) / (response length), over responses with code. */
  codeInvocationPosition: number | null;
  /** Share of responses with code in which a failing block is followed by a passing one and the answer is right (the paper's self-correction). */
  selfCorrectionRate: number | null;
  /** Among responses with a failing block, the share where a later block passes. */
  recoveryRate: number | null;
  /** Code blocks written over the whole set, and those that ran without error (the paper's "correct code"). */
  codeBlocks: number;
  passingCodeBlocks: number;
  /** Code blocks by purpose (code-purpose.ts), over the whole set. */
  codePurposes: Partial<Record<CodePurpose, number>>;
}

export interface EvalMetrics extends AccuracyMetrics, BehaviourMetrics {
  byFamily: Record<string, AccuracyMetrics>;
  byLevel: Record<string, AccuracyMetrics>;
}

const mean = (xs: number[]): number | null => (xs.length === 0 ? null : xs.reduce((a, b) => a + b, 0) / xs.length);
const share = (xs: boolean[]): number | null => mean(xs.map((x) => (x ? 1 : 0)));

export function accuracy(samples: SampleFacts[]): AccuracyMetrics {
  const byProblem = new Map<string, boolean[]>();
  for (const s of samples) {
    const group = byProblem.get(s.problemId);
    if (group) group.push(s.correct);
    else byProblem.set(s.problemId, [s.correct]);
  }
  const groups = [...byProblem.values()];
  return {
    problems: groups.length,
    samples: samples.length,
    k: groups.length === 0 ? 0 : Math.max(...groups.map((g) => g.length)),
    avgAtK: share(samples.map((s) => s.correct)) ?? 0,
    passAtK: share(groups.map((g) => g.some(Boolean))) ?? 0,
  };
}

function selfCorrects(blocks: SampleFacts['codeBlocks']): boolean {
  const firstFail = blocks.findIndex((b) => b.ok === false);
  return firstFail !== -1 && blocks.slice(firstFail + 1).some((b) => b.ok === true);
}

export function behaviour(samples: SampleFacts[]): BehaviourMetrics {
  const withCode = samples.filter((s) => s.codeBlocks.length > 0);
  const lastRan = withCode.filter((s) => s.codeBlocks.at(-1)!.ok !== null);
  const lastOk = (xs: SampleFacts[]) => share(xs.map((s) => s.codeBlocks.at(-1)!.ok === true));
  const failing = withCode.filter((s) => s.codeBlocks.some((b) => b.ok === false));
  const blocks = samples.flatMap((s) => s.codeBlocks);
  return {
    responseLength: mean(samples.map((s) => s.responseTokens)) ?? 0,
    codeRatio: share(samples.map((s) => s.codeBlocks.length > 0)) ?? 0,
    codeLines: mean(withCode.map((s) => s.codeBlocks.reduce((n, b) => n + b.lines, 0))),
    codePassRate: {
      all: lastOk(lastRan),
      correct: lastOk(lastRan.filter((s) => s.correct)),
      incorrect: lastOk(lastRan.filter((s) => !s.correct)),
    },
    codeInvocationPosition: mean(withCode.map((s) => s.firstCodeToken! / Math.max(1, s.responseTokens))),
    selfCorrectionRate: share(withCode.map((s) => s.correct && selfCorrects(s.codeBlocks))),
    recoveryRate: share(failing.map((s) => selfCorrects(s.codeBlocks))),
    codeBlocks: blocks.length,
    passingCodeBlocks: blocks.filter((b) => b.ok === true).length,
    codePurposes: countBy(blocks.map((b) => b.purpose)),
  };
}

function countBy<T extends string>(xs: T[]): Partial<Record<T, number>> {
  const counts: Partial<Record<T, number>> = {};
  for (const x of xs) counts[x] = (counts[x] ?? 0) + 1;
  return counts;
}

function groupBy(samples: SampleFacts[], key: (s: SampleFacts) => string): Record<string, AccuracyMetrics> {
  const groups = new Map<string, SampleFacts[]>();
  for (const s of samples) {
    const group = groups.get(key(s));
    if (group) group.push(s);
    else groups.set(key(s), [s]);
  }
  return Object.fromEntries([...groups.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([k, xs]) => [k, accuracy(xs)]));
}

export function evalMetrics(samples: SampleFacts[]): EvalMetrics {
  return {
    ...accuracy(samples),
    ...behaviour(samples),
    byFamily: groupBy(samples, (s) => s.family ?? 'none'),
    byLevel: groupBy(samples, (s) => (s.level === null ? 'none' : String(s.level))),
  };
}

/** Non-empty lines of a code block. */
export function codeLineCount(code: string): number {
  return code.split('\n').filter((l) => l.trim() !== '').length;
}

/**
 * McNemar's test of a paired change (the same problems answered by two models): `gained` turned
 * right, `lost` turned wrong. z is the normal approximation (b - c) / sqrt(b + c); p the exact
 * two-sided binomial probability of a split at least this uneven if both directions were equally likely.
 */
export function mcnemar(gained: number, lost: number): { z: number | null; p: number } {
  const n = gained + lost;
  if (n === 0) return { z: null, p: 1 };
  let logC = 0; // log C(n, 0)
  let tail = 0;
  for (let i = 0; i <= Math.min(gained, lost); i++) {
    if (i > 0) logC += Math.log(n - i + 1) - Math.log(i);
    tail += Math.exp(logC - n * Math.LN2);
  }
  return { z: (gained - lost) / Math.sqrt(n), p: Math.min(1, 2 * tail) };
}
