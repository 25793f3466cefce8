import { z } from 'zod';
import { findByRequest } from './registry.js';
import { ImportOptionsSchema } from './import-options.js';
import { importProblems } from './problems-io.js';
import { SynthesizeDatasetSchema, isFullySplit, splitDataset, synthesizeDataset, type Progress } from './derive.js';
import type { DatasetInfo } from './schemas.js';
import type { Store } from './store.js';

/** What the data-preparation stage takes: a file to import or synthetic problems to generate. */
export const PrepareDataInputSchema = z.discriminatedUnion('source', [
  SynthesizeDatasetSchema.extend({ source: z.literal('synth') }),
  ImportOptionsSchema.extend({
    source: z.literal('import'),
    /** Share of an unsplit file that goes to the test split. */
    testFraction: z.number().min(0).max(0.9).default(0.2),
  }),
]);
export type PrepareDataInput = z.input<typeof PrepareDataInputSchema>;

export interface PrepareDataResult {
  dataset: DatasetInfo;
  /** The datasets made on the way, oldest first (the import before its split, say). */
  created: { name: string; version: number; source: string }[];
}

/**
 * Import or synthesise, then split what has no split. Idempotent per `requestId`: a retry after a
 * crash picks up the datasets the first attempt committed instead of making them again.
 */
export async function prepareData(store: Store, input: PrepareDataInput, onProgress?: Progress): Promise<PrepareDataResult> {
  const spec = PrepareDataInputSchema.parse(input);
  const created: PrepareDataResult['created'] = [];
  const note = (d: DatasetInfo) => created.push({ name: d.name, version: d.version, source: d.source });
  const existing = (source: string) => (spec.requestId ? findByRequest(store, spec.requestId, source) : Promise.resolve(null));

  let dataset: DatasetInfo;
  if (spec.source === 'synth') {
    const { source: _s, ...synth } = spec;
    dataset = (await existing('synth')) ?? (await synthesizeDataset(store, synth, onProgress));
  } else {
    const { source: _s, testFraction: _t, ...imp } = spec;
    dataset = (await existing('import')) ?? (await importProblems(store, imp)).dataset;
  }
  note(dataset);
  if (!(await isFullySplit(store, dataset))) {
    dataset =
      (await existing('split')) ??
      (await splitDataset(store, {
        dataset: `${dataset.name}@${dataset.version}`,
        testFraction: spec.testFraction,
        requestId: spec.requestId,
      }));
    note(dataset);
  }
  return { dataset, created };
}
