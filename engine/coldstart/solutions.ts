// How the built-in teacher solves each synthetic family: the Python a
// code-integrated trace runs, and the worked steps a text-only trace shows instead. The code copies
// the problem's numbers (what a small model can learn); the text steps show the work (partial
// products, Euclid, factorisations) where it fits the tiny model's context, and state the method
// where it cannot (a 600-digit power has no short worked form).
import { solvers } from '../../domain/synth/index.js';

export interface Solution {
  /** What the problem asks for, as a noun phrase ("the value of 12*34+5"): the plan's words. */
  goal: string;
  /** Lines before the computation, e.g. an import; the self-correction defect drops them. */
  setup: string[];
  /** The computation's last line, a print(...). */
  compute: string;
  /** Worked text steps ending in the answer. */
  textSteps: (answer: string) => string[];
  /** A search by brute force that gets the same answer (too slow on the largest inputs), where one is natural. */
  bruteForce?: string;
}

const big = (s: string) => BigInt(s);

function multiplySteps(x: string, y: string): string[] {
  const digits = [...y].map((d, i) => ({ d, place: y.length - 1 - i })).filter((p) => p.d !== '0');
  if (digits.length <= 1) return [`${x}*${y} = ${big(x) * big(y)}`];
  const parts = digits.map((p) => `${x}*${p.d}${'0'.repeat(p.place)}`);
  const values = digits.map((p) => String(big(x) * big(p.d) * 10n ** BigInt(p.place)));
  return [`${x}*${y} = ${parts.join('+')} = ${values.join('+')} = ${big(x) * big(y)}`];
}

function arith(expr: string): string[] {
  const m = /^(\d+)([*+-])(\d+)(?:([+-])(\d+)(?:\*(\d+))?)?$/.exec(expr);
  if (!m) return [];
  const [, a, op, b, op2, c, d] = m;
  if (op !== '*') return [`${a}${op}${b} = ${op === '+' ? big(a!) + big(b!) : big(a!) - big(b!)}`];
  const steps = multiplySteps(a!, b!);
  const ab = big(a!) * big(b!);
  if (!op2) return steps;
  if (d) {
    steps.push(...multiplySteps(c!, d));
    const cd = big(c!) * big(d);
    steps.push(`${ab}+${cd} = ${ab + cd}`);
  } else {
    steps.push(`${ab}${op2}${c} = ${op2 === '+' ? ab + big(c!) : ab - big(c!)}`);
  }
  return steps;
}

function euclid(x: bigint, y: bigint): string[] {
  const steps: string[] = [];
  let [a, b] = x >= y ? [x, y] : [y, x];
  while (b !== 0n) {
    steps.push(`${a} = ${a / b}*${b}+${a % b}`);
    [a, b] = [b, a % b];
  }
  return steps;
}

function factorise(n: number): [number, number][] {
  const out: [number, number][] = [];
  let rest = n;
  for (let p = 2; p * p <= rest; p++) {
    let e = 0;
    while (rest % p === 0) {
      rest /= p;
      e++;
    }
    if (e) out.push([p, e]);
  }
  if (rest > 1) out.push([rest, 1]);
  return out;
}

function pythonTerm(term: string): string {
  return term.replace(/\^/g, '**').replace(/(\d)k/g, '$1*k');
}

