// Hand-written on purpose: no maintained JS library handles LaTeX final-answer equivalence (boxed, fractions, tuples) well.
import { z } from 'zod';

/**
 * Final-answer grading for ReTool rollouts: responses end with `<answer>\boxed{...}</answer>`
 * and the reward is whether that boxed answer equals the ground truth.
 *
 * Answers are parsed into a small value model and compared structurally:
 *   - exact rationals (BigInt numerator/denominator; integers, decimals, fractions, simple arithmetic),
 *   - ordered sequences with their brackets (tuples `(1, 2)`, intervals `[1, 3)`, bare lists `1, 2`),
 *   - unordered sets `\{1, 2\}`,
 *   - everything else as case-insensitive, whitespace-collapsed text (e.g. base-16 digits `2A3F`).
 * No floating point is used anywhere, so `0.333` is not `1/3` and 2^53 + 1 is not 2^53.
 */

// ---------------------------------------------------------------------------------------------
// Boxed extraction
// ---------------------------------------------------------------------------------------------

const BOX_RE = /\\(?:boxed|fbox)(?![a-zA-Z])/g;

/** Index of the `}` matching the `{` at `open`, skipping escaped characters (`\{`, `\}`); -1 if unbalanced. */
function matchBrace(s: string, open: number): number {
  let depth = 0;
  for (let j = open; j < s.length; j++) {
    const c = s[j];
    if (c === '\\') {
      j++;
      continue;
    }
    if (c === '{') depth++;
    else if (c === '}') {
      depth--;
      if (depth === 0) return j;
    }
  }
  return -1;
}

/**
 * Content of the LAST `\boxed{...}` / `\fbox{...}` in `text` (nested braces respected), or of
 * `\boxed 5`-style single-token boxes. Null when there is no box or the last one is unbalanced.
 */
export function extractBoxed(text: string): string | null {
  let last = -1;
  let cmdLen = 0;
  for (const m of text.matchAll(BOX_RE)) {
    last = m.index;
    cmdLen = m[0].length;
  }
  if (last < 0) return null;
  let i = last + cmdLen;
  while (i < text.length && /\s/.test(text[i] ?? '')) i++;
  if (text[i] === '{') {
    const end = matchBrace(text, i);
    return end < 0 ? null : text.slice(i + 1, end).trim();
  }
  const token = /^[^\s${}<]+/.exec(text.slice(i));
  return token ? token[0] : null;
}

// ---------------------------------------------------------------------------------------------
// Exact rationals
// ---------------------------------------------------------------------------------------------

interface Rat {
  n: bigint;
  d: bigint;
}

const abs = (x: bigint): bigint => (x < 0n ? -x : x);

function gcd(a: bigint, b: bigint): bigint {
  a = abs(a);
  b = abs(b);
  while (b !== 0n) [a, b] = [b, a % b];
  return a;
}

function rat(n: bigint, d: bigint = 1n): Rat {
  if (d === 0n) throw new Error('division by zero');
  if (d < 0n) {
    n = -n;
    d = -d;
  }
  const g = gcd(n, d);
  return g > 1n ? { n: n / g, d: d / g } : { n, d };
}

const add = (a: Rat, b: Rat): Rat => rat(a.n * b.d + b.n * a.d, a.d * b.d);
const sub = (a: Rat, b: Rat): Rat => rat(a.n * b.d - b.n * a.d, a.d * b.d);
const mul = (a: Rat, b: Rat): Rat => rat(a.n * b.n, a.d * b.d);
const div = (a: Rat, b: Rat): Rat => rat(a.n * b.d, a.d * b.n);

const MAX_POW_BITS = 200_000;

function pow(base: Rat, e: Rat): Rat {
  if (e.d !== 1n) throw new Error('non-integer exponent');
  const k = abs(e.n);
  const bits = BigInt(Math.max(base.n.toString(2).length, base.d.toString(2).length));
  if (bits * k > BigInt(MAX_POW_BITS)) throw new Error('exponent too large');
  const r = { n: base.n ** k, d: base.d ** k };
  return e.n < 0n ? rat(r.d, r.n) : rat(r.n, r.d);
}

/** Recursive-descent evaluator for numeric answers: + - * / ^, parentheses/braces, \frac, \cdot, \times, \div. */
class RatParser {
  i = 0;
  constructor(private readonly s: string) {}

  parseAll(): Rat {
    const v = this.expr();
    this.ws();
    if (this.i !== this.s.length) throw new Error('trailing input');
    return v;
  }

  private ws(): void {
    while (this.s[this.i] === ' ') this.i++;
  }

