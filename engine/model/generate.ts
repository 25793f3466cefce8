import { z } from 'zod';
import { tf } from '../tensor/backend.js';
import { cacheRows, padCacheEnd, stackCacheRows } from './cache-rows.js';
import { disposeCache, type KVCache, type DecoderModel } from './decoder.js';
import { logProbOf, sampleToken, seededRandom } from './sampling.js';

export const GenerateOptionsSchema = z.object({
  maxNewTokens: z.number().int().positive().default(256),
  temperature: z.number().min(0).default(1),
  topP: z.number().gt(0).max(1).default(1),
  seed: z.number().int().default(0),
  /** Token ids that end a sequence for good (end of text, end of answer). */
  eosIds: z.array(z.number().int()).default([]),
  /** Token ids or strings that pause a sequence (`</code>`): the caller may append and resume. */
  pauseIds: z.array(z.number().int()).default([]),
  pauseStrings: z.array(z.string()).default([]),
  padId: z.number().int().default(0),
  /** Off: recompute the whole sequence each step (the baseline the cache is measured against). */
  useCache: z.boolean().default(true),
  /** Off: a long appended span makes every row of the batch compute that many (padded) positions. */
  raggedPrefill: z.boolean().default(true),
  /**
   * Sampling of each row on its own (a server batching unrelated requests): its temperature, top-p,
   * token limit and seed, with a random stream per row, so a row samples the same in any batch.
   */
  perRow: z
    .array(
      z.object({
        temperature: z.number().min(0),
        topP: z.number().gt(0).max(1),
        seed: z.number().int(),
        maxNewTokens: z.number().int().positive(),
      }),
    )
    .optional(),
});
export type GenerateOptions = z.input<typeof GenerateOptionsSchema>;

export type RowState = 'active' | 'paused' | 'done';

export interface Row {
  prompt: number[];
  /** Everything after the prompt: sampled tokens and appended (e.g. interpreter) tokens. */
  tokens: number[];
  /** Log-prob under the model (temperature 1) of each sampled token; null for appended ones. */
  logprobs: (number | null)[];
  state: RowState;
  /** Why the row stopped last: eos, pause, length. */
  reason: 'eos' | 'pause' | 'length' | null;
  sampled: number;
}

/**
 * Batched decoding with a KV cache. A row that emits a pause token or string stops; the caller
 * may `append` tokens from outside (the interpreter's output) and `resume` it, and decoding goes
 * on from the cached prefix, with the other rows of the batch never waiting for it.
 */
export class Decoder {
  readonly rows: Row[];
  private readonly opts: z.output<typeof GenerateOptionsSchema>;
  private readonly rowSampling: { temperature: number; topP: number; maxNewTokens: number; random: () => number }[];
  private cache: KVCache | undefined;
  private nextPosition: number[];
  private nextLogits: (Float32Array | null)[];
  private pending: (number[] | null)[];
  /** The rows in the cache's batch, in its order: a finished row leaves it, so it costs nothing after. */
  private slots: number[];
  /** Token positions the model has computed so far, padding included: the sampler's work. */
  fedPositions = 0;

  constructor(
    private readonly model: DecoderModel,
    prompts: number[][],
    options: GenerateOptions = {},
    private readonly decodeText?: (ids: number[]) => string,
    /** With it, a pause string that a token carries past (`</code>.`) is cut after the string. */
    private readonly encodeText?: (text: string) => number[],
  ) {
    this.opts = GenerateOptionsSchema.parse(options);
    const shared = seededRandom(this.opts.seed);
    if (this.opts.perRow && this.opts.perRow.length !== prompts.length) throw new Error('perRow needs one entry per prompt');
    this.rowSampling = prompts.map((_, b) => {
      const own = this.opts.perRow?.[b];
      return own ? { ...own, random: seededRandom(own.seed) } : { ...this.opts, random: shared };
    });
    this.rows = prompts.map((prompt) => ({ prompt, tokens: [], logprobs: [], state: 'active', reason: null, sampled: 0 }));
    this.nextPosition = prompts.map(() => 0);
    this.nextLogits = prompts.map(() => null);
    this.pending = prompts.map((p) => [...p]);
    this.slots = prompts.map((_, b) => b);
    if (prompts.some((p) => p.length === 0)) throw new Error('every prompt needs at least one token');
  }

  /** Queues tokens for a row (fed at the next step) and makes it active again unless done. */
  append(row: number, ids: number[]): void {
    const r = this.rows[row]!;
    r.tokens.push(...ids);
    r.logprobs.push(...ids.map(() => null));
    this.pending[row] = [...(this.pending[row] ?? []), ...ids];
  }

  resume(row: number): void {
    const r = this.rows[row]!;
    if (r.state === 'paused') r.state = 'active';
  }

  finish(row: number): void {
    this.rows[row]!.state = 'done';
  }

