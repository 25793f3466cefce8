// RL rollouts: one row per trajectory, with its turns (role + text), reward and grade, so a run's
// behaviour can be read back step by step (`retool data show` does not list them: they belong to
// a run, not a dataset; query by run_id and step).
import type { Store } from './store.js';

export interface RolloutRow {
  step: number;
  sampleIdx: number;
  problemId: string;
  response: string;
  turns: { role: string; text: string }[];
  answer: string | null;
  reward: number;
  correct: boolean;
  toolCalls: number;
  responseTokens: number;
}

export async function writeRollouts(store: Store, runId: string, rows: RolloutRow[]): Promise<void> {
  await store.transaction(async () => {
    for (const r of rows) {
      await store.run(
        'INSERT INTO rollouts (run_id, step, sample_idx, problem_id, response, turns, answer, reward, correct, tool_calls, response_tokens) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)',
        [
          runId,
          r.step,
          r.sampleIdx,
          r.problemId,
          r.response,
          JSON.stringify(r.turns),
          r.answer,
          r.reward,
          r.correct,
          r.toolCalls,
          r.responseTokens,
        ],
      );
    }
  });
}

export async function countRollouts(store: Store, runId: string): Promise<{ step: number; rows: number; correct: number }[]> {
  const rows = await store.query<{ step: number; rows: bigint; correct: bigint }>(
    'SELECT step, count(*) AS rows, count(*) FILTER (WHERE correct) AS correct FROM rollouts WHERE run_id = $1 GROUP BY step ORDER BY step',
    [runId],
  );
  return rows.map((r) => ({ step: Number(r.step), rows: Number(r.rows), correct: Number(r.correct) }));
}