  private eat(tok: string): boolean {
    this.ws();
    if (!this.s.startsWith(tok, this.i)) return false;
    // A command like \cdot must not be a prefix of a longer command name.
    if (/^\\[a-z]+$/i.test(tok) && /[a-zA-Z]/.test(this.s[this.i + tok.length] ?? '')) return false;
    this.i += tok.length;
    return true;
  }

  private expect(tok: string): void {
    if (!this.eat(tok)) throw new Error(`expected ${tok}`);
  }

  private expr(): Rat {
    let v = this.term();
    for (;;) {
      if (this.eat('+')) v = add(v, this.term());
      else if (this.eat('-')) v = sub(v, this.term());
      else return v;
    }
  }

  private term(): Rat {
    let v = this.unary();
    for (;;) {
      this.ws();
      if (this.s.startsWith('**', this.i)) return v; // handled by power()
      if (this.eat('*') || this.eat('\\cdot') || this.eat('\\times')) v = mul(v, this.unary());
      else if (this.eat('/') || this.eat('\\div')) v = div(v, this.unary());
      else return v;
    }
  }

  private unary(): Rat {
    if (this.eat('+')) return this.unary();
    if (this.eat('-')) {
      const v = this.unary();
      return { n: -v.n, d: v.d };
    }
    return this.power();
  }

  private power(): Rat {
    const base = this.atom();
    if (this.eat('**')) return pow(base, this.unary());
    if (this.eat('^')) {
      this.ws();
      const c = this.s[this.i];
      if (c === '{' || c === '(') return pow(base, this.atom());
      const neg = this.eat('-');
      const e = this.number();
      return pow(base, neg ? { n: -e.n, d: e.d } : e);
    }
    return base;
  }

  private number(): Rat {
    this.ws();
    const m = /^(\d*)(?:\.(\d*))?/.exec(this.s.slice(this.i));
    const whole = m?.[1] ?? '';
    const frac = m?.[2] ?? '';
    if (!m || (whole === '' && frac === '')) throw new Error('expected number');
    this.i += m[0].length;
    return rat(BigInt((whole || '0') + frac), 10n ** BigInt(frac.length));
  }

  /** A \frac argument: `{expr}` or a single digit (`\frac12`). */
  private fracArg(): Rat {
    this.ws();
    const c = this.s[this.i] ?? '';
    if (c === '{') return this.atom();
    if (/\d/.test(c)) {
      this.i++;
      return rat(BigInt(c));
    }
    throw new Error('bad \\frac argument');
  }

  private atom(): Rat {
    this.ws();
    const c = this.s[this.i] ?? '';
    if (/[\d.]/.test(c)) return this.number();
    if (this.eat('(')) {
      const v = this.expr();
      this.expect(')');
      return v;
    }
    if (this.eat('{')) {
      const v = this.expr();
      this.expect('}');
      return v;
    }
    if (this.eat('\\frac')) {
      const num = this.fracArg();
      return div(num, this.fracArg());
    }
    throw new Error('unexpected token');
  }
}

function parseRational(s: string): Rat | null {
  try {
    return new RatParser(s).parseAll();
  } catch {
    return null; // syntax error, division by zero, huge power, or too-deep nesting
  }
}

// ---------------------------------------------------------------------------------------------
// Cleaning: strip LaTeX presentation so only the mathematical content remains
// ---------------------------------------------------------------------------------------------

const TEXT_CMDS = 'text|textrm|textnormal|textup|textit|textbf|textsf|texttt|mbox|mathrm|mathbf|mathit|mathsf|mathtt|operatorname';
const TEXT_CMD_RE = new RegExp(`\\\\(?:${TEXT_CMDS})\\s*\\{`, 'g');

/** Finds every `\text{...}`-like group: [start, index of its closing brace, content]. */
function textGroups(s: string): Array<[number, number, string]> {
  const out: Array<[number, number, string]> = [];
  for (const m of s.matchAll(TEXT_CMD_RE)) {
    const open = m.index + m[0].length - 1;
    const close = matchBrace(s, open);
    if (close >= 0) out.push([m.index, close, s.slice(open + 1, close)]);
  }
  return out;
}

/** Drops trailing unit groups (`5\text{ cm}^2` -> `5`), then unwraps the remaining text groups. */
function handleTextGroups(s: string): string {
  for (;;) {
    const last = textGroups(s).at(-1);
    if (!last) break;
    const [start, close] = last;
    const after = s.slice(close + 1);
    const before = s.slice(0, start).trim();
    if (!/^\s*(?:\^\s*\{?\s*\d\s*\}?)?\s*\.?\s*$/.test(after) || !/\d/.test(before)) break;
    s = before;
  }
  for (let guard = 0; guard < 100; guard++) {
    const first = textGroups(s)[0];
    if (!first) break;
    const [start, close, content] = first;
    s = s.slice(0, start) + content + s.slice(close + 1);
  }
  return s;
}

