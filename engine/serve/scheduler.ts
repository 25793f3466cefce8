// Requests that arrive together are decoded together: one Decoder (one forward pass per token
// for the whole batch) over every request queued when a wave starts, each row with its own
// sampling and seed, so a request's text does not depend on what it was batched with. Text is
// handed out as it is decoded (held back while it could be the start of a stop string or a
// partial UTF-8 character). A wave runs to its end; requests that come meanwhile form the next.
import { Decoder } from '../model/generate.js';
import type { DecoderModel } from '../model/decoder.js';
import type { TextTokenizer } from '../tokenizer/types.js';

export interface GenerationJob {
  prompt: number[];
  maxTokens: number;
  temperature: number;
  topP: number;
  seed: number;
  stop: string[];
  /** Streaming: each new piece of text. */
  onText?: (delta: string) => void;
  /** A client that went away: its row stops at the next step. */
  signal?: AbortSignal;
}

export interface GenerationResult {
  text: string;
  promptTokens: number;
  completionTokens: number;
  finishReason: 'stop' | 'length';
}

interface Pending {
  job: GenerationJob;
  resolve: (r: GenerationResult) => void;
  reject: (e: unknown) => void;
}

/**
 * A wave starts once no request has come for QUIET_MS (at most GATHER_MAX_MS after the first):
 * clients that send together are parsed over several milliseconds, and a wave that started
 * without them would make them wait for its whole length.
 */
const QUIET_MS = 10;
const GATHER_MAX_MS = 100;

export class BatchScheduler {
  private queue: Pending[] = [];
  private running = false;
  /** Waves decoded and rows they held, for the server's stats. */
  readonly waves: number[] = [];

  constructor(
    private readonly model: DecoderModel,
    private readonly tokenizer: TextTokenizer,
    private readonly stopIds: number[],
    private readonly maxBatch = 8,
  ) {}

  submit(job: GenerationJob): Promise<GenerationResult> {
    return new Promise((resolve, reject) => {
      this.queue.push({ job, resolve, reject });
      void this.drain();
    });
  }

  private async drain(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      await this.gather();
      while (this.queue.length > 0) {
        const wave = this.queue.splice(0, this.maxBatch);
        try {
          await this.decode(wave);
        } catch (err) {
          for (const p of wave) p.reject(err);
        }
        if (this.queue.length > 0) await this.gather();
      }
    } finally {
      this.running = false;
    }
  }

  private async gather(): Promise<void> {
    const start = performance.now();
    let seen = -1;
    while (this.queue.length !== seen && this.queue.length < this.maxBatch && performance.now() - start < GATHER_MAX_MS) {
      seen = this.queue.length;
      await new Promise((r) => setTimeout(r, QUIET_MS));
    }
  }

  private async decode(wave: Pending[]): Promise<void> {
    this.waves.push(wave.length);
    const decoder = new Decoder(
      this.model,
      wave.map((p) => p.job.prompt),
      {
        eosIds: this.stopIds,
        padId: this.tokenizer.padId,
        perRow: wave.map(({ job }) => ({ temperature: job.temperature, topP: job.topP, seed: job.seed, maxNewTokens: job.maxTokens })),
      },
    );
    const sent = wave.map(() => 0);
    const finished = wave.map(() => false);
    const finish = (b: number, text: string, reason: GenerationResult['finishReason']) => {
      if (finished[b]) return;
      finished[b] = true;
      const p = wave[b]!;
      if (text.length > sent[b]!) p.job.onText?.(text.slice(sent[b]!));
      p.resolve({ text, promptTokens: p.job.prompt.length, completionTokens: decoder.rows[b]!.tokens.length, finishReason: reason });
    };
    try {
      while (decoder.hasActive) {
        decoder.step();
        wave.forEach((p, b) => {
          if (finished[b]) return;
          const row = decoder.rows[b]!;
          const ended = row.state === 'done';
          // Text is needed each token only to stream it or to look for a stop string.
          if (!ended && !p.job.onText && p.job.stop.length === 0 && !p.job.signal?.aborted) return;
          const ids = row.reason === 'eos' ? row.tokens.slice(0, -1) : row.tokens;
          let text = this.tokenizer.decode(ids);
          const stopAt = firstStop(text, p.job.stop);
          if (stopAt !== -1) {
            decoder.finish(b);
            return finish(b, text.slice(0, stopAt), 'stop');
          }
          if (p.job.signal?.aborted) {
            decoder.finish(b);
            return finish(b, text, 'stop');
          }
          if (ended) return finish(b, text, row.reason === 'length' ? 'length' : 'stop');
          text = text.slice(0, text.length - heldBack(text, p.job.stop));
          if (text.length > sent[b]!) {
            p.job.onText?.(text.slice(sent[b]!));
            sent[b] = text.length;
          }
        });
        // Between tokens, the server reads new requests and flushes streamed text.
        await new Promise((r) => setImmediate(r));
      }
    } finally {
      decoder.dispose();
    }
  }
}

function firstStop(text: string, stops: string[]): number {
  let first = -1;
  for (const s of stops) {
    const at = text.indexOf(s);
    if (at !== -1 && (first === -1 || at < first)) first = at;
  }
  return first;
}

/** Characters at the end that must wait: a partial UTF-8 character, or the start of a stop string. */
function heldBack(text: string, stops: string[]): number {
  let hold = text.endsWith('\uFFFD') ? 1 : 0;
  for (const s of stops)
    for (let n = Math.min(s.length - 1, text.length); n > hold; n--)
      if (text.endsWith(s.slice(0, n))) {
        hold = n;
        break;
      }
  return hold;
}
