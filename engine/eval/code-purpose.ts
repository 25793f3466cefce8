// What a code block is for, as in the paper's code-purpose analysis: a rule-based classifier over
// the block's syntax tree. The tree comes from @lezer/python (CodeMirror's Python grammar: a full
// parser in JavaScript, so no Python process per block); the rules read which modules it imports,
// which functions it calls (and their names, for helpers the model never defined), and how its
// loops and comprehensions branch. Validated against hand labels (test/fixtures/code-purposes*.ts):
// all 38 written blocks, 24 of 31 SmolLM2 blocks labelled blind (docs/training.md).
import type { SyntaxNode } from '@lezer/common';
import { parser } from '@lezer/python';

export const CODE_PURPOSES = [
  'calculation',
  'verification',
  'enumeration',
  'equation-solving',
  'symbolic',
  'simulation',
  'data-structures',
  'unparsed',
] as const;
export type CodePurpose = (typeof CODE_PURPOSES)[number];

/** What the rules read from a block's tree. */
export interface CodeFeatures {
  parsed: boolean;
  /** Top-level modules imported (`numpy` for `import numpy.linalg as la`). */
  modules: Set<string>;
  /** Names a call to which is a call into sympy: those imported from it and its module aliases. */
  sympyNames: Set<string>;
  /** Each call's callee as written (`np.linalg.solve`, `print`). */
  callees: string[];
  /** Callees of the calls whose arguments are all number literals (a numeric evaluation, whatever the function). */
  numericCalls: Set<string>;
  /** for/while loops whose body branches (if, break, continue): a search rather than a sum. */
  searchLoops: number;
  whileLoops: number;
  /** Comprehensions with an `if` filter. */
  filteredComprehensions: number;
  asserts: number;
  /** print(...) calls whose arguments hold a comparison, all() or any(). */
  printedChecks: number;
  classes: number;
}

const SOLVERS = new Set([
  'solve',
  'solveset',
  'linsolve',
  'nonlinsolve',
  'nsolve',
  'dsolve',
  'fsolve',
  'roots',
  'nroots',
  'brentq',
  'newton',
]);
const OPTIMIZERS = /^(minimize|minimize_scalar|linprog|root|root_scalar|least_squares)$/;
const REWRITES = new Set([
  'simplify',
  'expand',
  'factor',
  'diff',
  'integrate',
  'limit',
  'series',
  'apart',
  'together',
  'cancel',
  'trigsimp',
  'collect',
  'summation',
]);
const COMBINATORICS = new Set(['permutations', 'combinations', 'combinations_with_replacement', 'product']);
/** sympy's number-theory and counting helpers: calling one is a calculation, any other sympy call works on expressions. */
const SYMPY_NUMERIC = new Set([
  'primepi',
  'divisor_count',
  'divisors',
  'gcd',
  'lcm',
  'isprime',
  'nextprime',
  'prevprime',
  'prime',
  'primerange',
  'factorint',
  'totient',
  'binomial',
  'factorial',
  'fibonacci',
  'mod_inverse',
  'Rational',
  'Integer',
  'N',
  'sqrt',
]);
/** Names that say what a helper does, where the model called one it never defined. */
const CHECK_NAME = /^(is|check|verify)(_|[A-Z]|prime)/;
const SEARCH_NAME = /^(count|find|search|enumerate|brute)_|(^|_)ways(_|$)/;
const CONTAINERS = new Set(['deque', 'Counter', 'defaultdict', 'OrderedDict', 'heappush', 'heappop', 'heapify', 'namedtuple']);
const CONTAINER_MODULES = new Set(['collections', 'heapq', 'queue']);
const LOOPS = new Set(['ForStatement', 'WhileStatement']);
const COMPARISONS = new Set(['CompareOp']);
const BRANCHES = new Set(['IfStatement', 'BreakStatement', 'ContinueStatement']);
const COMPREHENSIONS = /ComprehensionExpression$/;

/** A comprehension, or a generator that is a call's only argument (`sum(1 for d in ...)`), which the grammar keeps as the ArgList. */
const isComprehension = (n: SyntaxNode) => COMPREHENSIONS.test(n.name) || (n.name === 'ArgList' && n.getChild('for') !== null);

const lastName = (callee: string) => callee.split('.').pop() ?? callee;