/** Rewrites short forms such as `\frac12`, `\frac1{2}`, `\sqrt3` to fully braced `\frac{1}{2}`, `\sqrt{3}`. */
function braceArgs(s: string, cmd: string, nargs: number): string {
  const re = new RegExp(`\\\\${cmd}(?![a-zA-Z])`, 'g');
  let pos = 0;
  for (;;) {
    re.lastIndex = pos;
    const m = re.exec(s);
    if (!m) return s;
    let i = m.index + m[0].length;
    let rebuilt = '';
    let ok = true;
    for (let k = 0; k < nargs && ok; k++) {
      while (s[i] === ' ') i++;
      const c = s[i];
      if (c === undefined || c === '[' || c === '}') ok = false;
      else if (c === '{') {
        const end = matchBrace(s, i);
        if (end < 0) ok = false;
        else {
          rebuilt += s.slice(i, end + 1);
          i = end + 1;
        }
      } else if (c === '\\') {
        const tok = /^\\[a-zA-Z]+/.exec(s.slice(i))?.[0] ?? s.slice(i, i + 2);
        rebuilt += `{${tok}}`;
        i += tok.length;
      } else {
        rebuilt += `{${c}}`;
        i += 1;
      }
    }
    if (ok) s = s.slice(0, m.index) + m[0] + rebuilt + s.slice(i);
    pos = m.index + m[0].length;
  }
}

const UNIT_WORDS =
  'units?|square units|sq units|cm|mm|km|meters?|metres?|inch(?:es)?|feet|foot|ft|yards?|miles?|' +
  'degrees?|deg|radians?|dollars?|cents?|seconds?|minutes?|hours?|days?|weeks?|years?|ways|people|points?';
const TRAILING_UNIT_RE = new RegExp(`^(.*[\\d}])\\s*(?:${UNIT_WORDS})(?:\\s*\\^\\s*\\{?\\s*[23]\\s*\\}?)?$`, 'i');

/** `x = 5`, `a_1 = 5`, `\theta = 5` -> `5` (a single assignment to a single variable only). */
function stripAssignment(s: string): string {
  const eq = s.split('=');
  if (eq.length !== 2) return s;
  const [lhs = '', rhs = ''] = eq;
  if (/[<>!:]$/.test(lhs)) return s;
  return /^\s*(?:[a-zA-Z]|\\[a-zA-Z]+)(?:_\{?[a-zA-Z0-9]+\}?)?\s*$/.test(lhs) ? rhs.trim() : s;
}