/** The family's solution of one problem text, or null when the text is not of that family. */
export function solutionFor(family: string, problem: string): Solution | null {
  let m: RegExpExecArray | null;
  switch (family) {
    case 'arith_chain':
      if (!(m = /^Compute ([\d*+-]+)\.$/.exec(problem))) return null;
      return { goal: `the value of ${m[1]}`, setup: [], compute: `print(${m[1]})`, textSteps: () => arith(m![1]!) };
    case 'mod_pow':
      if ((m = /^Find (\d+) mod (\d+)\.$/.exec(problem))) {
        const [a, n] = [Number(m[1]), Number(m[2])];
        return {
          goal: `the remainder of ${a} divided by ${n}`,
          setup: [],
          compute: `print(${a}%${n})`,
          textSteps: () => [`${a} = ${n}*${Math.floor(a / n)}+${a % n}`],
        };
      }
      if (!(m = /^Find (\d+)\^(\d+) mod (\d+)\.$/.exec(problem))) return null;
      {
        const [a, e, n] = [big(m[1]!), big(m[2]!), big(m[3]!)];
        const squares: string[] = [];
        for (let k = 1n, v = a % n; k <= e; k *= 2n, v = (v * v) % n) squares.push(`^${k}=${v}`);
        return {
          goal: `${a}^${e} modulo ${n}`,
          setup: [],
          compute: `print(pow(${a},${e},${n}))`,
          textSteps: (ans) =>
            e <= 3n
              ? [`${a}^${e} = ${a ** e} = ${a ** e / n}*${n}+${ans}`]
              : [`Squares mod ${n}: ${squares.join(',')}`, `${e} in binary is ${e.toString(2)}, so the product is ${ans}`],
        };
      }
    case 'digit_sum_pow': {
      if (!(m = /^Digit sum of (\d+)\^(\d+)\?$/.exec(problem))) return null;
      const value = big(m[1]!) ** big(m[2]!);
      const digits = value.toString();
      return {
        goal: `the sum of the digits of ${m[1]}^${m[2]}`,
        setup: [],
        compute: `print(sum(map(int,str(${m[1]}**${m[2]}))))`,
        textSteps: (ans) =>
          digits.length <= 12
            ? [`${m![1]}^${m![2]} = ${digits}`, `${[...digits].join('+')} = ${ans}`]
            : [`${m![1]}^${m![2]} has ${digits.length} digits; they add up to ${ans}`],
      };
    }
    case 'gcd_lcm': {
      if (!(m = /^Find (gcd|lcm)\(([\d,]+)\)\.$/.exec(problem))) return null;
      const fn = m[1]!;
      const args = m[2]!.split(',').map(big);
      const steps: string[] = [];
      let acc = args[0]!;
      for (const x of args.slice(1)) {
        const g = solvers.gcd(acc, x);
        steps.push(...euclid(acc, x));
        if (fn === 'lcm') steps.push(`lcm(${acc},${x}) = ${acc}*${x}/${g} = ${(acc * x) / g}`);
        acc = fn === 'gcd' ? g : (acc * x) / g;
      }
      const largest = args.reduce((a, b) => (a > b ? a : b));
      const smallest = args.reduce((a, b) => (a < b ? a : b));
      return {
        goal: `the ${fn === 'gcd' ? 'greatest common divisor' : 'least common multiple'} of ${m[2]!.split(',').join(', ')}`,
        setup: ['import math'],
        compute: `print(math.${fn}(${m[2]}))`,
        textSteps: () => steps,
        bruteForce:
          fn === 'gcd'
            ? `print(max(d for d in range(1, ${smallest}+1) if all(x % d == 0 for x in (${m[2]}))))`
            : `print(next(m for m in range(${largest}, ${args.reduce((a, b) => a * b)}+1, ${largest}) if all(m % x == 0 for x in (${m[2]}))))`,
      };
    }
    case 'divisor_count': {
      if (!(m = /^Number of divisors of (\d+)\?$/.exec(problem))) return null;
      const f = factorise(Number(m[1]));
      return {
        goal: `how many positive divisors ${m[1]} has`,
        setup: ['from sympy import divisor_count'],
        compute: `print(divisor_count(${m[1]}))`,
        bruteForce: `print(sum(1 for d in range(1, ${m[1]}+1) if ${m[1]} % d == 0))`,
        textSteps: (ans) => [
          `${m![1]} = ${f.map(([p, e]) => (e > 1 ? `${p}^${e}` : `${p}`)).join('*')}`,
          `${f.map(([, e]) => `(${e}+1)`).join('*')} = ${ans}`,
        ],
      };
    }
    case 'prime_count': {
      if (!(m = /^Number of primes below (\d+)\?$/.exec(problem))) return null;
      const n = Number(m[1]);
      const primes: number[] = [];
      for (let p = 2; p < n && n <= 60; p++) if (factorise(p).length === 1 && factorise(p)[0]![1] === 1) primes.push(p);
      return {
        goal: `how many primes are below ${n}`,
        setup: ['from sympy import primepi'],
        compute: `print(primepi(${n}-1))`,
        bruteForce: `print(sum(1 for p in range(2, ${n}) if all(p % d for d in range(2, p))))`,
        textSteps: (ans) =>
          n <= 60
            ? [`Primes below ${n}: ${primes.join(',')}`, `That is ${ans} primes`]
            : [`By a sieve up to ${n - 1}, there are ${ans} primes`],
      };
    }
    case 'binomial': {
      if (!(m = /^Compute C\((\d+),(\d+)\)\.$/.exec(problem))) return null;
      const [n, k0] = [Number(m[1]), Number(m[2])];
      const k = Math.min(k0, n - k0);
      const top = Array.from({ length: k }, (_, i) => n - i);
      const bottom = Array.from({ length: k }, (_, i) => k - i);
      const num = top.reduce((a, x) => a * BigInt(x), 1n);
      const den = bottom.reduce((a, x) => a * BigInt(x), 1n);
      return {
        goal: `the binomial coefficient C(${n},${k0})`,
        setup: ['import math'],
        compute: `print(math.comb(${n},${k0}))`,
        textSteps: (ans) => [`C(${n},${k0}) = C(${n},${k}) = ${top.join('*')}/(${bottom.join('*')}) = ${num}/${den} = ${ans}`],
      };
    }
    case 'sequence_sum': {
      if (!(m = /^Sum of (.+) for k=(\d+)\.\.(\d+)\?$/.exec(problem))) return null;
      const [term, lo, hi] = [m[1]!, Number(m[2]), Number(m[3])];
      const n = hi - lo + 1;
      const text = (ans: string): string[] => {
        let t: RegExpExecArray | null;
        if ((t = /^(\d*)k(?:\+(\d+))?$/.exec(term))) {
          const a = t[1] ? Number(t[1]) : 1;
          const b = t[2] ? Number(t[2]) : 0;
          return [`${a}*(${lo}+${hi})*${n}/2${b ? `+${b}*${n}` : ''} = ${ans}`];
        }
        if (term === 'k^2') return [`${hi}*${hi + 1}*${2 * hi + 1}/6${lo > 1 ? ' minus the terms below' : ''} = ${ans}`];
        if (term === 'k^3') return [`(${hi}*${hi + 1}/2)^2 = ${ans}`];
        if ((t = /^(\d+)\^k$/.exec(term))) return [`(${t[1]}^${hi + 1}-${t[1]}^${lo})/(${t[1]}-1) = ${ans}`];
        return [`The sum is ${ans}`];
      };
      return {
        goal: `the sum of ${term} for k from ${lo} to ${hi}`,
        setup: [],
        compute: `print(sum(${pythonTerm(term)} for k in range(${lo},${hi}+1)))`,
        textSteps: text,
      };
    }
    case 'base_convert': {
      if (!(m = /^Write (\d+) in base (\d)\.$/.exec(problem))) return null;
      const [n, b] = [Number(m[1]), Number(m[2])];
      const remainders: number[] = [];
      for (let q = n; q > 0; q = Math.floor(q / b)) remainders.push(q % b);
      return {
        goal: `${n} written in base ${b}`,
        setup: ['import numpy'],
        compute: `print(numpy.base_repr(${n},${b}))`,
        textSteps: (ans) => [`Remainders of ${n} divided by ${b} repeatedly: ${remainders.join(',')}`, `Read backwards: ${ans}`],
      };
    }
    default:
      return null;
  }
}
