import { describe, expect, it } from 'vitest';
import {
  FAMILIES,
  LEVELS,
  MAX_ATTEMPTS_PER_SLOT,
  SynthOptionsSchema,
  explainLevels,
  solvers,
  synthesize,
  type Family,
  type SyntheticProblem,
} from '../domain/synth/index.js';

const all = (opts: Parameters<typeof synthesize>[0]): SyntheticProblem[] => [...synthesize(opts)];

// ---------------------------------------------------------------------------
// Independent oracle: parse the numbers back out of the problem text and
// recompute the answer with deliberately naive methods (no shared code with
// the generator).
// ---------------------------------------------------------------------------

function evalArith(expr: string): bigint {
  const tokens = expr.match(/\d+|[+\-*]/g) ?? [];
  expect(tokens.join('')).toBe(expr);
  let total = 0n;
  let sign = 1n;
  let term = 1n;
  let expectNumber = true;
  for (const t of tokens) {
    if (expectNumber) {
      term *= BigInt(t);
      expectNumber = false;
    } else if (t === '*') {
      expectNumber = true;
    } else {
      total += sign * term;
      sign = t === '-' ? -1n : 1n;
      term = 1n;
      expectNumber = true;
    }
  }
  return total + sign * term;
}

function factorize(n: number): Map<number, number> {
  const f = new Map<number, number>();
  for (let d = 2; d * d <= n; d++) {
    while (n % d === 0) {
      f.set(d, (f.get(d) ?? 0) + 1);
      n /= d;
    }
  }
  if (n > 1) f.set(n, (f.get(n) ?? 0) + 1);
  return f;
}

function gcdLcmByFactoring(op: 'gcd' | 'lcm', xs: number[]): bigint {
  const facts = xs.map(factorize);
  const primes = new Set(facts.flatMap((f) => [...f.keys()]));
  let out = 1n;
  for (const p of primes) {
    const exps = facts.map((f) => f.get(p) ?? 0);
    const e = op === 'gcd' ? Math.min(...exps) : Math.max(...exps);
    for (let i = 0; i < e; i++) out *= BigInt(p);
  }
  return out;
}

let naivePrimeFlags: boolean[] | undefined;
function isPrimeNaive(k: number): boolean {
  if (k < 2) return false;
  for (let d = 2; d * d <= k; d++) if (k % d === 0) return false;
  return true;
}
function primesBelowNaive(n: number): number {
  naivePrimeFlags ??= Array.from({ length: 100_001 }, (_, k) => isPrimeNaive(k));
  let c = 0;
  for (let k = 0; k < n; k++) if (naivePrimeFlags[k]) c++;
  return c;
}

const pascal: bigint[][] = [[1n]];
function pascalC(n: number, k: number): bigint {
  while (pascal.length <= n) {
    const prev = pascal[pascal.length - 1]!;
    pascal.push(prev.map((v, i) => v + (prev[i - 1] ?? 0n)).concat([1n]));
  }
  return pascal[n]![k]!;
}

function digitSumByDivision(x: bigint): bigint {
  let s = 0n;
  while (x > 0n) {
    s += x % 10n;
    x /= 10n;
  }
  return s;
}

