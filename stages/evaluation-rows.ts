import type { EvaluationRow } from '../datasets/evaluations.js';
import type { evaluateModel } from '../engine/eval/evaluate.js';

type EvaluatedSample = Awaited<ReturnType<typeof evaluateModel>>['samples'][number];

/** Evaluated samples as the store keeps them, the same for `retool eval` and RL's held-out points. */
export function evaluationRows(samples: EvaluatedSample[], tools: boolean): EvaluationRow[] {
  return samples.map((s) => ({
    problemId: s.problem.id,
    sampleIdx: s.sampleIdx,
    tools,
    response: s.trajectory.response,
    answer: s.answer,
    correct: s.correct,
    metrics: {
      family: s.problem.family,
      level: s.problem.level,
      gold: s.problem.answer,
      stop: s.trajectory.stop,
      responseTokens: s.facts.responseTokens,
      toolCalls: s.trajectory.toolCalls.map((c) => ({ status: c.status, output: c.output })),
    },
  }));
}