  /** Rows the next forward pass computes: the unfinished ones (paused rows keep their place). */
  get batchRows(): number {
    return this.slots.length;
  }

  get hasActive(): boolean {
    return this.rows.some((r) => r.state === 'active');
  }

  /**
   * Drops finished rows from the cache's batch (one gather of the cache along it): otherwise every
   * later step would still compute, and grow the cache for, rows that will never sample again.
   * Paused rows stay: they resume from their cache.
   */
  private dropFinished(): void {
    if (!this.cache || !this.opts.useCache) return;
    const live = this.slots.filter((row) => this.rows[row]!.state !== 'done');
    if (live.length === this.slots.length || live.length === 0) return;
    const old = this.cache;
    this.cache = cacheRows(
      old,
      live.map((row) => this.slots.indexOf(row)),
    );
    disposeCache(old);
    this.slots = live;
  }

  /**
   * Feeds the queued tokens of every row in the cache's batch. When only some rows queued a long
   * span (an interpreter's output) while the rest queued one sampled token, those rows go through
   * the model apart, so the others do not compute a padded copy of the span's length; both parts'
   * caches are then padded to the same length (masked) and put back in batch order.
   */
  private feed(): void {
    this.dropFinished();
    const lengths = this.slots.map((row) => this.pending[row]?.length ?? 0);
    const T = Math.max(...lengths);
    if (T === 0) return;
    const all = this.slots.map((_, b) => b);
    const long = all.filter((b) => lengths[b]! > 1);
    const split = this.opts.useCache && this.opts.raggedPrefill && this.cache !== undefined && T > 1 && long.length < all.length;
    const previous = this.cache;
    if (!split) {
      this.cache = this.pass(all, previous);
    } else {
      const short = all.filter((b) => lengths[b]! <= 1);
      const parts = [long, short].map((at) => {
        const own = cacheRows(previous!, at);
        const grown = this.pass(at, own)!;
        if (grown !== own) disposeCache(own);
        const missing = T - Math.max(...at.map((b) => lengths[b]!));
        if (missing === 0) return grown;
        const padded = padCacheEnd(grown, missing);
        disposeCache(grown);
        return padded;
      });
      const stacked = [...long, ...short];
      this.cache = stackCacheRows(
        parts,
        all.map((b) => stacked.indexOf(b)),
      );
      parts.forEach(disposeCache);
    }
    // The new cache was built by concatenation: the old one is garbage now.
    if (previous && previous !== this.cache) disposeCache(previous);
  }

  /**
   * One forward pass over the cache batch's rows `at` (their queued tokens left-padded to the
   * longest, so every row's last real token sits at the last position), given those rows' cache.
   * Keeps each row's next logits and returns their grown cache (the same one if nothing was queued).
   */
  private pass(at: number[], cache: KVCache | undefined): KVCache | undefined {
    const lengths = at.map((b) => this.pending[this.slots[b]!]?.length ?? 0);
    const T = Math.max(...lengths);
    if (T === 0) return cache;
    const B = at.length;
    const ids: number[][] = [];
    const positions: number[][] = [];
    const valid: number[][] = [];
    for (const b of at) {
      const row = this.slots[b]!;
      const queued = this.pending[row] ?? [];
      const pad = T - queued.length;
      ids.push([...Array(pad).fill(this.opts.padId), ...queued]);
      positions.push(Array.from({ length: T }, (_, t) => (t < pad ? 0 : this.nextPosition[row]! + t - pad)));
      valid.push(Array.from({ length: T }, (_, t) => (t < pad ? 0 : 1)));
    }
    this.fedPositions += B * T;
    let grown = cache;
    const logits = tf.tidy(() => {
      const out = this.opts.useCache
        ? this.model.forward(
            {
              ids: tf.tensor2d(ids, [B, T], 'int32'),
              positions: tf.tensor2d(positions, [B, T], 'int32'),
              valid: tf.tensor2d(valid, [B, T]),
              cache,
            },
            { useCache: true },
          )
        : this.fullForward(ids, valid);
      if (out.cache) {
        grown = out.cache;
        for (const t of [out.cache.positions, out.cache.valid, ...out.cache.k, ...out.cache.v]) tf.keep(t);
      }
      return tf.squeeze(tf.slice(out.logits, [0, out.logits.shape[1] - 1, 0], [B, 1, -1]), [1]);
    });
    const data = logits.dataSync() as Float32Array;
    const V = logits.shape[1]!;
    logits.dispose();
    at.forEach((b, i) => {
      const row = this.slots[b]!;
      if (lengths[i]! > 0) {
        this.nextLogits[row] = data.slice(i * V, (i + 1) * V);
        this.nextPosition[row]! += lengths[i]!;
      }
      this.pending[row] = null;
    });
    return grown;
  }