/** Recompute [family, answer] from the problem text alone. */
function oracle(text: string): [Family, string] {
  let m: RegExpMatchArray | null;
  if ((m = text.match(/^Compute C\((\d+),(\d+)\)\.$/))) return ['binomial', String(pascalC(Number(m[1]), Number(m[2])))];
  if ((m = text.match(/^Compute ([\d+\-*]+)\.$/))) return ['arith_chain', String(evalArith(m[1]!))];
  if ((m = text.match(/^Find (\d+)(?:\^(\d+))? mod (\d+)\.$/))) {
    const a = BigInt(m[1]!);
    const e = Number(m[2] ?? '1');
    const mod = BigInt(m[3]!);
    let r = 1n;
    for (let i = 0; i < e; i++) r = (r * a) % mod;
    return ['mod_pow', String(r % mod)];
  }
  if ((m = text.match(/^Digit sum of (\d+)\^(\d+)\?$/))) {
    let v = 1n;
    for (let i = 0; i < Number(m[2]); i++) v *= BigInt(m[1]!);
    return ['digit_sum_pow', String(digitSumByDivision(v))];
  }
  if ((m = text.match(/^Find (gcd|lcm)\(([\d,]+)\)\.$/))) {
    const xs = m[2]!.split(',').map(Number);
    return ['gcd_lcm', String(gcdLcmByFactoring(m[1] as 'gcd' | 'lcm', xs))];
  }
  if ((m = text.match(/^Number of divisors of (\d+)\?$/))) {
    const n = Number(m[1]);
    let c = 0;
    for (let d = 1; d * d <= n; d++) if (n % d === 0) c += d * d === n ? 1 : 2;
    return ['divisor_count', String(c)];
  }
  if ((m = text.match(/^Number of primes below (\d+)\?$/))) return ['prime_count', String(primesBelowNaive(Number(m[1])))];
  if ((m = text.match(/^Sum of (\S+) for k=(\d+)\.\.(\d+)\?$/))) {
    const term = m[1]!;
    let f: (k: bigint) => bigint;
    let t: RegExpMatchArray | null;
    if ((t = term.match(/^(\d*)k(?:\+(\d+))?$/))) {
      const a = BigInt(t[1] || '1');
      const b = BigInt(t[2] ?? '0');
      f = (k) => a * k + b;
    } else if ((t = term.match(/^k\^(\d)$/))) {
      const p = Number(t[1]);
      f = (k) => {
        let v = 1n;
        for (let i = 0; i < p; i++) v *= k;
        return v;
      };
    } else if ((t = term.match(/^(\d+)\^k$/))) {
      const r = BigInt(t[1]!);
      f = (k) => {
        let v = 1n;
        for (let i = 0n; i < k; i++) v *= r;
        return v;
      };
    } else throw new Error(`unparsed term in ${text}`);
    let s = 0n;
    for (let k = BigInt(m[2]!); k <= BigInt(m[3]!); k++) s += f(k);
    return ['sequence_sum', String(s)];
  }
  if ((m = text.match(/^Write (\d+) in base (\d)\.$/))) {
    let n = Number(m[1]);
    const b = Number(m[2]);
    let digits = '';
    do {
      digits = String(n % b) + digits;
      n = Math.floor(n / b);
    } while (n > 0);
    return ['base_convert', digits];
  }
  throw new Error(`oracle cannot parse: ${text}`);
}

// ---------------------------------------------------------------------------