/** Reads the features of one block. */
export function codeFeatures(code: string): CodeFeatures {
  const tree = parser.parse(code);
  const f: CodeFeatures = {
    parsed: true,
    modules: new Set(),
    sympyNames: new Set(),
    callees: [],
    numericCalls: new Set(),
    searchLoops: 0,
    whileLoops: 0,
    filteredComprehensions: 0,
    asserts: 0,
    printedChecks: 0,
    classes: 0,
  };
  const text = (n: SyntaxNode) => code.slice(n.from, n.to);
  const holds = (n: SyntaxNode, names: Set<string>) => {
    const cursor = n.cursor();
    while (cursor.next() && cursor.from < n.to) if (names.has(cursor.name)) return true;
    return false;
  };
  tree.iterate({
    enter: (ref) => {
      const n = ref.node;
      switch (n.name) {
        case '⚠':
          f.parsed = false;
          break;
        case 'ImportStatement': {
          const from = /^from\s+([\w.]+)/.exec(text(n));
          const names = from
            ? [from[1]!]
            : text(n)
                .replace(/^import\s+/, '')
                .split(',');
          const modules = names.map((name) => name.trim().split(/[.\s]/)[0]!);
          for (const m of modules) f.modules.add(m);
          // `from sympy import x` or `import sympy as sp` (one module per statement, as models write them).
          if (modules.length === 1 && modules[0] === 'sympy') for (const v of n.getChildren('VariableName')) f.sympyNames.add(text(v));
          break;
        }
        case 'CallExpression': {
          const callee = n.firstChild ? text(n.firstChild).replace(/\s+/g, '') : '';
          f.callees.push(callee);
          const args = n.lastChild?.name === 'ArgList' ? n.lastChild.getChildren('Number').length : 0;
          const commas = n.lastChild?.getChildren(',').length ?? 0;
          if (args > 0 && args === commas + 1) f.numericCalls.add(callee);
          if (callee === 'print' && n.lastChild && (holds(n.lastChild, COMPARISONS) || /\b(all|any)\(/.test(text(n.lastChild))))
            f.printedChecks += 1;
          break;
        }
        case 'AssertStatement':
          f.asserts += 1;
          break;
        case 'ClassDefinition':
          f.classes += 1;
          break;
        default:
          if (LOOPS.has(n.name)) {
            if (n.name === 'WhileStatement') f.whileLoops += 1;
            const body = n.getChild('Body');
            if (body && holds(body, BRANCHES)) f.searchLoops += 1;
          } else if (isComprehension(n) && n.getChildren('if').length > 0) f.filteredComprehensions += 1;
      }
    },
  });
  return f;
}

/**
 * The block's purpose: the first rule that holds, most specific first. Solving and sampling say
 * the most about intent; a search loop outranks a printed check (checking every case is a search).
 */
export function codePurpose(f: CodeFeatures): CodePurpose {
  const names = f.callees.map(lastName);
  const calls = (set: Set<string>) => names.some((n) => set.has(n));
  if (!f.parsed) return 'unparsed';
  if (calls(SOLVERS) || names.some((n) => OPTIMIZERS.test(n))) return 'equation-solving';
  if (f.modules.has('random') || f.callees.some((c) => c.includes('random.'))) return 'simulation';
  const sympyCall = (callee: string) => {
    const [head, ...rest] = callee.split('.');
    const name = rest.length ? rest.at(-1)! : head!;
    return (f.sympyNames.has(head!) || head === 'sympy') && !SYMPY_NUMERIC.has(name) && name !== 'symbols' && !f.numericCalls.has(callee);
  };
  if (calls(REWRITES) || f.callees.some(sympyCall)) return 'symbolic';
  if ([...f.modules].some((m) => CONTAINER_MODULES.has(m)) || calls(CONTAINERS) || f.classes > 0) return 'data-structures';
  if (
    f.modules.has('itertools') ||
    calls(COMBINATORICS) ||
    f.searchLoops > 0 ||
    f.whileLoops > 0 ||
    f.filteredComprehensions > 0 ||
    names.some((n) => SEARCH_NAME.test(n))
  )
    return 'enumeration';
  if (f.asserts > 0 || f.printedChecks > 0 || names.some((n) => CHECK_NAME.test(n))) return 'verification';
  return 'calculation';
}

export const classifyCode = (code: string): CodePurpose => codePurpose(codeFeatures(code));
