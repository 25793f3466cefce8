// `retool data import FILE --kind traces`: conversation rows from a file (datasets/trace-import.ts)
// through the same two-stage verification as the cold start's, stored as a trace dataset whose
// lineage is the file (its path and SHA-256). Rows without a gold answer are checked for format
// and code (every block re-run must print what the trace recorded) and need an answer, but their
// answer is not graded: nothing to grade it against.
import { resolve } from 'node:path';
import { readConversationRows, TraceImportOptionsSchema, type TraceImportOptions } from '../datasets/trace-import.js';
import type { Store } from '../datasets/store.js';
import { writeTraceDataset, type TraceRow } from '../datasets/traces.js';
import type { Sandbox } from '../engine/sandbox/index.js';
import { TAG } from '../engine/trace/format.js';
import { mapConcurrent } from '../engine/util/concurrency.js';
import { fileSha256 } from '../engine/util/hash.js';
import { rejectedByReason, verifiedTrace } from './verified-trace.js';

export interface TraceImportSummary {
  dataset: string;
  file: string;
  sha256: string;
  rows: number;
  /** Rows that carried a gold answer (their answers were graded). */
  graded: number;
  codeTraces: number;
  kept: number;
  rejected: number;
  rejectedByReason: Record<string, number>;
  seconds: number;
}

export async function importTraces(
  store: Store,
  sandbox: Sandbox,
  options: TraceImportOptions,
  onProgress?: (done: number, total: number) => void,
): Promise<TraceImportSummary> {
  const opts = TraceImportOptionsSchema.parse(options);
  const started = performance.now();
  const conversations = await readConversationRows(store, opts);
  const file = resolve(opts.file);
  const sha256 = await fileSha256(file);
  let done = 0;
  const rows = await mapConcurrent(conversations, opts.concurrency, async (c): Promise<TraceRow> => {
    const mode = c.response.includes(TAG.codeOpen) ? 'code' : 'text';
    const row: TraceRow = {
      problemId: c.id,
      problem: c.problem,
      family: null,
      level: null,
      gold: c.gold,
      mode,
      teacher: 'import',
      ...(await verifiedTrace({ problem: c.problem, response: c.response, gold: c.gold, mode }, sandbox)),
      seededDefect: null,
      selfCorrection: false,
    };
    onProgress?.(++done, conversations.length);
    return row;
  });
  const kept = rows.filter((r) => r.verified).length;
  const counts = {
    rows: rows.length,
    graded: rows.filter((r) => r.gold !== null).length,
    codeTraces: rows.filter((r) => r.mode === 'code').length,
    kept,
    rejected: rows.length - kept,
    rejectedByReason: rejectedByReason(rows),
  };
  const dataset = await writeTraceDataset(
    store,
    {
      name: opts.name,
      source: `import:${file}`,
      newVersion: opts.newVersion,
      params: { file, sha256, messagesField: opts.messagesField, answerField: opts.answerField ?? null, ...counts },
    },
    rows,
  );
  return {
    dataset: `${dataset.name}@${dataset.version}`,
    file,
    sha256,
    ...counts,
    seconds: (performance.now() - started) / 1000,
  };
}