describe('synthesize', () => {
  const big = all({ count: 5000, seed: 42 });

  it('is deterministic for a seed and differs across seeds', () => {
    const again = all({ count: 5000, seed: 42 });
    expect(again).toEqual(big);
    const other = all({ count: 5000, seed: 43 });
    expect(other.map((p) => p.problem)).not.toEqual(big.map((p) => p.problem));
    const firstOther = new Set(other.slice(0, 200).map((p) => p.problem));
    expect(big.slice(0, 200).filter((p) => firstOther.has(p.problem)).length).toBeLessThan(100);
  });

  it('yields the requested count with no duplicate texts or ids', () => {
    expect(big).toHaveLength(5000);
    expect(new Set(big.map((p) => p.problem)).size).toBe(big.length);
    expect(new Set(big.map((p) => p.id)).size).toBe(big.length);
    for (const p of big) {
      expect(p.id).toMatch(new RegExp(`^${p.family}-[0-9a-f]{14}$`));
    }
  });

  it('covers every family × level and stays balanced', () => {
    const counts = new Map<string, number>();
    for (const p of big) counts.set(`${p.family}/${p.level}`, (counts.get(`${p.family}/${p.level}`) ?? 0) + 1);
    for (const f of FAMILIES) for (const l of LEVELS) expect(counts.get(`${f}/${l}`), `${f}/${l}`).toBeGreaterThan(0);
    // Spaces that are not exhausted get (almost) equal shares: 5000 / 36 ≈ 139.
    const hard = all({ count: 1000, seed: 5, levels: [3, 4] });
    const hc = new Map<string, number>();
    for (const p of hard) hc.set(`${p.family}/${p.level}`, (hc.get(`${p.family}/${p.level}`) ?? 0) + 1);
    expect(hc.size).toBe(FAMILIES.length * 2);
    expect(Math.max(...hc.values()) - Math.min(...hc.values())).toBeLessThanOrEqual(1);
  });

  it('respects family and level filters', () => {
    const some = all({ count: 300, seed: 1, families: ['mod_pow', 'binomial'], levels: [4] });
    expect(some).toHaveLength(300);
    expect(new Set(some.map((p) => p.family))).toEqual(new Set(['mod_pow', 'binomial']));
    expect(some.every((p) => p.level === 4)).toBe(true);
  });

  it('assigns splits as a pure function of the text, with roughly the right fraction', () => {
    const testShare = big.filter((p) => p.split === 'test').length / big.length;
    expect(testShare).toBeGreaterThan(0.16);
    expect(testShare).toBeLessThan(0.24);
    const trainTexts = new Set(big.filter((p) => p.split === 'train').map((p) => p.problem));
    expect(big.filter((p) => p.split === 'test').some((p) => trainTexts.has(p.problem))).toBe(false);

    // Across seeds (and family/level subsets) the same text keeps its split and id.
    const byText = new Map(big.map((p) => [p.problem, p]));
    let shared = 0;
    for (const seed of [7, 8, 9]) {
      for (const p of synthesize({ count: 3000, seed, levels: [1, 2] })) {
        const prev = byText.get(p.problem);
        if (!prev) continue;
        shared++;
        expect(p.split).toBe(prev.split);
        expect(p.id).toBe(prev.id);
        expect(p.answer).toBe(prev.answer);
      }
    }
    expect(shared).toBeGreaterThan(100);

    const none = all({ count: 500, seed: 3, testFraction: 0 });
    expect(none.every((p) => p.split === 'train')).toBe(true);
    const half = all({ count: 2000, seed: 3, testFraction: 0.5 });
    const halfShare = half.filter((p) => p.split === 'test').length / half.length;
    expect(halfShare).toBeGreaterThan(0.44);
    expect(halfShare).toBeLessThan(0.56);
  });

  it('keeps problems short and answers canonical', () => {
    for (const p of big) {
      expect(p.problem.length, p.problem).toBeLessThanOrEqual(48);
      expect(p.answer, p.problem).toMatch(/^(0|[1-9]\d*)$/);
    }
  });

  it('stops (without looping forever) when a small problem space is exhausted', () => {
    // prime_count level 1 is "primes below n" for n in 3..30: exactly 28 texts.
    const tiny = all({ count: 1000, seed: 11, families: ['prime_count'], levels: [1] });
    expect(tiny).toHaveLength(28);
    expect(new Set(tiny.map((p) => p.problem)).size).toBe(28);
    // Exhausted combinations drop out; the others fill the requested count.
    const mixed = all({ count: 500, seed: 11, families: ['prime_count', 'mod_pow'], levels: [1] });
    expect(mixed).toHaveLength(500);
    expect(mixed.filter((p) => p.family === 'prime_count')).toHaveLength(28);
    expect(MAX_ATTEMPTS_PER_SLOT).toBeGreaterThan(0);
  });

  it('validates options and applies defaults', () => {
    const o = SynthOptionsSchema.parse({ count: 3, seed: 0 });
    expect(o.families).toEqual([...FAMILIES]);
    expect(o.levels).toEqual([1, 2, 3, 4]);
    expect(o.testFraction).toBe(0.2);
    expect(() => all({ count: 0, seed: 1 })).toThrow();
    expect(() => all({ count: 5, seed: 1, levels: [5] })).toThrow();
    expect(() => all({ count: 5, seed: 1, families: [] as unknown as ['mod_pow'] })).toThrow();
    expect(() => all({ count: 5, seed: 1, testFraction: 0.95 })).toThrow();
  });
});

