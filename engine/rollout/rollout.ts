// Multi-turn rollout with the interpreter in the loop: a batch decodes together; a sequence that
// writes `</code>` pauses, its code runs in the sandbox pool while the other sequences keep
// decoding, the rendered output is appended as `<interpreter>` tokens (KV cache kept), and the
// sequence resumes. Every token carries its role, so masks and metrics never re-parse text.
import type { z } from 'zod';
import { RolloutOptionsSchema, type RolloutOptions } from './options.js';
import { Decoder } from '../model/generate.js';
import type { DecoderModel } from '../model/decoder.js';
import { renderForModel, truncateMiddle, type ExecStatus, type Sandbox } from '../sandbox/index.js';
import type { TextTokenizer } from '../tokenizer/types.js';
import { codeBlocks, interpreterBlock, TAG, type Role } from '../trace/format.js';

export interface ToolCall {
  code: string;
  status: ExecStatus;
  /** What the model was shown between the interpreter tags. */
  output: string;
  /** Response token index where the call's `<interpreter>` span starts. */
  atToken: number;
  ms: number;
}

export type StopReason = 'eos' | 'length' | 'context' | 'tool_limit';

export interface Trajectory {
  promptIds: number[];
  /** Response tokens: sampled ones and appended interpreter ones. */
  tokens: number[];
  roles: Role[];
  /** Sampling-policy log-prob of each sampled token; null for interpreter tokens. */
  logprobs: (number | null)[];
  toolCalls: ToolCall[];
  response: string;
  stop: StopReason;
}

export interface RolloutStats {
  sequences: number;
  sampledTokens: number;
  interpreterTokens: number;
  toolCalls: number;
  seconds: number;
  /** Time the sampler sat waiting for a tool call's output: idle on the sandbox. */
  waitSeconds: number;
  /** Token positions the model computed, padding included. */
  fedPositions: number;
}

const tick = () => new Promise<void>((r) => setImmediate(r));

/** The interpreter block for a result, cut until its tokens fit `maxTokens`. */
function interpreterTokens(tokenizer: TextTokenizer, rendered: string, maxTokens: number): number[] {
  let text = rendered;
  let ids = tokenizer.encode(interpreterBlock(text));
  const overhead = tokenizer.encode(interpreterBlock('')).length;
  for (let attempt = 0; ids.length > maxTokens + overhead && attempt < 4; attempt++) {
    const bytes = Buffer.byteLength(text);
    text = truncateMiddle(text, Math.max(16, Math.floor((bytes * maxTokens) / (ids.length - overhead)) - 8));
    ids = tokenizer.encode(interpreterBlock(text));
  }
  return ids;
}

