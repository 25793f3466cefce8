// Evaluation samples: one row per (problem, sample), with the response a person can read and the
// per-sample facts the metrics were computed from. An evaluation is also registered as a dataset
// (kind `evaluations`) so `retool data show NAME` reads it like any other.
import { createDataset, resolveDataset, setRowCount } from './registry.js';
import type { DatasetInfo } from './schemas.js';
import type { Store } from './store.js';

export interface EvaluationRow {
  problemId: string;
  sampleIdx: number;
  tools: boolean;
  response: string;
  answer: string | null;
  correct: boolean;
  metrics: Record<string, unknown>;
}

export async function writeEvaluation(
  store: Store,
  spec: { name: string; runId: string; step: number | null; problems: DatasetInfo; params: Record<string, unknown>; newVersion?: boolean },
  rows: EvaluationRow[],
): Promise<DatasetInfo> {
  return store.transaction(async () => {
    const { id, version } = await createDataset(store, {
      name: spec.name,
      kind: 'evaluations',
      source: `eval:${spec.runId}`,
      params: spec.params,
      parents: [{ id: spec.problems.id, relation: 'evaluated' }],
      newVersion: spec.newVersion,
    });
    const evalId = `${spec.name}@${version}`;
    for (const r of rows) {
      await store.run(
        'INSERT INTO evaluations (run_id, eval_id, step, dataset_id, problem_id, sample_idx, tools, response, answer, correct, metrics) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)',
        [
          spec.runId,
          evalId,
          spec.step,
          spec.problems.id,
          r.problemId,
          r.sampleIdx,
          r.tools,
          r.response,
          r.answer,
          r.correct,
          JSON.stringify(r.metrics),
        ],
      );
    }
    await setRowCount(store, id, rows.length);
    return resolveDataset(store, { name: spec.name, version });
  });
}

export async function readEvaluationRows(store: Store, dataset: DatasetInfo, limit: number, offset: number) {
  const rows = await store.query<Record<string, unknown>>(
    `SELECT e.problem_id AS id, e.sample_idx AS sample, e.correct, e.answer, e.response, CAST(e.metrics AS VARCHAR) AS metrics
     FROM evaluations e WHERE e.eval_id = $1 ORDER BY e.problem_id, e.sample_idx LIMIT $2 OFFSET $3`,
    [`${dataset.name}@${dataset.version}`, limit, offset],
  );
  return rows.map((r) => ({ ...r, sample: Number(r.sample), metrics: JSON.parse(String(r.metrics ?? '{}')) }));
}