describe('answers', () => {
  it('match an independent recomputation from the problem text', () => {
    // ~100 per family × level (small level-1 spaces run dry; the rest fill in), all re-derived by the oracle.
    const sample = all({ count: 3600, seed: 2024 });
    const seen = new Set<string>();
    for (const p of sample) {
      const [family, answer] = oracle(p.problem);
      expect(family, p.problem).toBe(p.family);
      expect(p.answer, p.problem).toBe(answer);
      seen.add(`${p.family}/${p.level}`);
    }
    expect(seen.size).toBe(FAMILIES.length * LEVELS.length);
  });

  it('the oracle itself agrees with hand-checked values', () => {
    const known: Array<[string, string]> = [
      ['Compute 4821*397+1150.', '1915087'],
      ['Compute 12*3-40+5*5.', '21'],
      ['Find 3^200 mod 1009.', '985'],
      ['Find 7 mod 3.', '1'],
      ['Digit sum of 2^100?', '115'],
      ['Digit sum of 7^150?', '595'],
      ['Find gcd(12,18).', '6'],
      ['Find lcm(4,6,10).', '60'],
      ['Number of divisors of 12?', '6'],
      ['Number of divisors of 360?', '24'],
      ['Number of primes below 100?', '25'],
      ['Number of primes below 50000?', '5133'],
      ['Compute C(10,3).', '120'],
      ['Compute C(52,5).', '2598960'],
      ['Sum of k for k=1..100?', '5050'],
      ['Sum of k^2 for k=1..10?', '385'],
      ['Sum of 2^k for k=0..10?', '2047'],
      ['Sum of 3k+2 for k=1..4?', '38'],
      ['Write 255 in base 2.', '11111111'],
      ['Write 64 in base 8.', '100'],
    ];
    for (const [text, answer] of known) expect(oracle(text)[1], text).toBe(answer);
  });

  it('exported solvers give hand-checked values', () => {
    expect(solvers.gcd(12n, 18n)).toBe(6n);
    expect(solvers.gcd(720720n, 378000n, 5040n * 7n)).toBe(5040n);
    expect(solvers.lcm(4n, 6n, 10n)).toBe(60n);
    expect(solvers.binomial(10n, 3n)).toBe(120n);
    expect(solvers.binomial(52n, 5n)).toBe(2598960n);
    expect(solvers.primeCountBelow(100)).toBe(25);
    expect(solvers.primeCountBelow(2)).toBe(0);
    expect(solvers.primeCountBelow(3)).toBe(1);
    expect(solvers.primeCountBelow(50_000)).toBe(5133);
    expect(solvers.divisorCount(12)).toBe(6);
    expect(solvers.divisorCount(1)).toBe(1);
    expect(solvers.divisorCount(999_999_937)).toBe(2); // largest prime below 10^9
    expect(solvers.divisorCount(735_134_400)).toBe(1344); // highly composite
    expect(solvers.modPow(3n, 200n, 1009n)).toBe(985n);
    expect(solvers.digitSum(7n ** 150n)).toBe(595);
    expect(solvers.sequenceSum({ kind: 'power', p: 2 }, 1, 10)).toBe(385n);
    expect(solvers.sequenceSum({ kind: 'power', p: 3 }, 1, 10)).toBe(3025n);
    expect(solvers.sequenceSum({ kind: 'geometric', r: 2 }, 0, 10)).toBe(2047n);
    expect(solvers.sequenceSum({ kind: 'linear', a: 3, b: 2 }, 1, 4)).toBe(38n);
    expect(solvers.toBase(255, 2)).toBe('11111111');
  });
});

describe('explainLevels', () => {
  it('describes four levels for every family', () => {
    const ex = explainLevels();
    expect(Object.keys(ex).sort()).toEqual([...FAMILIES].sort());
    for (const f of FAMILIES) {
      expect(ex[f]).toHaveLength(4);
      for (const s of ex[f]) expect(s.length).toBeGreaterThan(0);
    }
  });
});