function unwrapWhole(s: string): string {
  for (let guard = 0; guard < 20; guard++) {
    const t = s.trim();
    let next = t;
    if (/^\\\(.*\\\)$/s.test(t) || /^\\\[.*\\\]$/s.test(t)) next = t.slice(2, -2);
    else {
      const box = /^\\(?:boxed|fbox)\s*\{/.exec(t);
      if (box && matchBrace(t, box[0].length - 1) === t.length - 1) next = t.slice(box[0].length, -1);
    }
    if (next === t) return t;
    s = next;
  }
  return s.trim();
}

function clean(raw: string): string {
  let s = raw
    .replace(/[\u2212\u2012\u2013\ufe63\uff0d]/g, '-')
    .replace(/[\u2009\u202f\u2007\u200a\u200b\u2060]/g, '')
    .replace(/[\u00a0\u3000\s]/g, ' ')
    .replace(/∞/g, '\\infty ')
    .replace(/π/g, '\\pi ')
    .replace(/°/g, '')
    .replace(/×/g, '\\times ')
    .replace(/÷/g, '\\div ')
    .replace(/[·⋅]/g, '\\cdot ');
  s = s.replace(/\\\$/g, '').replace(/\$/g, '');
  s = unwrapWhole(s);
  s = s
    .replace(/\\(?:displaystyle|textstyle|scriptstyle)(?![a-zA-Z])/g, '')
    .replace(/\\(?:left|right)\s*\./g, '')
    .replace(/\\(?:left|right|[bB]igg?[lr]?)(?![a-zA-Z])/g, '')
    .replace(/\\[dtc]frac(?![a-zA-Z])/g, '\\frac')
    .replace(/\{,\}/g, ',')
    .replace(/\\[!,;:>]/g, '')
    .replace(/\\ /g, ' ')
    .replace(/~/g, ' ')
    .replace(/\\q?quad(?![a-zA-Z])/g, ' ')
    .replace(/\^\s*\{\s*\\circ\s*\}/g, '')
    .replace(/\^\s*\\circ(?![a-zA-Z])/g, '')
    .replace(/\\(?:circ|degree)(?![a-zA-Z])/g, '')
    .replace(/\\?%/g, '');
  s = handleTextGroups(s);
  s = braceArgs(s, 'frac', 2);
  s = braceArgs(s, 'sqrt', 1);
  s = s.replace(/\s+/g, ' ').trim();
  s = s.replace(/([^.])\.$/, '$1').trim(); // sentence-final period
  s = s.replace(TRAILING_UNIT_RE, '$1').trim();
  s = stripAssignment(s);
  // Base subscripts on digit strings: `1011_2`, `2A3F_{16}` compare by their digits.
  s = s.replace(/^([0-9A-Za-z]+)\s*_\s*\{?\s*\d+\s*\}?$/, '$1');
  return s.replace(/\s+/g, ' ').trim();
}

// ---------------------------------------------------------------------------------------------
// Value model
// ---------------------------------------------------------------------------------------------

type Value =
  | { kind: 'num'; n: bigint; d: bigint }
  | { kind: 'seq'; open: string; close: string; items: Value[] }
  | { kind: 'set'; items: Value[] }
  | { kind: 'text'; s: string };

const OPENERS = new Set(['(', '[', '{']);
const CLOSERS = new Set([')', ']', '}']);

/**
 * Walks `s` tracking bracket depth (`(`, `[`, `{`, `\{` open; `)`, `]`, `}`, `\}` close; interval
 * brackets may mismatch). Calls `visit(index, depthBefore)` for every plain character outside
 * LaTeX commands; returns the index after the closer that first brings depth back to 0, or -1.
 */
function walk(s: string, visit?: (i: number, depth: number) => void): number {
  let depth = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s[i] ?? '';
    if (c === '\\') {
      const nx = s[i + 1] ?? '';
      if (nx === '{' || nx === '}') {
        depth += nx === '{' ? 1 : -1;
        i++;
        if (depth === 0) return i + 1;
      } else {
        const cmd = /^\\[a-zA-Z]*/.exec(s.slice(i))?.[0] ?? '\\';
        i += Math.max(cmd.length, 2) - 1;
      }
      continue;
    }
    visit?.(i, depth);
    if (OPENERS.has(c)) depth++;
    else if (CLOSERS.has(c)) {
      depth--;
      if (depth === 0) return i + 1;
    }
  }
  return -1;
}

/** True when the opener at position 0 is closed exactly at the end of `s`. */
function wrapsWhole(s: string): boolean {
  return walk(s) === s.length;
}

function splitTop(s: string, sep: string): string[] {
  const cuts: number[] = [];
  // Walk with a virtual outer bracket so that `walk` never stops early at depth 0.
  walk(`(${s})`, (i, depth) => {
    if (depth === 1 && s[i - 1] === sep) cuts.push(i - 1);
  });
  const parts: string[] = [];
  let from = 0;
  for (const c of cuts) {
    parts.push(s.slice(from, c));
    from = c + 1;
  }
  parts.push(s.slice(from));
  return parts.map((p) => p.trim());
}

const THOUSANDS_RE = /^[+-]?\d{1,3}(?:,\d{3})+(?:\.\d+)?$/;

function canonText(s: string): string {
  let t = s
    .toLowerCase()
    .replace(/\s+/g, ' ')
    .trim()
    .replace(/\s+(?=[^a-z0-9\s])/g, '')
    .replace(/(?<=[^a-z0-9\s])\s+/g, '')
    .replace(/^\+/, '');
  if (t === 'inf' || t === 'infinity') t = '\\infty';
  if (t === '-inf' || t === '-infinity') t = '-\\infty';
  if (/^0+[0-9a-z]+$/.test(t)) t = t.replace(/^0+/, ''); // base-b digit strings: `0A` = `A`
  return t;
}

const MAX_NESTING = 32;

