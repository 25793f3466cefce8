/**
 * Synthetic math problem families for the built-in tiny model.
 *
 * Every generator returns a SHORT plain-text problem (≤ 48 characters for all
 * families and levels; never over 64) and its exact answer as a canonical
 * string. All answer arithmetic is exact: BigInt for anything that can grow,
 * plain integers only for counts (divisor_count, prime_count) and for base
 * conversion of n < 2^31 (Number#toString(radix) is exact for safe integers).
 *
 * Phrasing, one form per family:
 *   arith_chain    Compute 4821*397+1150.
 *   mod_pow        Find 3^200 mod 1009.        (level 1: Find 47 mod 6.)
 *   digit_sum_pow  Digit sum of 7^150?
 *   gcd_lcm        Find gcd(12,18).  /  Find lcm(4,6,10).
 *   divisor_count  Number of divisors of 360?  (positive divisors)
 *   prime_count    Number of primes below 100? (primes p < n)
 *   binomial       Compute C(10,3).
 *   sequence_sum   Sum of 3k+2 for k=1..20?   (also k, k^2, k^3, r^k; bounds inclusive)
 *   base_convert   Write 255 in base 2.        (bases 2..9 only, so answers are 0-9 digit strings)
 */

import { Rng } from '../rng.js';

export const FAMILIES = [
  'arith_chain',
  'mod_pow',
  'digit_sum_pow',
  'gcd_lcm',
  'divisor_count',
  'prime_count',
  'binomial',
  'sequence_sum',
  'base_convert',
] as const;
export type Family = (typeof FAMILIES)[number];

export const LEVELS = [1, 2, 3, 4] as const;
export type Level = (typeof LEVELS)[number];

// ---------------------------------------------------------------------------
// Exact math (exported as `solvers` for reuse and for hand-checked tests).
// ---------------------------------------------------------------------------

/** Sieve limit: prime_count problems use n ≤ PRIME_LIMIT; divisor_count trial-divides by primes < PRIME_LIMIT. */
export const PRIME_LIMIT = 100_000;
let primeBelow: Int32Array | undefined; // primeBelow[i] = number of primes p < i, 0 ≤ i ≤ PRIME_LIMIT
let smallPrimes: Int32Array | undefined; // primes < PRIME_LIMIT, ascending

function sieve(): void {
  const composite = new Uint8Array(PRIME_LIMIT);
  const table = new Int32Array(PRIME_LIMIT + 1);
  const primes: number[] = [];
  for (let i = 2; i < PRIME_LIMIT; i++) {
    if (composite[i] === 0) {
      primes.push(i);
      for (let j = i * i; j < PRIME_LIMIT; j += i) composite[j] = 1;
    }
  }
  let count = 0;
  for (let i = 0; i <= PRIME_LIMIT; i++) {
    table[i] = count;
    if (i >= 2 && i < PRIME_LIMIT && composite[i] === 0) count++;
  }
  primeBelow = table;
  smallPrimes = Int32Array.from(primes);
}

/** Number of primes p with p < n, for 0 ≤ n ≤ PRIME_LIMIT (cached sieve prefix counts). */
function primeCountBelow(n: number): number {
  if (!Number.isInteger(n) || n < 0 || n > PRIME_LIMIT) throw new RangeError(`primeCountBelow: n out of range: ${n}`);
  if (!primeBelow) sieve();
  return (primeBelow as Int32Array)[n] as number;
}

/** Number of positive divisors of n, 1 ≤ n < PRIME_LIMIT^2 (trial division by cached primes). */
function divisorCount(n: number): number {
  if (!Number.isSafeInteger(n) || n < 1 || n >= PRIME_LIMIT * PRIME_LIMIT) throw new RangeError(`divisorCount: n out of range: ${n}`);
  if (!smallPrimes) sieve();
  const primes = smallPrimes as Int32Array;
  let rest = n;
  let total = 1;
  for (let i = 0; i < primes.length; i++) {
    const p = primes[i] as number;
    if (p * p > rest) break;
    if (rest % p !== 0) continue;
    let e = 0;
    while (rest % p === 0) {
      rest /= p;
      e++;
    }
    total *= e + 1;
  }
  return rest > 1 ? total * 2 : total;
}

function gcd(a: bigint, b: bigint): bigint {
  while (b !== 0n) [a, b] = [b, a % b];
  return a < 0n ? -a : a;
}

