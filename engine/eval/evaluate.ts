// Evaluation's engine half: roll out k samples per problem, grade the final \boxed{} answers and
// compute the paper's metrics. No store: the eval stage and RL's periodic evaluation both call it.
import type { z } from 'zod';
import type { ProblemRow } from '../../domain/problem.js';
import type { DecoderModel } from '../model/decoder.js';
import { RolloutOptionsSchema } from '../rollout/options.js';
import { rollout, type Trajectory } from '../rollout/rollout.js';
import type { Sandbox } from '../sandbox/index.js';
import type { TextTokenizer } from '../tokenizer/types.js';
import { codeBlocks, gradeModelAnswer, TAG } from '../trace/format.js';
import { promptText } from '../trace/prompt.js';
import { classifyCode } from './code-purpose.js';
import { codeLineCount, evalMetrics, type SampleFacts } from './metrics.js';

/** The per-sample facts the metrics need, read from the trajectory's tokens and roles. */
export function sampleFacts(
  t: Trajectory,
  tokenizer: TextTokenizer,
  problem: Pick<ProblemRow, 'id' | 'family' | 'level'>,
  correct: boolean,
): SampleFacts {
  const blocks = codeBlocks(t.response);
  const codeOpen = tokenizer.tokenToId(TAG.codeOpen);
  let firstCodeToken: number | null = null;
  if (blocks.length > 0) {
    firstCodeToken =
      codeOpen !== undefined ? t.tokens.indexOf(codeOpen) : tokenizer.encode(t.response.slice(0, t.response.indexOf(TAG.codeOpen))).length;
    if (firstCodeToken < 0) firstCodeToken = null;
  }
  return {
    problemId: problem.id,
    family: problem.family,
    level: problem.level,
    correct,
    responseTokens: t.tokens.length,
    firstCodeToken,
    codeBlocks: blocks.map((b, i) => ({
      lines: codeLineCount(b.code),
      ok: t.toolCalls[i] ? t.toolCalls[i]!.status === 'ok' : null,
      purpose: classifyCode(b.code),
    })),
  };
}

/** A run of the evaluation's sequences (problem-major: each problem's k samples in a row), [from, to). */
export interface SampleRange {
  from: number;
  to: number;
}

/**
 * The evaluation's sequences cut into at most `shards` ranges for workers to decode apart. Cuts
 * fall on multiples of the rollout batch: each batch samples from its own stream, seeded by the
 * run's seed plus the index of its first sequence, so shard by shard the sequences decode exactly
 * as in one run, whatever the number of shards.
 */
export function shardRanges(sequences: number, batchSize: number, shards: number): SampleRange[] {
  const batches = Math.ceil(sequences / batchSize);
  const n = Math.max(1, Math.min(shards, batches));
  return Array.from({ length: n }, (_, i) => ({
    from: Math.min(sequences, Math.floor((i * batches) / n) * batchSize),
    to: Math.min(sequences, Math.floor(((i + 1) * batches) / n) * batchSize),
  }));
}

/**
 * Rolls out and grades; no store. The engine piece RL reuses for its periodic evaluation. With
 * `range`, only those sequences (a shard), decoded as the whole run would decode them.
 */
export async function evaluateModel(
  model: DecoderModel,
  tokenizer: TextTokenizer,
  sandbox: Sandbox,
  problems: ProblemRow[],
  options: z.input<typeof RolloutOptionsSchema> & { samples?: number },
  onProgress?: (done: number, total: number) => void,
  range?: SampleRange,
) {
  const k = options.samples ?? 1;
  const all = problems.flatMap((p) => Array.from({ length: k }, (_, s) => ({ p, s })));
  const { seed, batchSize } = RolloutOptionsSchema.parse(options);
  const from = range?.from ?? 0;
  if (from % batchSize !== 0) throw new Error(`a shard starts at sequence ${from}, not a multiple of the rollout batch (${batchSize})`);
  const jobs = all.slice(from, range?.to ?? all.length);
  const prompts = jobs.map(({ p }) => tokenizer.encode(promptText(tokenizer, p.problem)));
  const { trajectories, stats } = await rollout(model, tokenizer, sandbox, prompts, { ...options, seed: seed + from }, onProgress);
  const samples = trajectories.map((t, i) => {
    const { p, s } = jobs[i]!;
    const graded = gradeModelAnswer(t.response, p.answer);
    return {
      problem: p,
      sampleIdx: s,
      trajectory: t,
      correct: graded.correct,
      answer: graded.extracted,
      facts: sampleFacts(t, tokenizer, p, graded.correct),
    };
  });
  return { samples, stats, metrics: evalMetrics(samples.map((s) => s.facts)) };
}