function parseValue(s: string, top: boolean, depth = 0): Value {
  s = s.trim();
  // Each level rescans its input, so bound the nesting; real answers nest a few levels at most.
  if (depth > MAX_NESTING) return { kind: 'text', s: canonText(s) };
  for (let k = 0; s.startsWith('{') && k < MAX_NESTING && wrapsWhole(s); k++) s = s.slice(1, -1).trim();
  if (s === '') return { kind: 'text', s: '' };
  const sub = (p: string): Value => parseValue(p, false, depth + 1);

  if (s.startsWith('\\{') && s.endsWith('\\}') && wrapsWhole(s)) {
    const items = splitTop(s.slice(2, -2), ',')
      .filter((p) => p !== '')
      .map(sub);
    items.sort((a, b) => (keyOf(a) < keyOf(b) ? -1 : keyOf(a) > keyOf(b) ? 1 : 0));
    return { kind: 'set', items };
  }

  if (/^[([]/.test(s) && /[)\]]$/.test(s) && wrapsWhole(s)) {
    const open = s[0] ?? '';
    const close = s.at(-1) ?? '';
    const parts = splitTop(s.slice(1, -1), ',');
    if (parts.length === 1 && open === '(' && close === ')') return sub(parts[0] ?? '');
    return { kind: 'seq', open, close, items: parts.map(sub) };
  }

  if (top && THOUSANDS_RE.test(s)) s = s.replace(/,/g, '');
  const parts = splitTop(s, ',');
  if (parts.length >= 2) return { kind: 'seq', open: '', close: '', items: parts.map(sub) };

  const r = parseRational(s);
  if (r) return { kind: 'num', n: r.n, d: r.d };
  return { kind: 'text', s: canonText(s) };
}

/** Collision-free comparison key (tags the kind, so text can never equal a number). */
function keyOf(v: Value): string {
  switch (v.kind) {
    case 'num':
      return `#${v.n}/${v.d}`;
    case 'text':
      return JSON.stringify(v.s);
    case 'seq':
      return `seq${JSON.stringify(v.open + v.close)}[${v.items.map(keyOf).join(';')}]`;
    case 'set':
      return `set[${v.items.map(keyOf).join(';')}]`;
  }
}

function display(v: Value): string {
  switch (v.kind) {
    case 'num':
      return v.d === 1n ? `${v.n}` : `${v.n}/${v.d}`;
    case 'text':
      return v.s;
    case 'seq':
      return `${v.open}${v.items.map(display).join(', ')}${v.close}`;
    case 'set':
      return `\\{${v.items.map(display).join(', ')}\\}`;
  }
}

function parseAnswer(raw: string): Value {
  try {
    return parseValue(clean(raw), true);
  } catch {
    // Pathological input (e.g. nesting deep enough to overflow the stack): compare as text.
    return { kind: 'text', s: canonText(raw) };
  }
}

const isEmpty = (v: Value): boolean => v.kind === 'text' && v.s === '';

// ---------------------------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------------------------

/** Canonical display form of an answer: `\dfrac{2}{4}` -> `1/2`, `1,000` -> `1000`, `\left(1,2\right)` -> `(1, 2)`. */
export function normalizeAnswer(raw: string): string {
  return display(parseAnswer(raw));
}

/** Symmetric answer equivalence; an empty answer is never equivalent to anything. */
export function answersEquivalent(pred: string, gold: string): boolean {
  const a = parseAnswer(pred);
  const b = parseAnswer(gold);
  if (isEmpty(a) || isEmpty(b)) return false;
  return keyOf(a) === keyOf(b);
}

/** Grades a full model response: the last boxed answer must match `gold`; no box means incorrect. */
export function gradeResponse(response: string, gold: string): { extracted: string | null; correct: boolean } {
  const extracted = extractBoxed(response);
  return { extracted, correct: extracted !== null && answersEquivalent(extracted, gold) };
}

export const GradeVerdictSchema = z.object({
  pred: z.string(),
  gold: z.string(),
  /** The answer actually graded: the last boxed content, or `pred` itself when it has no box; null if the box is unbalanced. */
  extracted: z.string().nullable(),
  normalizedPred: z.string().nullable(),
  normalizedGold: z.string(),
  correct: z.boolean(),
});
export type GradeVerdict = z.infer<typeof GradeVerdictSchema>;

/** Full verdict for `pred` (a bare answer or a whole response containing `\boxed{...}`) against `gold`. */
export function gradeVerdict(pred: string, gold: string): GradeVerdict {
  const hasBox = /\\(?:boxed|fbox)(?![a-zA-Z])/.test(pred);
  const extracted = hasBox ? extractBoxed(pred) : pred.trim();
  return {
    pred,
    gold,
    extracted,
    normalizedPred: extracted === null ? null : normalizeAnswer(extracted),
    normalizedGold: normalizeAnswer(gold),
    correct: extracted !== null && answersEquivalent(extracted, gold),
  };
}
