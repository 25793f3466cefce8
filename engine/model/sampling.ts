/** Seeded sampling from one row of logits: greedy at temperature 0, else temperature + top-p. */
export interface SamplingOptions {
  temperature: number;
  topP: number;
}

/** mulberry32: small, fast and seedable; sampling must be reproducible for a seed. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** log softmax(logits / temperature)[index], in float64: a token's log-prob under the temperature sampled at. */
export function logProbOf(logits: Float32Array, index: number, temperature = 1): number {
  let max = -Infinity;
  for (const x of logits) if (x > max) max = x;
  let sum = 0;
  for (const x of logits) sum += Math.exp((x - max) / temperature);
  return (logits[index]! - max) / temperature - Math.log(sum);
}

export function sampleToken(logits: Float32Array, opts: SamplingOptions, random: () => number): number {
  if (opts.temperature <= 0) {
    let best = 0;
    for (let i = 1; i < logits.length; i++) if (logits[i]! > logits[best]!) best = i;
    return best;
  }
  let max = -Infinity;
  for (const x of logits) if (x > max) max = x;
  const probs = new Float64Array(logits.length);
  let sum = 0;
  for (let i = 0; i < logits.length; i++) {
    probs[i] = Math.exp((logits[i]! - max) / opts.temperature);
    sum += probs[i]!;
  }
  let candidates = Array.from(probs.keys());
  if (opts.topP < 1) {
    candidates.sort((a, b) => probs[b]! - probs[a]!);
    let mass = 0;
    let keep = 0;
    while (keep < candidates.length && mass < opts.topP * sum) mass += probs[candidates[keep++]!]!;
    candidates = candidates.slice(0, Math.max(1, keep));
    sum = mass;
  }
  let r = random() * sum;
  for (const i of candidates) {
    r -= probs[i]!;
    if (r <= 0) return i;
  }
  return candidates[candidates.length - 1]!;
}
