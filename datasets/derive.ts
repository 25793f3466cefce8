import { DuckDBDataChunkWriter } from '@duckdb/node-api';
import { z } from 'zod';
import { BadInputError } from '../domain/errors.js';
import { createDataset, resolveDataset, setRowCount } from './registry.js';
import { DatasetNameSchema, parseDatasetRef, type DatasetInfo } from './schemas.js';
import type { Store } from './store.js';
import { SynthOptionsSchema, synthesize } from '../domain/synth/index.js';

export type Progress = (done: number, total: number) => void;

export const SynthesizeDatasetSchema = SynthOptionsSchema.extend({
  name: DatasetNameSchema,
  newVersion: z.boolean().default(false),
  requestId: z.string().optional(),
});
export type SynthesizeDatasetOptions = z.input<typeof SynthesizeDatasetSchema>;

const PROGRESS_EVERY = 50_000;

/** Generates synthetic problems straight into the store through DuckDB's appender, in one transaction. */
export async function synthesizeDataset(store: Store, options: SynthesizeDatasetOptions, onProgress?: Progress): Promise<DatasetInfo> {
  const { name, newVersion, requestId, ...synth } = SynthesizeDatasetSchema.parse(options);
  return store.transaction(async () => {
    const { id, version } = await createDataset(store, {
      name,
      kind: 'problems',
      source: 'synth',
      params: { ...synth, requestId },
      newVersion,
    });
    const appender = await store.connection.createAppender('problems');
    const writer = DuckDBDataChunkWriter.forAppender(appender);
    let rowIdx = 0;
    try {
      for (const p of synthesize(synth)) {
        writer.appendRow([id, BigInt(rowIdx), p.id, p.problem, p.answer, p.family, p.level, p.split, null]);
        rowIdx += 1;
        if (rowIdx % PROGRESS_EVERY === 0) onProgress?.(rowIdx, synth.count);
      }
      writer.flush();
    } finally {
      appender.closeSync();
    }
    await setRowCount(store, id, rowIdx);
    onProgress?.(rowIdx, synth.count);
    return resolveDataset(store, { name, version });
  });
}

export const SplitDatasetSchema = z.object({
  dataset: z.string().min(1),
  testFraction: z.number().min(0).max(0.9).default(0.2),
  requestId: z.string().optional(),
});

/**
 * Assigns train/test to an unsplit dataset as a new version whose parent is the old one. The
 * split is a function of the problem text (md5), so a problem keeps its side in every version and
 * a duplicate problem can never sit on both sides.
 */
export async function splitDataset(store: Store, options: z.input<typeof SplitDatasetSchema>): Promise<DatasetInfo> {
  const opts = SplitDatasetSchema.parse(options);
  const ref = parseDatasetRef(opts.dataset);
  if (ref.split) throw new BadInputError(`split takes a whole dataset, not "${opts.dataset}"`);
  const parent = await resolveDataset(store, ref);
  if (parent.kind !== 'problems') throw new BadInputError(`${parent.name}@${parent.version} holds ${parent.kind}, not problems`);
  const threshold = Math.floor(opts.testFraction * 2 ** 32);
  return store.transaction(async () => {
    const { id, version } = await createDataset(store, {
      name: parent.name,
      kind: 'problems',
      source: 'split',
      params: { testFraction: opts.testFraction, by: 'md5(problem)', requestId: opts.requestId },
      parents: [{ id: parent.id, relation: 'split' }],
      newVersion: true,
    });
    await store.run(
      `INSERT INTO problems (dataset_id, row_idx, id, problem, answer, family, level, split, extra)
       SELECT ${id}, row_idx, id, problem, answer, family, level,
              CASE WHEN CAST(('0x' || substr(md5(problem), 1, 8)) AS UBIGINT) < ${threshold} THEN 'test' ELSE 'train' END,
              extra
       FROM problems WHERE dataset_id = ${parent.id}`,
    );
    await setRowCount(store, id, parent.rowCount);
    return resolveDataset(store, { name: parent.name, version });
  });
}

/** True when every row already has a split (synthetic data, or a file with a split column). */
export async function isFullySplit(store: Store, dataset: DatasetInfo): Promise<boolean> {
  const rows = await store.query<{ n: bigint }>(`SELECT count(*) AS n FROM problems WHERE dataset_id = ${dataset.id} AND split IS NULL`);
  return Number(rows[0]!.n) === 0;
}