async function rolloutBatch(
  model: DecoderModel,
  tokenizer: TextTokenizer,
  sandbox: Sandbox,
  prompts: number[][],
  o: z.output<typeof RolloutOptionsSchema>,
  stats: RolloutStats,
): Promise<Trajectory[]> {
  const context = Math.min(model.config.max_position_embeddings, o.contextTokens ?? Infinity);
  const closeCode = tokenizer.tokenToId(TAG.codeClose);
  const answerClose = tokenizer.tokenToId(TAG.answerClose);
  const decode = (ids: number[]) => tokenizer.decode(ids);
  const decoder = new Decoder(
    model,
    prompts,
    {
      maxNewTokens: o.maxResponseTokens,
      temperature: o.temperature,
      topP: o.topP,
      seed: o.seed,
      eosIds: [tokenizer.eosId, ...(answerClose === undefined ? [] : [answerClose])],
      pauseIds: o.tools && closeCode !== undefined ? [closeCode] : [],
      pauseStrings: o.tools && closeCode === undefined ? [TAG.codeClose] : [],
      padId: tokenizer.padId,
      raggedPrefill: o.raggedPrefill,
    },
    decode,
    (text) => tokenizer.encode(text),
  );
  const interpreterSpans = prompts.map(() => [] as [number, number][]);
  const toolCalls = prompts.map(() => [] as ToolCall[]);
  const stops: (StopReason | null)[] = prompts.map(() => null);
  // Decoding steps so far: a tool call started at step s is appended at step s + latency, never
  // earlier, and the sampler waits only if it is not done by then. Tying appends to steps, not to
  // when a process happens to finish, keeps a seeded rollout the same run after run.
  let clock = 0;
  const latency = o.overlapTools ? o.toolLatencySteps : 0;
  const inFlight = new Map<number, { due: number; job: Promise<{ ids: number[]; call: ToolCall }> }>();

  const startTool = (row: number) => {
    const r = decoder.rows[row]!;
    const blocks = codeBlocks(decode(r.tokens));
    const code = blocks.at(-1)?.code ?? '';
    const t0 = performance.now();
    const job = sandbox.run({ code, limits: { timeoutMs: o.timeoutMs, memoryMb: o.memoryMb } }).then((result) => {
      const rendered = renderForModel(result);
      return {
        ids: interpreterTokens(tokenizer, rendered, o.maxInterpreterTokens),
        call: { code, status: result.status, output: rendered, atToken: -1, ms: performance.now() - t0 },
      };
    });
    inFlight.set(row, { due: clock + latency, job });
  };

  const endRow = (row: number, why: StopReason) => {
    stops[row] = why;
    decoder.finish(row);
  };

  /** Appends, in row order, every output due by now. */
  const appendDue = async () => {
    const due = [...inFlight].filter(([, t]) => t.due <= clock).sort(([a], [b]) => a - b);
    if (due.length === 0) return;
    const t0 = performance.now();
    const done = await Promise.all(due.map(([, t]) => t.job));
    stats.waitSeconds += (performance.now() - t0) / 1000;
    due.forEach(([row], i) => {
      inFlight.delete(row);
      const { ids, call } = done[i]!;
      const r = decoder.rows[row]!;
      call.atToken = r.tokens.length;
      toolCalls[row]!.push(call);
      if (r.prompt.length + r.tokens.length + ids.length + 1 >= context) return endRow(row, 'context');
      interpreterSpans[row]!.push([r.tokens.length, r.tokens.length + ids.length]);
      decoder.append(row, ids);
      decoder.resume(row);
    });
  };

  try {
    for (;;) {
      await appendDue();
      if (decoder.hasActive) {
        const changed = decoder.step();
        clock += 1;
        for (const row of changed) {
          const r = decoder.rows[row]!;
          if (r.reason === 'pause') {
            if (toolCalls[row]!.length >= o.maxToolCalls) endRow(row, 'tool_limit');
            else startTool(row);
          } else stops[row] = r.reason === 'eos' ? 'eos' : 'length';
        }
        decoder.rows.forEach((r, row) => {
          if (r.state === 'active' && r.prompt.length + r.tokens.length >= context) endRow(row, 'context');
        });
        // Let the sandbox's pipes and timers run between steps.
        await tick();
      } else if (inFlight.size > 0) clock = Math.min(...[...inFlight.values()].map((t) => t.due));
      else break;
    }
  } finally {
    // A rollout that failed midway must not leave its calls' results unobserved.
    await Promise.allSettled([...inFlight.values()].map((t) => t.job));
    stats.fedPositions += decoder.fedPositions;
    decoder.dispose();
  }
  return decoder.rows.map((r, row) => {
    const roles: Role[] = r.tokens.map(() => 'model');
    for (const [a, b] of interpreterSpans[row]!) for (let i = a; i < b; i++) roles[i] = 'interpreter';
    stats.sampledTokens += r.sampled;
    stats.interpreterTokens += roles.filter((x) => x === 'interpreter').length;
    stats.toolCalls += toolCalls[row]!.length;
    return {
      promptIds: r.prompt,
      tokens: r.tokens,
      roles,
      logprobs: r.logprobs,
      toolCalls: toolCalls[row]!,
      response: decode(r.tokens),
      stop: stops[row] ?? 'length',
    };
  });
}

/** Rolls out every prompt (token ids), `batchSize` at a time, in order. */
export async function rollout(
  model: DecoderModel,
  tokenizer: TextTokenizer,
  sandbox: Sandbox,
  prompts: number[][],
  options: RolloutOptions = {},
  onProgress?: (done: number, total: number) => void,
): Promise<{ trajectories: Trajectory[]; stats: RolloutStats }> {
  const o = RolloutOptionsSchema.parse(options);
  const stats: RolloutStats = {
    sequences: prompts.length,
    sampledTokens: 0,
    interpreterTokens: 0,
    toolCalls: 0,
    seconds: 0,
    waitSeconds: 0,
    fedPositions: 0,
  };
  const t0 = performance.now();
  const trajectories: Trajectory[] = [];
  for (let i = 0; i < prompts.length; i += o.batchSize) {
    // Each batch draws from its own stream, so a batch's samples do not depend on the batches before.
    trajectories.push(
      ...(await rolloutBatch(model, tokenizer, sandbox, prompts.slice(i, i + o.batchSize), { ...o, seed: o.seed + i }, stats)),
    );
    onProgress?.(trajectories.length, prompts.length);
  }
  stats.seconds = (performance.now() - t0) / 1000;
  return { trajectories, stats };
}
