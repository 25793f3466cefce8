// Trace datasets: the cold-start stage's output. One row per trace, kept or rejected, with the
// reason and stage of a rejection, so a person can see what the teacher got wrong.
import { DuckDBDataChunkWriter } from '@duckdb/node-api';
import { BadInputError } from '../domain/errors.js';
import { createDataset, resolveDataset, setRowCount } from './registry.js';
import { parseDatasetRef, type DatasetInfo } from './schemas.js';
import type { Store } from './store.js';

export interface TraceRow {
  problemId: string;
  problem: string;
  family: string | null;
  level: number | null;
  /** Null for imported traces that came without answers. */
  gold: string | null;
  mode: 'code' | 'text';
  teacher: string;
  /** The model's turn (what follows the prompt). */
  response: string;
  segments: { role: string; text: string }[];
  verified: boolean;
  rejectStage: string | null;
  rejectReason: string | null;
  rejectDetail: string | null;
  /** The answer the trace gives (its last \boxed{}), if any. */
  answer: string | null;
  seededDefect: string | null;
  selfCorrection: boolean;
}

export interface NewTraceDataset {
  name: string;
  /** The problems the teacher wrote for; an imported file has none (its path and hash are in params). */
  parent?: DatasetInfo;
  /** `cold-start` (a teacher's) or `import:<file>`. */
  source?: string;
  params: Record<string, unknown>;
  newVersion?: boolean;
}

/** Writes a whole trace dataset in one transaction: it appears complete or not at all. */
export async function writeTraceDataset(store: Store, spec: NewTraceDataset, rows: TraceRow[]): Promise<DatasetInfo> {
  return store.transaction(async () => {
    const { id, version } = await createDataset(store, {
      name: spec.name,
      kind: 'traces',
      source: spec.source ?? 'cold-start',
      params: spec.params,
      parents: spec.parent ? [{ id: spec.parent.id, relation: 'cold-start' }] : [],
      newVersion: spec.newVersion,
    });
    const appender = await store.connection.createAppender('traces');
    const writer = DuckDBDataChunkWriter.forAppender(appender);
    try {
      rows.forEach((r, i) => {
        writer.appendRow([
          id,
          BigInt(i),
          r.problemId,
          r.mode,
          r.teacher,
          r.response,
          JSON.stringify(r.segments),
          r.verified,
          r.rejectReason,
          r.answer,
          r.problem,
          r.family,
          r.level,
          r.gold,
          r.rejectStage,
          r.rejectDetail,
          r.seededDefect,
          r.selfCorrection,
        ]);
      });
      writer.flush();
    } finally {
      appender.closeSync();
    }
    await setRowCount(store, id, rows.length);
    return resolveDataset(store, { name: spec.name, version });
  });
}

export async function resolveTraceDataset(store: Store, refText: string): Promise<DatasetInfo> {
  const dataset = await resolveDataset(store, parseDatasetRef(refText));
  if (dataset.kind !== 'traces')
    throw new BadInputError(`${dataset.name}@${dataset.version} holds ${dataset.kind}, not traces (make some with \`retool synth\`)`);
  return dataset;
}

export interface StoredTrace {
  problemId: string;
  problem: string;
  family: string | null;
  level: number | null;
  mode: 'code' | 'text';
  response: string;
  verified: boolean;
  rejectReason: string | null;
}

/** The traces of a dataset in stored order; only the verified ones unless `all`. */
export async function readTraces(
  store: Store,
  dataset: DatasetInfo,
  { all = false, limit, offset = 0 }: { all?: boolean; limit?: number; offset?: number } = {},
): Promise<StoredTrace[]> {
  const rows = await store.query<Record<string, unknown>>(
    `SELECT problem_id, problem, family, level, mode, text, verified, reject_reason FROM traces
     WHERE dataset_id = $1 ${all ? '' : 'AND verified'} ORDER BY row_idx ${limit === undefined ? '' : `LIMIT ${Math.floor(limit)}`} OFFSET ${Math.floor(offset)}`,
    [dataset.id],
  );
  return rows.map((r) => ({
    problemId: String(r.problem_id),
    problem: String(r.problem ?? ''),
    family: r.family === null ? null : String(r.family),
    level: r.level === null ? null : Number(r.level),
    mode: r.mode === 'text' ? 'text' : 'code',
    response: String(r.text),
    verified: Boolean(r.verified),
    rejectReason: r.reject_reason === null ? null : String(r.reject_reason),
  }));
}
