// `retool bench data`: rows/s to synthesise, import JSONL and export Parquet/JSONL, medians of
// repeated runs, against a baseline in the same run (Node's line reader + JSON.parse + appender).
import { createReadStream, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir, cpus } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { DuckDBDataChunkWriter } from '@duckdb/node-api';
import { synthesizeDataset } from '../datasets/derive.js';
import { exportProblems, importProblems } from '../datasets/problems-io.js';
import { withStore, type Store } from '../datasets/store.js';
import { median } from './stats.js';

export interface BenchDataOptions {
  rows: number;
  repeats: number;
  onProgress?: (what: string) => void;
}

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return (performance.now() - t0) / 1000;
}

/** The naive path this project does not take: parse every line in JS and append it. */
async function naiveImport(store: Store, file: string): Promise<number> {
  await store.run('CREATE OR REPLACE TEMP TABLE naive_import (id VARCHAR, problem VARCHAR, answer VARCHAR)');
  const appender = await store.connection.createAppender('naive_import');
  const writer = DuckDBDataChunkWriter.forAppender(appender);
  let n = 0;
  for await (const line of createInterface({ input: createReadStream(file) })) {
    if (!line) continue;
    const row = JSON.parse(line) as { id: string; problem: string; answer: string };
    writer.appendRow([row.id, row.problem, String(row.answer)]);
    n += 1;
  }
  writer.flush();
  appender.closeSync();
  return n;
}

export async function benchData({ rows, repeats, onProgress }: BenchDataOptions) {
  const home = mkdtempSync(join(tmpdir(), 'retool-bench-data-'));
  const jsonl = join(home, 'problems.jsonl');
  const parquet = join(home, 'problems.parquet');
  const times: Record<string, number[]> = {
    synthesize: [],
    import_jsonl: [],
    export_parquet: [],
    export_jsonl: [],
    naive_import_jsonl: [],
  };
  let synthRows = 0;
  try {
    await withStore(home, async (store) => {
      for (let r = 0; r < repeats; r++) {
        const newVersion = r > 0;
        onProgress?.(`synthesize ${rows} (run ${r + 1}/${repeats})`);
        times.synthesize!.push(
          await timed(async () => {
            synthRows = (await synthesizeDataset(store, { name: 'bench-synth', count: rows, seed: r, newVersion })).rowCount;
          }),
        );
        onProgress?.(`export jsonl (run ${r + 1}/${repeats})`);
        times.export_jsonl!.push(await timed(() => exportProblems(store, `bench-synth@${r + 1}`, jsonl)));
        onProgress?.(`import jsonl (run ${r + 1}/${repeats})`);
        times.import_jsonl!.push(await timed(() => importProblems(store, { file: jsonl, name: 'bench-import', newVersion })));
        onProgress?.(`export parquet (run ${r + 1}/${repeats})`);
        times.export_parquet!.push(await timed(() => exportProblems(store, `bench-import@${r + 1}`, parquet)));
        onProgress?.(`naive import (run ${r + 1}/${repeats})`);
        times.naive_import_jsonl!.push(await timed(() => naiveImport(store, jsonl)));
      }
    });
    const summary = Object.fromEntries(
      Object.entries(times).map(([k, ts]) => [
        k,
        { median_s: +median(ts).toFixed(3), rows_per_s: Math.round(synthRows / median(ts)), runs_s: ts.map((t) => +t.toFixed(3)) },
      ]),
    );
    const importRate = summary.import_jsonl!.rows_per_s;
    return {
      bench: 'data',
      rows: synthRows,
      repeats,
      machine: { cpus: cpus().length, cpu: cpus()[0]?.model ?? 'unknown', node: process.version },
      jsonl_bytes: statSync(jsonl).size,
      parquet_bytes: statSync(parquet).size,
      results: summary,
      import_vs_naive: +(importRate / summary.naive_import_jsonl!.rows_per_s).toFixed(2),
      goal: { import_rows_per_s: 200_000, met: importRate >= 200_000 },
    };
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
}