function gcdMany(xs: readonly bigint[]): bigint {
  return xs.reduce((g, x) => gcd(g, x), 0n);
}

function lcmMany(xs: readonly bigint[]): bigint {
  return xs.reduce((l, x) => (l / gcd(l, x)) * x, 1n);
}

/** base^exp mod m by square-and-multiply (m ≥ 1, exp ≥ 0). */
function modPow(base: bigint, exp: bigint, m: bigint): bigint {
  let result = 1n % m;
  let b = base % m;
  let e = exp;
  while (e > 0n) {
    if (e & 1n) result = (result * b) % m;
    b = (b * b) % m;
    e >>= 1n;
  }
  return result;
}

function digitSum(x: bigint): number {
  const s = (x < 0n ? -x : x).toString();
  let sum = 0;
  for (let i = 0; i < s.length; i++) sum += s.charCodeAt(i) - 48;
  return sum;
}

function binomial(n: bigint, k: bigint): bigint {
  if (k < 0n || k > n) return 0n;
  if (k > n - k) k = n - k;
  let r = 1n;
  for (let i = 0n; i < k; i++) r = (r * (n - i)) / (i + 1n);
  return r;
}

/** Sequence term shapes used by sequence_sum. */
export type SeqTerm =
  | { kind: 'linear'; a: number; b: number } // a*k + b
  | { kind: 'power'; p: 2 | 3 } // k^p
  | { kind: 'geometric'; r: number }; // r^k

/** Σ term(k) for k = lo..hi inclusive, closed forms in BigInt. */
function sequenceSum(term: SeqTerm, lo: number, hi: number): bigint {
  const L = BigInt(lo);
  const H = BigInt(hi);
  const n = H - L + 1n;
  if (n <= 0n) return 0n;
  switch (term.kind) {
    case 'linear':
      return (BigInt(term.a) * (L + H) * n) / 2n + BigInt(term.b) * n;
    case 'power': {
      const S = term.p === 2 ? (x: bigint) => (x * (x + 1n) * (2n * x + 1n)) / 6n : (x: bigint) => ((x * (x + 1n)) / 2n) ** 2n;
      return S(H) - S(L - 1n);
    }
    case 'geometric': {
      const r = BigInt(term.r);
      return (r ** (H + 1n) - r ** L) / (r - 1n);
    }
  }
}

function toBase(n: number, base: number): string {
  if (!Number.isSafeInteger(n) || n < 0 || base < 2 || base > 9) throw new RangeError(`toBase: bad arguments ${n}, ${base}`);
  return n.toString(base);
}

export const solvers = {
  primeCountBelow,
  divisorCount,
  gcd: (...xs: bigint[]): bigint => gcdMany(xs),
  lcm: (...xs: bigint[]): bigint => lcmMany(xs),
  modPow,
  digitSum,
  binomial,
  sequenceSum,
  toBase,
} as const;

// ---------------------------------------------------------------------------
// Family × level generators.
// ---------------------------------------------------------------------------

export interface Generated {
  problem: string;
  answer: string;
}
export interface LevelSpec {
  /** One short phrase describing the level's ranges. */
  describe: string;
  gen: (rng: Rng) => Generated;
}

// -- arith_chain --
function arith(rng: Rng, a: [number, number], b: [number, number], c: [number, number], d?: [number, number]): Generated {
  const x = rng.int(a[0], a[1]);
  const y = rng.int(b[0], b[1]);
  const z = rng.int(c[0], c[1]);
  if (d && rng.chance(1 / 3)) {
    const w = rng.int(d[0], d[1]);
    return { problem: `Compute ${x}*${y}+${z}*${w}.`, answer: String(BigInt(x) * BigInt(y) + BigInt(z) * BigInt(w)) };
  }
  const xy = BigInt(x) * BigInt(y);
  const minus = rng.chance(0.5) && xy >= BigInt(z);
  return { problem: `Compute ${x}*${y}${minus ? '-' : '+'}${z}.`, answer: String(minus ? xy - BigInt(z) : xy + BigInt(z)) };
}

