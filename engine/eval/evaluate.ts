// Evaluation's engine half: roll out k samples per problem, grade the final \boxed{} answers and
// compute the paper's metrics. No store: the eval stage and RL's periodic evaluation both call it.
import type { z } from 'zod';
import type { ProblemRow } from '../../domain/problem.js';
import type { DecoderModel } from '../model/decoder.js';
import type { RolloutOptionsSchema } from '../rollout/options.js';
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

/** Rolls out and grades; no store. The engine piece RL reuses for its periodic evaluation. */
export async function evaluateModel(
  model: DecoderModel,
  tokenizer: TextTokenizer,
  sandbox: Sandbox,
  problems: ProblemRow[],
  options: z.input<typeof RolloutOptionsSchema> & { samples?: number },
  onProgress?: (done: number, total: number) => void,
) {
  const k = options.samples ?? 1;
  const jobs = problems.flatMap((p) => Array.from({ length: k }, (_, s) => ({ p, s })));
  const prompts = jobs.map(({ p }) => tokenizer.encode(promptText(tokenizer, p.problem)));
  const { trajectories, stats } = await rollout(model, tokenizer, sandbox, prompts, options, onProgress);
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