  /** Without a cache: the whole sequence of every row, every time (kept for comparison). */
  private history: { ids: number[]; valid: number[] }[] | null = null;
  private fullForward(ids: number[][], valid: number[][]) {
    this.history ??= this.rows.map(() => ({ ids: [], valid: [] }));
    ids.forEach((row, b) => {
      this.history![b]!.ids.push(...row);
      this.history![b]!.valid.push(...valid[b]!);
    });
    const B = this.rows.length;
    const S = this.history[0]!.ids.length;
    const positions = this.history.map((h) => {
      let p = 0;
      return h.valid.map((v) => (v ? p++ : 0));
    });
    return this.model.forward({
      ids: tf.tensor2d(
        this.history.map((h) => h.ids),
        [B, S],
        'int32',
      ),
      positions: tf.tensor2d(positions, [B, S], 'int32'),
      valid: tf.tensor2d(
        this.history.map((h) => h.valid),
        [B, S],
      ),
    });
  }

  /** One token for every active row. Returns the rows that changed state. */
  step(): number[] {
    this.feed();
    const changed: number[] = [];
    this.rows.forEach((r, b) => {
      if (r.state !== 'active') return;
      const logits = this.nextLogits[b]!;
      const sampling = this.rowSampling[b]!;
      const token = sampleToken(logits, sampling, sampling.random);
      r.tokens.push(token);
      // Under the temperature sampled at (greedy: 1), as the RL losses compute them.
      r.logprobs.push(logProbOf(logits, token, sampling.temperature > 0 ? sampling.temperature : 1));
      r.sampled += 1;
      this.pending[b] = [token];
      const stop = this.stopReason(r, token, b);
      if (stop) {
        r.reason = stop;
        r.state = stop === 'pause' ? 'paused' : 'done';
        changed.push(b);
      }
    });
    return changed;
  }

  private stopReason(r: Row, token: number, row: number): Row['reason'] {
    if (this.opts.eosIds.includes(token)) return 'eos';
    if (this.opts.pauseIds.includes(token)) return 'pause';
    if (this.opts.pauseStrings.length > 0 && this.decodeText) {
      const longest = Math.max(...this.opts.pauseStrings.map((s) => s.length));
      const tail = this.decodeText(r.tokens.slice(-longest - 8));
      if (this.opts.pauseStrings.some((s) => tail.endsWith(s))) return 'pause';
      // The last token decoded on its own only when a pause string is in view (not every step).
      if (this.encodeText && this.opts.pauseStrings.some((s) => tail.includes(s)) && this.cutAtPauseString(r, token, tail, row))
        return 'pause';
    }
    if (r.sampled >= this.rowSampling[row]!.maxNewTokens) return 'length';
    return null;
  }

  /**
   * A BPE token can carry a pause string and more (`>.` after `</code`): when the string ends
   * inside the last token, that token is replaced by the tokens of its text up to the string's
   * end, so the row pauses exactly there. The last token is not in the cache yet, so only the
   * queue changes; the replacements were not sampled and have no log-prob.
   */
  private cutAtPauseString(r: Row, token: number, tail: string, row: number): boolean {
    const lastText = this.decodeText!([token]);
    const lastStart = tail.length - lastText.length;
    if (lastStart < 0 || !tail.endsWith(lastText)) return false;
    for (const s of this.opts.pauseStrings) {
      const at = tail.indexOf(s, Math.max(0, lastStart - s.length + 1));
      if (at === -1 || at + s.length <= lastStart) continue;
      const kept = this.encodeText!(lastText.slice(0, at + s.length - lastStart));
      r.tokens.splice(-1, 1, ...kept);
      r.logprobs.splice(-1, 1, ...kept.map(() => null));
      this.pending[row] = kept.length > 0 ? kept : null;
      return true;
    }
    return false;
  }

  dispose(): void {
    disposeCache(this.cache);
    this.cache = undefined;
  }
}

/** The tokens that end a reply: the tokenizer's end token and every one config.json lists (Llama 3 lists several). */
export function stopTokenIds(config: DecoderModel['config'], tokenizer: { eosId: number }): number[] {
  const e = config.eos_token_id;
  const listed = e == null ? [] : Array.isArray(e) ? e : [e];
  return [...new Set([tokenizer.eosId, ...listed])];
}

export interface Generation {
  tokens: number[];
  logprobs: number[];
  reason: Row['reason'];
}

/** Plain batched generation: decode until every row ends (a pause ends it too). */
export function generate(
  model: DecoderModel,
  prompts: number[][],
  options: GenerateOptions = {},
  decodeText?: (ids: number[]) => string,
): Generation[] {
  const decoder = new Decoder(model, prompts, options, decodeText);
  try {
    while (decoder.hasActive) decoder.step();
    return decoder.rows.map((r) => ({ tokens: r.tokens, logprobs: r.logprobs.map((l) => l ?? 0), reason: r.reason }));
  } finally {
    decoder.dispose();
  }
}