// -- digit_sum_pow: (a, b) pairs with a^b in a value window, for the easy levels --
const powPairCache = new Map<string, ReadonlyArray<readonly [number, number]>>();
function powPairs(min: number, maxExclusive: number): ReadonlyArray<readonly [number, number]> {
  const key = `${min}:${maxExclusive}`;
  let pairs = powPairCache.get(key);
  if (!pairs) {
    const list: Array<readonly [number, number]> = [];
    for (let a = 2; a < 100; a++) {
      for (let b = 2, v = a * a; v < maxExclusive; b++, v *= a) if (v >= min) list.push([a, b]);
    }
    pairs = list;
    powPairCache.set(key, pairs);
  }
  return pairs;
}
function digitSumPow(a: number, b: number): Generated {
  return { problem: `Digit sum of ${a}^${b}?`, answer: String(digitSum(BigInt(a) ** BigInt(b))) };
}

// -- gcd_lcm --
function gcdProblem(rng: Rng, arity: number, g: [number, number], x: [number, number]): Generated {
  const gg = rng.int(g[0], g[1]);
  const args: bigint[] = [];
  for (let i = 0; i < arity; i++) args.push(BigInt(gg * rng.int(x[0], x[1])));
  return { problem: `Find gcd(${args.join(',')}).`, answer: String(gcdMany(args)) };
}
function lcmProblem(rng: Rng, arity: number, x: [number, number]): Generated {
  const args: bigint[] = [];
  for (let i = 0; i < arity; i++) args.push(BigInt(rng.int(x[0], x[1])));
  return { problem: `Find lcm(${args.join(',')}).`, answer: String(lcmMany(args)) };
}

// -- binomial: C(n,k) with k drawn from a range, mirrored to n-k half the time --
function binomProblem(rng: Rng, n: [number, number], k: [number, number]): Generated {
  const nn = rng.int(n[0], n[1]);
  let kk = Math.min(rng.int(k[0], k[1]), nn - 1);
  if (rng.chance(0.5)) kk = nn - kk;
  return { problem: `Compute C(${nn},${kk}).`, answer: String(binomial(BigInt(nn), BigInt(kk))) };
}

// -- sequence_sum --
function termText(t: SeqTerm): string {
  switch (t.kind) {
    case 'linear':
      return `${t.a === 1 ? '' : t.a}k${t.b === 0 ? '' : `+${t.b}`}`;
    case 'power':
      return `k^${t.p}`;
    case 'geometric':
      return `${t.r}^k`;
  }
}
function seqProblem(term: SeqTerm, lo: number, hi: number): Generated {
  return { problem: `Sum of ${termText(term)} for k=${lo}..${hi}?`, answer: String(sequenceSum(term, lo, hi)) };
}
/** Largest n with r^n < 1e15 (keeps geometric answers ≤ 16 digits). */
function geomMaxExp(r: number): number {
  let n = 0;
  for (let v = 1; v * r < 1e15; v *= r) n++;
  return n;
}

// -- base_convert --
function baseProblem(n: number, base: number): Generated {
  return { problem: `Write ${n} in base ${base}.`, answer: toBase(n, base) };
}

