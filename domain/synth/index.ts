/**
 * Synthetic math problems with exactly computed answers, for training and
 * evaluating the built-in tiny model (see ./families.ts for the families,
 * their phrasing and per-level ranges).
 *
 * Behaviour of `synthesize`:
 *  - Deterministic for a given (seed, families, levels, count); uses a seeded
 *    sfc32 PRNG, never Math.random.
 *  - Balanced: the selected family×level combinations are visited in cycles;
 *    each cycle visits every still-available combination exactly once, in an
 *    order shuffled by the PRNG.
 *  - No duplicate problem texts within one call (a Set of texts). For each
 *    slot a combination gets up to MAX_ATTEMPTS_PER_SLOT draws to produce an
 *    unseen text; if all are duplicates the combination is treated as
 *    exhausted and dropped from the rotation. Small spaces (e.g. level 1 of
 *    prime_count has 28 problems) therefore run dry, and the remaining
 *    combinations fill the rest. If every combination is exhausted, the
 *    generator simply returns early: `count` is an upper bound, and a call
 *    asking for more problems than exist yields (about) all distinct ones.
 *  - The split is a pure function of the problem text and testFraction:
 *    test iff fnv1a32(text) / 2^32 < testFraction. The same text lands in the
 *    same split in every call and for every seed; train and test never share
 *    a text.
 *  - `id` = `<family>-<14 hex digits of a 53-bit hash of the text>`: stable.
 */
import { z } from 'zod';
import { Rng } from '../rng.js';
import { FAMILIES, FAMILY_SPECS, type Family } from './families.js';

export { FAMILIES, LEVELS, PRIME_LIMIT, solvers, type Family, type Level, type SeqTerm } from './families.js';

export interface SyntheticProblem {
  id: string;
  problem: string;
  answer: string;
  family: Family;
  level: number;
  split: 'train' | 'test';
}

export const SynthOptionsSchema = z.object({
  count: z.number().int().positive(),
  seed: z.number().int(),
  families: z
    .array(z.enum(FAMILIES))
    .nonempty()
    .default([...FAMILIES]),
  levels: z.array(z.number().int().min(1).max(4)).nonempty().default([1, 2, 3, 4]),
  testFraction: z.number().min(0).max(0.9).default(0.2),
});
/** Input form: families, levels and testFraction are optional (defaults: all, all, 0.2). */
export type SynthOptions = z.input<typeof SynthOptionsSchema>;
export type ResolvedSynthOptions = z.output<typeof SynthOptionsSchema>;

/** Draws per slot before a family×level combination counts as exhausted. */
export const MAX_ATTEMPTS_PER_SLOT = 256;

/** 32-bit FNV-1a over UTF-16 code units (problem texts are ASCII). */
export function fnv1a32(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** cyrb53 (53-bit string hash) as 14 hex digits: ids stay collision-safe at millions of problems. */
function hash53Hex(text: string): string {
  let h1 = 0xdeadbeef;
  let h2 = 0x41c6ce57;
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    h1 = Math.imul(h1 ^ ch, 2654435761);
    h2 = Math.imul(h2 ^ ch, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  const hi = h2 & 0x1fffff;
  const lo = h1 >>> 0;
  return (
    HEX[hi >>> 16]! +
    HEX[(hi >>> 8) & 0xff]! +
    HEX[hi & 0xff]! +
    HEX[lo >>> 24]! +
    HEX[(lo >>> 16) & 0xff]! +
    HEX[(lo >>> 8) & 0xff]! +
    HEX[lo & 0xff]!
  );
}
const HEX: readonly string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

/** Split of a problem text: a pure function of the text and testFraction. */
export function splitOf(problem: string, testFraction: number): 'train' | 'test' {
  return fnv1a32(problem) / 4294967296 < testFraction ? 'test' : 'train';
}

/** Stable content id of a problem text. */
export function problemId(family: Family, problem: string): string {
  return `${family}-${hash53Hex(problem)}`;
}

/** One short phrase per level (index 0 = level 1) describing each family's ranges. */
export function explainLevels(): Record<Family, string[]> {
  const out = {} as Record<Family, string[]>;
  for (const family of FAMILIES) out[family] = FAMILY_SPECS[family].map((spec) => spec.describe);
  return out;
}

export function* synthesize(opts: SynthOptions): Generator<SyntheticProblem> {
  const o = SynthOptionsSchema.parse(opts);
  const families = [...new Set(o.families)];
  const levels = [...new Set(o.levels)].sort((a, b) => a - b);
  let combos = families.flatMap((family) => levels.map((level) => ({ family, level, spec: FAMILY_SPECS[family][level - 1]! })));
  const rng = new Rng(o.seed);
  const seen = new Set<string>();
  let produced = 0;

  while (produced < o.count && combos.length > 0) {
    // Fisher–Yates shuffle of this cycle's visiting order.
    const order = combos.slice();
    for (let i = order.length - 1; i > 0; i--) {
      const j = rng.int(0, i);
      const tmp = order[i]!;
      order[i] = order[j]!;
      order[j] = tmp;
    }
    const exhausted = new Set<(typeof combos)[number]>();
    for (const combo of order) {
      if (produced >= o.count) break;
      let found = false;
      for (let attempt = 0; attempt < MAX_ATTEMPTS_PER_SLOT; attempt++) {
        const { problem, answer } = combo.spec.gen(rng);
        const sizeBefore = seen.size;
        seen.add(problem); // one hash lookup: the size grows iff the text is new
        if (seen.size === sizeBefore) continue;
        found = true;
        produced++;
        yield {
          id: problemId(combo.family, problem),
          problem,
          answer,
          family: combo.family,
          level: combo.level,
          split: splitOf(problem, o.testFraction),
        };
        break;
      }
      if (!found) exhausted.add(combo);
    }
    if (exhausted.size > 0) combos = combos.filter((c) => !exhausted.has(c));
  }
}
