// Store-side bookkeeping of pipeline runs: which problem set a run trains on, and the latest good
// model a retraining run starts from (from the pipeline rows of `runs`).
import { BadInputError } from '../domain/errors.js';
import { prepareData } from './prepare.js';
import { importProblems } from './problems-io.js';
import { AIME24_FILE, AIME25_FILE } from './real-data.js';
import { resolveDataset } from './registry.js';
import type { DatasetInfo } from './schemas.js';
import type { Store } from './store.js';
import { resolveTraceDataset } from './traces.js';

export type ProblemSource =
  { source: 'synth'; name: string; count: number; seed: number } | { source: 'stored'; name: string; version?: number };

/**
 * The problem set of a run. Synthetic: the latest version of `name` if it was made with the same
 * count and seed, else a new version (so re-running a preset reuses its data and changing the
 * preset never overwrites). Stored: the given or latest version, which must exist.
 */
export async function ensureProblems(store: Store, data: ProblemSource, requestId: string): Promise<DatasetInfo> {
  if (data.source === 'stored') {
    const ref = data.version ? `${data.name}@${data.version}` : data.name;
    const dataset = await resolveDataset(store, ref);
    if (dataset.kind !== 'problems') throw new BadInputError(`data.name: ${ref} holds ${dataset.kind}, not problems`);
    return dataset;
  }
  const latest = await resolveDataset(store, data.name).catch(() => null);
  const params = (latest?.params ?? {}) as { count?: number; seed?: number };
  if (latest && latest.source === 'synth' && params.count === data.count && params.seed === data.seed) return latest;
  const made = await prepareData(store, {
    source: 'synth',
    name: data.name,
    count: data.count,
    seed: data.seed,
    newVersion: latest !== null,
    requestId,
  });
  return made.dataset;
}

/** The final model of the newest completed (or stopped-early) pipeline run of `arm` on `datasetName`. */
export async function latestGoodModel(
  store: Store,
  datasetName: string,
  arm: 'code' | 'text',
): Promise<{ workflowId: string; model: string; accuracy: number | null } | null> {
  const rows = await store.query<{ run_id: string; model: string; accuracy: number | null }>(
    `SELECT run_id, json_extract_string(summary, '$.finalModel') AS model, CAST(json_extract(summary, '$.accuracy') AS DOUBLE) AS accuracy
     FROM runs
     WHERE kind = 'pipeline' AND status IN ('completed', 'stopped')
       AND json_extract_string(summary, '$.datasetName') = $1 AND json_extract_string(summary, '$.arm') = $2
       AND json_extract_string(summary, '$.finalModel') IS NOT NULL
     ORDER BY finished_at DESC LIMIT 1`,
    [datasetName, arm],
  );
  const r = rows[0];
  return r ? { workflowId: String(r.run_id), model: String(r.model), accuracy: r.accuracy === null ? null : Number(r.accuracy) } : null;
}

/** The benchmarks shipped in datasets/real/ that a pipeline can evaluate on, by name. */
export const BENCHMARKS = { aime24: AIME24_FILE, aime25: AIME25_FILE } as const;
export type BenchmarkName = keyof typeof BENCHMARKS;

/**
 * A shipped benchmark as a problem set in the store (`bench-<name>`, every row in the test split),
 * imported the first time and reused after.
 */
export async function ensureBenchmark(store: Store, name: BenchmarkName, requestId: string): Promise<DatasetInfo> {
  const datasetName = `bench-${name}`;
  const file = BENCHMARKS[name];
  const latest = await resolveDataset(store, datasetName).catch(() => null);
  if (latest && latest.source === `import:${file}`) return latest;
  const made = await importProblems(store, {
    file,
    name: datasetName,
    problemField: 'input',
    answerField: 'output',
    split: 'test',
    newVersion: latest !== null,
    requestId,
  });
  return made.dataset;
}

/**
 * A stored trace dataset as an arm's cold start (`teacher: {kind: stored}`): it must hold verified
 * traces, and a text arm's none with code (the baseline never sees the tool). A code arm's may
 * mix in text traces, as the paper's cold start does.
 */
export async function storedColdStart(store: Store, ref: string, mode: 'code' | 'text'): Promise<{ dataset: DatasetInfo; kept: number }> {
  const key = `teacher.${mode}`;
  const dataset = await resolveTraceDataset(store, ref).catch((err: unknown) => {
    throw err instanceof BadInputError ? new BadInputError(`${key}: ${err.message}`) : err;
  });
  const counts = await store.query<{ mode: string; n: number }>(
    'SELECT mode, CAST(count(*) AS INTEGER) AS n FROM traces WHERE dataset_id = $1 AND verified GROUP BY mode',
    [dataset.id],
  );
  const label = `${dataset.name}@${dataset.version}`;
  const withCode = counts.find((c) => c.mode === 'code')?.n ?? 0;
  if (mode === 'text' && withCode > 0)
    throw new BadInputError(`${key}: ${label} holds ${withCode} verified traces that call code; the text arm trains on text only`);
  const kept = counts.reduce((sum, c) => sum + c.n, 0);
  if (kept === 0) throw new BadInputError(`${key}: ${label} holds no verified traces`);
  return { dataset, kept };
}