export const FAMILY_SPECS: Record<Family, readonly [LevelSpec, LevelSpec, LevelSpec, LevelSpec]> = {
  arith_chain: [
    {
      describe: 'a+b or a-b, 2-digit operands (a-b only when a≥b)',
      gen: (rng) => {
        let x = rng.int(10, 99);
        let y = rng.int(10, 99);
        if (rng.chance(0.5)) return { problem: `Compute ${x}+${y}.`, answer: String(x + y) };
        if (x < y) [x, y] = [y, x];
        return { problem: `Compute ${x}-${y}.`, answer: String(x - y) };
      },
    },
    { describe: 'a*b±c, 2-digit × 1-digit ± 2-digit', gen: (rng) => arith(rng, [10, 99], [2, 9], [10, 99]) },
    { describe: 'a*b±c or a*b+c*d, 3-digit × 2-digit ± 3-digit', gen: (rng) => arith(rng, [100, 999], [10, 99], [100, 999], [10, 99]) },
    {
      describe: 'a*b±c or a*b+c*d, 4-digit × 3-digit ± 4-digit',
      gen: (rng) => arith(rng, [1000, 9999], [100, 999], [1000, 9999], [100, 999]),
    },
  ],
  mod_pow: [
    {
      describe: 'a mod m, a in 10..99, m in 2..9',
      gen: (rng) => {
        const a = rng.int(10, 99);
        const m = rng.int(2, 9);
        return { problem: `Find ${a} mod ${m}.`, answer: String(a % m) };
      },
    },
    { describe: 'a^b mod m, a in 2..19, b in 2..3, m in 3..29', gen: (rng) => modPowProblem(rng, [2, 19], [2, 3], [3, 29]) },
    { describe: 'a^b mod m, a in 2..50, b in 10..60, m in 11..199', gen: (rng) => modPowProblem(rng, [2, 50], [10, 60], [11, 199]) },
    {
      describe: 'a^b mod m, a in 2..99, b in 100..999, m in 101..9999',
      gen: (rng) => modPowProblem(rng, [2, 99], [100, 999], [101, 9999]),
    },
  ],
  digit_sum_pow: [
    {
      describe: 'a^b < 1000 (a, b ≥ 2)',
      gen: (rng) => {
        const [a, b] = rng.pick(powPairs(4, 1000));
        return digitSumPow(a, b);
      },
    },
    {
      describe: '1000 ≤ a^b < 10^6 (a ≤ 99, b ≥ 2)',
      gen: (rng) => {
        const [a, b] = rng.pick(powPairs(1000, 1e6));
        return digitSumPow(a, b);
      },
    },
    { describe: 'a^b, a in 2..20, b in 10..40', gen: (rng) => digitSumPow(rng.int(2, 20), rng.int(10, 40)) },
    { describe: 'a^b, a in 2..99, b in 100..300', gen: (rng) => digitSumPow(rng.int(2, 99), rng.int(100, 300)) },
  ],
  gcd_lcm: [
    {
      describe: 'gcd of two numbers ≤ 54 (g·x, g ≤ 9, x ≤ 6) or lcm of two numbers in 2..12',
      gen: (rng) => (rng.chance(0.5) ? gcdProblem(rng, 2, [1, 9], [1, 6]) : lcmProblem(rng, 2, [2, 12])),
    },
    {
      describe: 'gcd of two numbers ≤ 450 (g in 2..30, x in 2..15) or lcm of two numbers in 2..40',
      gen: (rng) => (rng.chance(0.5) ? gcdProblem(rng, 2, [2, 30], [2, 15]) : lcmProblem(rng, 2, [2, 40])),
    },
    {
      describe: 'gcd of three numbers ≤ 4000 (g in 2..99, x in 2..40) or lcm of three numbers in 2..40',
      gen: (rng) => (rng.chance(0.5) ? gcdProblem(rng, 3, [2, 99], [2, 40]) : lcmProblem(rng, 3, [2, 40])),
    },
    {
      describe: 'gcd of two/three numbers < 10^6 (g in 2..999, x in 100..999) or lcm of three numbers in 100..9999',
      gen: (rng) => (rng.chance(0.5) ? gcdProblem(rng, rng.int(2, 3), [2, 999], [100, 999]) : lcmProblem(rng, 3, [100, 9999])),
    },
  ],
  divisor_count: [
    { describe: 'n in 2..50', gen: (rng) => divisorProblem(rng.int(2, 50)) },
    { describe: 'n in 51..1000', gen: (rng) => divisorProblem(rng.int(51, 1000)) },
    { describe: 'n in 1001..99999', gen: (rng) => divisorProblem(rng.int(1001, 99_999)) },
    { describe: 'n in 10^6..10^9', gen: (rng) => divisorProblem(rng.int(1_000_000, 1_000_000_000)) },
  ],
  prime_count: [
    { describe: 'primes below n, n in 3..30', gen: (rng) => primeProblem(rng.int(3, 30)) },
    { describe: 'primes below n, n in 31..300', gen: (rng) => primeProblem(rng.int(31, 300)) },
    { describe: 'primes below n, n in 301..5000', gen: (rng) => primeProblem(rng.int(301, 5000)) },
    { describe: 'primes below n, n in 5001..100000', gen: (rng) => primeProblem(rng.int(5001, PRIME_LIMIT)) },
  ],
  binomial: [
    { describe: 'C(n,k), n in 2..12, k or n-k in 1..2', gen: (rng) => binomProblem(rng, [2, 12], [1, 2]) },
    { describe: 'C(n,k), n in 5..15, k or n-k in 2..3', gen: (rng) => binomProblem(rng, [5, 15], [2, 3]) },
    { describe: 'C(n,k), n in 12..30, k or n-k in 3..6', gen: (rng) => binomProblem(rng, [12, 30], [3, 6]) },
    { describe: 'C(n,k), n in 30..99, k or n-k in 5..9', gen: (rng) => binomProblem(rng, [30, 99], [5, 9]) },
  ],
  sequence_sum: [
    {
      describe: 'k over ≤5 terms within 1..12, k^2 for k=1..2-4, or 2^k for k=0..1-4',
      gen: (rng) => {
        const which = rng.int(0, 2);
        if (which === 0) {
          const lo = rng.int(1, 10);
          return seqProblem({ kind: 'linear', a: 1, b: 0 }, lo, Math.min(12, lo + rng.int(1, 4)));
        }
        if (which === 1) return seqProblem({ kind: 'power', p: 2 }, 1, rng.int(2, 4));
        return seqProblem({ kind: 'geometric', r: 2 }, 0, rng.int(1, 4));
      },
    },
    {
      describe: 'ak+b (a ≤ 9, b ≤ 9) for k=1..5-20, k^2 for k=1..5-12, or r^k (r ≤ 3) for k=0..3-8',
      gen: (rng) => {
        const which = rng.int(0, 2);
        if (which === 0) return seqProblem({ kind: 'linear', a: rng.int(1, 9), b: rng.int(0, 9) }, 1, rng.int(5, 20));
        if (which === 1) return seqProblem({ kind: 'power', p: 2 }, 1, rng.int(5, 12));
        return seqProblem({ kind: 'geometric', r: rng.int(2, 3) }, 0, rng.int(3, 8));
      },
    },
    {
      describe: 'ak+b (a, b ≤ 99) for k=1..20-100, k^2 to 13-60, k^3 to 5-25, or r^k (r ≤ 9) for k=0..5-10',
      gen: (rng) => {
        const which = rng.int(0, 3);
        if (which === 0) return seqProblem({ kind: 'linear', a: rng.int(1, 99), b: rng.int(0, 99) }, 1, rng.int(20, 100));
        if (which === 1) return seqProblem({ kind: 'power', p: 2 }, 1, rng.int(13, 60));
        if (which === 2) return seqProblem({ kind: 'power', p: 3 }, 1, rng.int(5, 25));
        return seqProblem({ kind: 'geometric', r: rng.int(2, 9) }, 0, rng.int(5, 10));
      },
    },
    {
      describe: 'ak+b (a, b ≤ 999) for k=1..200-9999, k^2 to 100-9999, k^3 to 100-2000, or r^k for k=0..11+ (r^n < 10^15)',
      gen: (rng) => {
        const which = rng.int(0, 3);
        if (which === 0) return seqProblem({ kind: 'linear', a: rng.int(1, 999), b: rng.int(0, 999) }, 1, rng.int(200, 9999));
        if (which === 1) return seqProblem({ kind: 'power', p: 2 }, 1, rng.int(100, 9999));
        if (which === 2) return seqProblem({ kind: 'power', p: 3 }, 1, rng.int(100, 2000));
        const r = rng.int(2, 9);
        return seqProblem({ kind: 'geometric', r }, 0, rng.int(11, geomMaxExp(r)));
      },
    },
  ],
  base_convert: [
    {
      describe: 'n with two digits in base b (b ≤ n < b^2, n ≤ 80), b in 2..9',
      gen: (rng) => {
        const b = rng.int(2, 9);
        return baseProblem(rng.int(b, Math.min(b * b - 1, 80)), b);
      },
    },
    {
      describe: 'n with three digits in base b (b^2 ≤ n < b^3, n ≤ 500), b in 2..9',
      gen: (rng) => {
        const b = rng.int(2, 9);
        return baseProblem(rng.int(b * b, Math.min(b * b * b - 1, 500)), b);
      },
    },
    { describe: 'n in 501..20000, b in 2..9', gen: (rng) => baseProblem(rng.int(501, 20_000), rng.int(2, 9)) },
    { describe: 'n in 10^5..2·10^6, b in 2..9', gen: (rng) => baseProblem(rng.int(100_000, 2_000_000), rng.int(2, 9)) },
  ],
};

function modPowProblem(rng: Rng, a: [number, number], b: [number, number], m: [number, number]): Generated {
  const x = rng.int(a[0], a[1]);
  const e = rng.int(b[0], b[1]);
  const mod = rng.int(m[0], m[1]);
  return { problem: `Find ${x}^${e} mod ${mod}.`, answer: String(modPow(BigInt(x), BigInt(e), BigInt(mod))) };
}

function divisorProblem(n: number): Generated {
  return { problem: `Number of divisors of ${n}?`, answer: String(divisorCount(n)) };
}

function primeProblem(n: number): Generated {
  return { problem: `Number of primes below ${n}?`, answer: String(primeCountBelow(n)) };
}
