// Rows of any dataset for a person to read, whatever it holds: problems, traces or evaluation samples.
import { readEvaluationRows } from './evaluations.js';
import { readProblems } from './problems-io.js';
import { resolveDataset } from './registry.js';
import { parseDatasetRef } from './schemas.js';
import type { Store } from './store.js';
import { readTraces } from './traces.js';

export async function readDatasetRows(store: Store, refText: string, limit = 10, offset = 0) {
  const ref = parseDatasetRef(refText);
  const dataset = await resolveDataset(store, ref);
  if (dataset.kind === 'traces') return { dataset, rows: await readTraces(store, dataset, { all: true, limit, offset }) };
  if (dataset.kind === 'evaluations') return { dataset, rows: await readEvaluationRows(store, dataset, limit, offset) };
  return readProblems(store, refText, limit, offset);
}
