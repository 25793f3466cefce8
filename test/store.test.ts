/**
 * The DuckDB dataset store against real files: migrations, imports in every format, exports read
 * back by independent readers (JSON.parse, pandas), versions and lineage, input validation that
 * writes nothing, synthetic data, idempotent preparation and the cross-process file lock.
 *
 * Expected values come from the input files written here (or parsed here from the AIME file),
 * never from the code under test.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { splitDataset, synthesizeDataset } from '../datasets/derive.js';
import { BadInputError, StoreBusyError } from '../domain/errors.js';
import { MIGRATIONS, SCHEMA_VERSION } from '../datasets/migrations.js';
import { prepareData } from '../datasets/prepare.js';
import type { ImportOptions } from '../datasets/import-options.js';
import { exportProblems, importProblems, readProblems } from '../datasets/problems-io.js';
import { AIME24_FILE } from '../datasets/real-data.js';
import { listDatasets, resolveDataset } from '../datasets/registry.js';
import { Store, sqlString, withStore, type OpenOptions } from '../datasets/store.js';
import {
  TempDirs,
  arithmeticRows,
  holdLockInChild,
  jsonl,
  killAndWait,
  probeOpenFromChild,
  readJsonLines,
  readParquetWithPandas,
  rejectionOf,
  writeFile,
} from './helpers/store-fixtures.js';

// ---------------------------------------------------------------------------------------------
// Per-test store home and data directory, and small query helpers
// ---------------------------------------------------------------------------------------------

const dirs = new TempDirs();
const openStores: Store[] = [];
/** The store home (holds retool.duckdb). */
let home: string;
/** Where a test writes its input files and exports (kept apart from the store home). */
let data: string;

beforeEach(() => {
  home = dirs.make('retool-store-home-');
  data = dirs.make('retool-store-data-');
});

afterEach(() => {
  for (const store of openStores.splice(0)) store.close();
  dirs.cleanup();
});

async function openStore(options?: OpenOptions): Promise<Store> {
  const store = await Store.open(home, options);
  openStores.push(store);
  return store;
}

function dbFile(): string {
  return join(home, 'retool.duckdb');
}

interface Counts {
  datasets: number;
  problems: number;
  parents: number;
  tempTables: number;
}

async function counts(store: Store): Promise<Counts> {
  const [row] = await store.query<Record<keyof Counts, bigint>>(
    `SELECT (SELECT count(*) FROM datasets) AS datasets, (SELECT count(*) FROM problems) AS problems,
            (SELECT count(*) FROM dataset_parents) AS parents,
            (SELECT count(*) FROM duckdb_tables() WHERE temporary) AS "tempTables"`,
  );
  return {
    datasets: Number(row!.datasets),
    problems: Number(row!.problems),
    parents: Number(row!.parents),
    tempTables: Number(row!.tempTables),
  };
}

const NOTHING: Counts = { datasets: 0, problems: 0, parents: 0, tempTables: 0 };

type StoredRow = {
  id: string;
  problem: string;
  answer: string;
  family: string | null;
  level: number | null;
  split: string | null;
};

/** The rows of `name@version` in stored order, read with plain SQL. */
async function storedRows(store: Store, name: string, version: number): Promise<StoredRow[]> {
  const rows = await store.query<StoredRow>(
    `SELECT p.id, p.problem, p.answer, p.family, p.level, p.split
       FROM problems p JOIN datasets d ON d.id = p.dataset_id
      WHERE d.name = $1 AND d.version = $2 ORDER BY p.row_idx`,
    [name, version],
  );
  return rows.map((r) => ({ ...r, level: r.level === null ? null : Number(r.level) }));
}

const pick = (row: Record<string, unknown>, keys: readonly string[]) => Object.fromEntries(keys.map((k) => [k, row[k] ?? null]));
const ROW_KEYS = ['id', 'problem', 'answer', 'split', 'family', 'level'] as const;

/** A small file with every column the store knows, plus one extra (`source`). */
const FULL_ROWS = [
  { id: 'q1', problem: 'What is 1 + 1?', answer: '2', split: 'train', family: 'arith', level: 1, source: 'book-a' },
  { id: 'q2', problem: 'What is 2 + 3?', answer: '5', split: 'test', family: 'arith', level: 2, source: 'book-a' },
  { id: 'q3', problem: 'How many primes are below 10?', answer: '4', split: 'train', family: 'primes', level: 1, source: 'book-b' },
  { id: 'q4', problem: 'What is 7 * 6?', answer: '42', split: 'test', family: 'arith', level: 3, source: 'book-c' },
  { id: 'q5', problem: 'What is 10 choose 3?', answer: '120', split: 'train', family: 'combinatorics', level: 4, source: 'book-b' },
] as const;

// ---------------------------------------------------------------------------------------------

describe('opening the store and migrations', () => {
  it('a new store is at SCHEMA_VERSION with one schema_migrations row per migration', async () => {
    const store = await openStore();
    expect(await store.schemaVersion()).toBe(SCHEMA_VERSION);
    const rows = await store.query<{ version: number; name: string }>('SELECT version, name FROM schema_migrations ORDER BY version');
    expect(rows).toEqual(MIGRATIONS.map((m) => ({ version: m.version, name: m.name })));
  });

  it('reopening does not apply the migrations again', async () => {
    const first = await Store.open(home);
    const before = await first.query('SELECT version, name, CAST(applied_at AS VARCHAR) AS at FROM schema_migrations ORDER BY version');
    first.close();

    const again = await openStore();
    expect(await again.schemaVersion()).toBe(SCHEMA_VERSION);
    const after = await again.query('SELECT version, name, CAST(applied_at AS VARCHAR) AS at FROM schema_migrations ORDER BY version');
    expect(after).toEqual(before);
    expect(after).toHaveLength(MIGRATIONS.length);
  });

  it('a store with a schema version newer than this code refuses to open', async () => {
    const store = await Store.open(home);
    await store.run('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [SCHEMA_VERSION + 1, 'from-the-future']);
    store.close();

    for (let attempt = 0; attempt < 2; attempt++) {
      const err = await rejectionOf(Store.open(home, { waitForLockMs: 500 }));
      expect(err).toBeInstanceOf(BadInputError);
      expect(err.message).toContain('newer');
      expect(err.message).toContain(String(SCHEMA_VERSION + 1));
    }
  });

  it('a store that failed to open does not keep the file locked against other processes', async () => {
    const store = await Store.open(home);
    await store.run('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [SCHEMA_VERSION + 1, 'from-the-future']);
    store.close();
    expect(await rejectionOf(Store.open(home, { waitForLockMs: 500 }))).toBeInstanceOf(BadInputError);

    expect(await probeOpenFromChild(dbFile())).toBe('opened');
  });

  it('stores on the same file share one instance; the file is released when the last one closes', async () => {
    const a = await Store.open(home);
    const b = await Store.open(home);
    a.close();
    a.close(); // closing twice is harmless and must not release b's reference
    expect(await b.schemaVersion()).toBe(SCHEMA_VERSION);
    b.close();
    expect(await probeOpenFromChild(dbFile())).toBe('opened');

    expect(await withStore(home, (s) => s.schemaVersion())).toBe(SCHEMA_VERSION);
    expect(await probeOpenFromChild(dbFile())).toBe('opened');
  });

  it('opens racing in one process share one instance: waves of concurrent open-write-close lose no row', async () => {
    // DuckDB's file lock is per process; two instances opened at once in one process would both
    // write the file (seen as "Could not read enough bytes" when two arms trained side by side).
    const opened = await Promise.all(Array.from({ length: 6 }, () => Store.open(home)));
    expect(new Set(opened.map((s) => (s as unknown as { connection: unknown }).connection)).size).toBe(6);
    for (const s of opened) s.close();
    await withStore(home, (s) => s.run('CREATE TABLE race (i INTEGER)'));
    for (let wave = 0; wave < 6; wave++) {
      await Promise.all(Array.from({ length: 8 }, (_, i) => withStore(home, (s) => s.run('INSERT INTO race VALUES ($1)', [wave * 8 + i]))));
    }
    const rows = await withStore(home, (s) => s.query<{ n: bigint; d: bigint }>('SELECT count(*) AS n, count(DISTINCT i) AS d FROM race'));
    expect([Number(rows[0]!.n), Number(rows[0]!.d)]).toEqual([48, 48]);
    expect(await probeOpenFromChild(dbFile())).toBe('opened');
  });

  it('transaction() writes all or nothing', async () => {
    const store = await openStore();
    const boom = new Error('boom');
    const err = await rejectionOf(
      store.transaction(async () => {
        await store.run(`INSERT INTO datasets (name, version, kind, source) VALUES ('t', 1, 'problems', 'test')`);
        throw boom;
      }),
    );
    expect(err).toBe(boom);
    expect((await counts(store)).datasets).toBe(0);

    await store.transaction(async () => {
      await store.run(`INSERT INTO datasets (name, version, kind, source) VALUES ('t', 1, 'problems', 'test')`);
    });
    expect((await counts(store)).datasets).toBe(1);
  });
});

// ---------------------------------------------------------------------------------------------

describe('importing AIME 2024', () => {
  it('imports all 30 rows with the problems and answers of the file, in file order, as the test split', async () => {
    const expected = readFileSync(AIME24_FILE, 'utf8')
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => JSON.parse(l) as { input: string; output: string | number });
    expect(expected).toHaveLength(30);

    const store = await openStore();
    const { dataset } = await importProblems(store, {
      file: AIME24_FILE,
      name: 'aime24',
      problemField: 'input',
      answerField: 'output',
      split: 'test',
    });
    expect(dataset.name).toBe('aime24');
    expect(dataset.version).toBe(1);
    expect(dataset.kind).toBe('problems');
    expect(dataset.rowCount).toBe(30);
    expect(dataset.splits).toEqual({ test: 30 });
    expect(dataset.parents).toEqual([]);

    const rows = await storedRows(store, 'aime24', 1);
    expect(rows.map((r) => ({ problem: r.problem, answer: r.answer }))).toEqual(
      expected.map((e) => ({ problem: e.input, answer: String(e.output) })),
    );
    expect(rows.every((r) => r.split === 'test')).toBe(true);
    expect(new Set(rows.map((r) => r.id)).size).toBe(30);

    const shown = await readProblems(store, 'aime24:test', 100);
    expect(shown.rows).toHaveLength(30);
    expect(shown.rows[29]!.problem).toBe(expected[29]!.input);
  });
});

// ---------------------------------------------------------------------------------------------

describe('import formats', () => {
  it('JSONL: known columns are mapped and the other fields are kept in extra', async () => {
    const file = writeFile(data, 'full.jsonl', jsonl(FULL_ROWS));
    const store = await openStore();
    const { dataset } = await importProblems(store, { file, name: 'full' });
    expect(dataset.rowCount).toBe(5);
    expect(dataset.splits).toEqual({ train: 3, test: 2 });

    expect(await storedRows(store, 'full', 1)).toEqual(FULL_ROWS.map((r) => pick(r, ROW_KEYS)));
    const shown = await readProblems(store, 'full', 10);
    expect(shown.rows.map((r) => r.extra)).toEqual(FULL_ROWS.map((r) => ({ source: r.source })));
  });

  it('JSON array file', async () => {
    const rows = [
      { problem: 'Find x if 2x = 10.', answer: '5', topic: 'algebra', points: 3 },
      { problem: 'Find y if y - 4 = 9.', answer: '13', topic: 'algebra', points: 1 },
      { problem: 'What is 3^4?', answer: '81', topic: 'powers', points: 2 },
    ];
    const file = writeFile(data, 'array.json', JSON.stringify(rows, null, 2));
    const store = await openStore();
    const { dataset } = await importProblems(store, { file, name: 'array' });
    expect(dataset.rowCount).toBe(3);
    expect(dataset.splits).toEqual({ none: 3 });

    const shown = await readProblems(store, 'array', 10);
    expect(shown.rows.map((r) => [r.problem, r.answer, r.split])).toEqual(rows.map((r) => [r.problem, r.answer, null]));
    expect(shown.rows.map((r) => r.extra)).toEqual(rows.map((r) => ({ topic: r.topic, points: r.points })));
  });

  it('CSV with a quoted field holding a comma and a newline', async () => {
    const csv =
      'id,problem,answer,note\n' +
      'c1,"Alice, Bob and Carol share 12 apples.\nHow many does each get?",4,"a, b"\n' +
      'c2,What is 9 + 10?,19,plain\n' +
      'c3,"He said ""hello"" twice. How many words?",2,\n';
    const file = writeFile(data, 'quoted.csv', csv);
    const store = await openStore();
    const { dataset } = await importProblems(store, { file, name: 'quoted', split: 'train' });
    expect(dataset.rowCount).toBe(3);
    expect(dataset.splits).toEqual({ train: 3 });

    const shown = await readProblems(store, 'quoted', 10);
    expect(shown.rows.map((r) => [r.id, r.problem, r.answer])).toEqual([
      ['c1', 'Alice, Bob and Carol share 12 apples.\nHow many does each get?', '4'],
      ['c2', 'What is 9 + 10?', '19'],
      ['c3', 'He said "hello" twice. How many words?', '2'],
    ]);
    expect(shown.rows.map((r) => r.extra)).toEqual([{ note: 'a, b' }, { note: 'plain' }, { note: null }]);
  });

  it('Parquet file written by DuckDB', async () => {
    const file = join(data, 'made.parquet');
    const store = await openStore();
    await store.run(
      `COPY (SELECT * FROM (VALUES
          ('p1', 'What is 6 / 2?', '3', 'test', 7),
          ('p2', 'What is 5 - 8?', '-3', 'train', 8),
          ('p3', 'What is 0.5 + 0.25?', '0.75', 'train', 9)
        ) AS t(id, problem, answer, split, difficulty) ORDER BY id)
       TO ${sqlString(file)} (FORMAT PARQUET)`,
    );
    const { dataset } = await importProblems(store, { file, name: 'made' });
    expect(dataset.rowCount).toBe(3);
    expect(dataset.splits).toEqual({ test: 1, train: 2 });

    const shown = await readProblems(store, 'made', 10);
    expect(shown.rows.map((r) => [r.id, r.problem, r.answer, r.split])).toEqual([
      ['p1', 'What is 6 / 2?', '3', 'test'],
      ['p2', 'What is 5 - 8?', '-3', 'train'],
      ['p3', 'What is 0.5 + 0.25?', '0.75', 'train'],
    ]);
    expect(shown.rows.map((r) => r.extra)).toEqual([{ difficulty: 7 }, { difficulty: 8 }, { difficulty: 9 }]);
  });

  it('an integer answer beyond 2^64 written as a bare JSON number keeps every digit', async () => {
    const beyond64 = '36893488147419103232123'; // > 2^64 (1.8e19), < 2^128
    const beyond128 = '123456789012345678901234567890123456789012345'; // > 2^128 too
    const file = writeFile(
      data,
      'big.jsonl',
      `{"problem": "Big one", "answer": ${beyond64}}\n{"problem": "Bigger one", "answer": ${beyond128}}\n{"problem": "Small one", "answer": 7}\n`,
    );
    const store = await openStore();
    await importProblems(store, { file, name: 'big' });
    expect((await storedRows(store, 'big', 1)).map((r) => r.answer)).toEqual([beyond64, beyond128, '7']);
  });
});

// ---------------------------------------------------------------------------------------------

describe('export', () => {
  async function storeWithFullRows(): Promise<Store> {
    const store = await openStore();
    await importProblems(store, { file: writeFile(data, 'full.jsonl', jsonl(FULL_ROWS)), name: 'full' });
    return store;
  }
  const testRows = FULL_ROWS.filter((r) => r.split === 'test');

  it('JSONL of a whole dataset and of NAME:test', async () => {
    const store = await storeWithFullRows();
    const all = await exportProblems(store, 'full', join(data, 'all.jsonl'));
    expect(all.rows).toBe(5);
    const lines = readJsonLines(join(data, 'all.jsonl'));
    expect(lines.map((l) => pick(l, ROW_KEYS))).toEqual(FULL_ROWS.map((r) => pick(r, ROW_KEYS)));
    expect(lines.map((l) => l.extra)).toEqual(FULL_ROWS.map((r) => ({ source: r.source })));

    const test = await exportProblems(store, 'full:test', join(data, 'test.jsonl'));
    expect(test.rows).toBe(2);
    expect(readJsonLines(join(data, 'test.jsonl')).map((l) => pick(l, ROW_KEYS))).toEqual(testRows.map((r) => pick(r, ROW_KEYS)));
  });

  it('Parquet of a whole dataset and of NAME:test, read back with pandas', async () => {
    const store = await storeWithFullRows();
    await exportProblems(store, 'full', join(data, 'all.parquet'));
    const all = await readParquetWithPandas(join(data, 'all.parquet'));
    expect(all.columns).toEqual(expect.arrayContaining([...ROW_KEYS]));
    expect(all.rows).toEqual(FULL_ROWS.map((r) => pick(r, ROW_KEYS)));

    const exported = await exportProblems(store, 'full@1:test', join(data, 'test.parquet'));
    expect(exported.rows).toBe(2);
    const test = await readParquetWithPandas(join(data, 'test.parquet'));
    expect(test.rows).toEqual(testRows.map((r) => pick(r, ROW_KEYS)));
  });

  it('a failed export leaves no file and no temp file behind', async () => {
    const store = await storeWithFullRows();
    const missingDir = join(data, 'no-such-dir');
    const out = join(missingDir, 'out.parquet');
    const err = await rejectionOf(exportProblems(store, 'full', out));
    expect(err).toBeInstanceOf(BadInputError);
    expect(err.message).toContain(out);
    expect(existsSync(out)).toBe(false);
    expect(existsSync(missingDir)).toBe(false);
    expect(readdirSync(data).filter((f) => f.includes('.tmp-'))).toEqual([]);

    const badExt = await rejectionOf(exportProblems(store, 'full', join(data, 'out.csv')));
    expect(badExt).toBeInstanceOf(BadInputError);
    expect(readdirSync(data).sort()).toEqual(['full.jsonl']);
  });

  it('a Parquet export imports back as the same rows in the same order', async () => {
    const store = await storeWithFullRows();
    const file = join(data, 'roundtrip.parquet');
    await exportProblems(store, 'full', file);
    const { dataset } = await importProblems(store, { file, name: 'roundtrip' });
    expect(dataset.rowCount).toBe(5);
    expect(await storedRows(store, 'roundtrip', 1)).toEqual(FULL_ROWS.map((r) => pick(r, ROW_KEYS)));
    const shown = await readProblems(store, 'roundtrip', 10);
    expect(shown.rows.map((r) => r.extra)).toEqual(FULL_ROWS.map((r) => ({ source: r.source })));
  });

  it('repeated rows without an id column get distinct ids and survive a round trip', async () => {
    const store = await openStore();
    const rows = [
      { problem: 'What is 2 + 2?', answer: '4' },
      { problem: 'What is 2 + 2?', answer: '4' },
      { problem: 'What is 5 + 5?', answer: '10' },
      { problem: 'What is 2 + 2?', answer: '4' },
    ];
    const { duplicateProblems } = await importProblems(store, { file: writeFile(data, 'repeats.jsonl', jsonl(rows)), name: 'repeats' });
    expect(duplicateProblems).toBe(2);
    const ids = (await readProblems(store, 'repeats', 10)).rows.map((r) => r.id);
    expect(new Set(ids).size).toBe(4);
    const file = join(data, 'repeats.parquet');
    await exportProblems(store, 'repeats', file);
    const again = await importProblems(store, { file, name: 'repeats-again' });
    expect((await readProblems(store, 'repeats-again', 10)).rows.map((r) => [r.id, r.problem, r.answer])).toEqual(
      ids.map((id, i) => [id, rows[i]!.problem, rows[i]!.answer]),
    );
    expect(again.dataset.rowCount).toBe(4);
  });
});

// ---------------------------------------------------------------------------------------------

describe('versions and lineage', () => {
  const V1 = [
    { problem: 'What is 2 + 2?', answer: '4' },
    { problem: 'What is 3 + 3?', answer: '6' },
  ];
  const V2 = [...V1, { problem: 'What is 4 + 4?', answer: '8' }];

  it('a second import under the same name is refused unless newVersion is set', async () => {
    const store = await openStore();
    await importProblems(store, { file: writeFile(data, 'v1.jsonl', jsonl(V1)), name: 'x' });
    const before = await counts(store);
    expect(before).toEqual({ ...NOTHING, datasets: 1, problems: 2 });

    const v2File = writeFile(data, 'v2.jsonl', jsonl(V2));
    const err = await rejectionOf(importProblems(store, { file: v2File, name: 'x' }));
    expect(err).toBeInstanceOf(BadInputError);
    expect(err.message).toContain('"x"');
    expect(err.message).toContain('already exists');
    expect(err.message).toContain('--new-version');
    expect(await counts(store)).toEqual(before);

    const { dataset } = await importProblems(store, { file: v2File, name: 'x', newVersion: true });
    expect(dataset.version).toBe(2);
    expect(dataset.rowCount).toBe(3);
    expect(await counts(store)).toEqual({ ...NOTHING, datasets: 2, problems: 5 });

    const latest = await resolveDataset(store, 'x');
    expect([latest.version, latest.rowCount]).toEqual([2, 3]);
    const first = await resolveDataset(store, 'x@1');
    expect([first.version, first.rowCount]).toEqual([1, 2]);
    expect((await storedRows(store, 'x', 1)).map((r) => r.problem)).toEqual(V1.map((r) => r.problem));

    const missingVersion = await rejectionOf(resolveDataset(store, 'x@9'));
    expect(missingVersion).toBeInstanceOf(BadInputError);
    expect(missingVersion.message).toContain('no version 9');
    expect(missingVersion.message).toContain('versions: 1,2');

    const unknown = await rejectionOf(resolveDataset(store, 'nope'));
    expect(unknown).toBeInstanceOf(BadInputError);
    expect(unknown.message).toContain('"nope"');
    expect(unknown.message).toContain('x');

    expect((await listDatasets(store)).map((d) => `${d.name}@${d.version}`)).toEqual(['x@1', 'x@2']);
  });

  it('splitDataset makes a new version with lineage, disjoint sides and about the asked test share', async () => {
    const rows = arithmeticRows(2000);
    const store = await openStore();
    await importProblems(store, { file: writeFile(data, 'unsplit.jsonl', jsonl(rows)), name: 'x' });

    const split = await splitDataset(store, { dataset: 'x', testFraction: 0.25 });
    expect(split.name).toBe('x');
    expect(split.version).toBe(2);
    expect(split.source).toBe('split');
    expect(split.parents).toEqual([{ name: 'x', version: 1, relation: 'split' }]);
    expect(split.rowCount).toBe(2000);
    expect((split.splits.train ?? 0) + (split.splits.test ?? 0)).toBe(2000);

    const stored = await storedRows(store, 'x', 2);
    expect(stored.map((r) => ({ problem: r.problem, answer: r.answer }))).toEqual(rows);
    expect(stored.every((r) => r.split === 'train' || r.split === 'test')).toBe(true);
    const train = new Set(stored.filter((r) => r.split === 'train').map((r) => r.problem));
    const test = new Set(stored.filter((r) => r.split === 'test').map((r) => r.problem));
    expect([...test].filter((p) => train.has(p))).toEqual([]);
    const share = test.size / 2000;
    expect(share).toBeGreaterThanOrEqual(0.2);
    expect(share).toBeLessThanOrEqual(0.3);
    expect(split.splits.test).toBe(test.size);

    // The parent is untouched.
    expect((await storedRows(store, 'x', 1)).every((r) => r.split === null)).toBe(true);
  });

  it('splitting the same problems twice puts each problem on the same side', async () => {
    const rows = arithmeticRows(500);
    const store = await openStore();
    const file = writeFile(data, 'unsplit.jsonl', jsonl(rows));
    await importProblems(store, { file, name: 'x' });
    await importProblems(store, { file, name: 'y' });

    await splitDataset(store, { dataset: 'x', testFraction: 0.3 });
    const again = await splitDataset(store, { dataset: 'x@1', testFraction: 0.3 });
    expect(again.version).toBe(3);
    expect(again.parents).toEqual([{ name: 'x', version: 1, relation: 'split' }]);
    await splitDataset(store, { dataset: 'y', testFraction: 0.3 });

    const sides = async (name: string, version: number) =>
      new Map((await storedRows(store, name, version)).map((r) => [r.problem, r.split]));
    const first = await sides('x', 2);
    expect(first.size).toBe(500);
    expect(await sides('x', 3)).toEqual(first);
    expect(await sides('y', 2)).toEqual(first);
  });

  it('splitDataset refuses a split reference', async () => {
    const store = await openStore();
    await importProblems(store, { file: writeFile(data, 'a.jsonl', jsonl(arithmeticRows(10))), name: 'x' });
    expect(await rejectionOf(splitDataset(store, { dataset: 'x:test' }))).toBeInstanceOf(BadInputError);
    expect((await counts(store)).datasets).toBe(1);
  });
});

// ---------------------------------------------------------------------------------------------

describe('bad input is refused with a clear message and writes nothing', () => {
  /** Imports `options`, expects a BadInputError naming the file and every fragment, and an untouched store. */
  async function expectRefused(options: Omit<ImportOptions, 'name'>, ...fragments: (string | RegExp)[]): Promise<Error> {
    const store = await openStore();
    const err = await rejectionOf(importProblems(store, { name: 'bad', ...options }));
    expect(err).toBeInstanceOf(BadInputError);
    expect(err.message).toContain(options.file);
    // Match the fragments against the message without the file name, which could match by itself.
    const said = err.message.replaceAll(options.file, '<file>');
    for (const fragment of fragments) {
      if (typeof fragment === 'string') expect(said).toContain(fragment);
      else expect(said).toMatch(fragment);
    }
    expect(await counts(store)).toEqual(NOTHING);
    return err;
  }

  const good = (i: number) => JSON.stringify({ problem: `What is ${i} + ${i}?`, answer: String(2 * i) });

  it('malformed JSON on line 2 of 3', async () => {
    const file = writeFile(data, 'malformed.jsonl', `${good(1)}\n{"problem": "What is 2 + 2?", "answer": \n${good(3)}\n`);
    await expectRefused({ file }, 'line 2', /malformed JSON/i);
  });

  it('a byte that is not UTF-8 on line 2', async () => {
    const content = Buffer.concat([
      Buffer.from(`${good(1)}\n{"problem": "What is `),
      Buffer.from([0xff, 0xfe]),
      Buffer.from(` + 2?", "answer": "4"}\n${good(3)}\n`),
    ]);
    const file = writeFile(data, 'latin.jsonl', content);
    await expectRefused({ file }, 'line 2', 'UTF-8');
  });

  it('a row without the answer field on line 3', async () => {
    const file = writeFile(data, 'missing.jsonl', `${good(1)}\n${good(2)}\n{"problem": "What is 3 + 3?"}\n${good(4)}\n`);
    await expectRefused({ file }, 'line 3', '"answer"');
  });

  it('line numbers in JSONL messages count blank lines', async () => {
    // Line 1: a row, lines 2-3: blank, line 4: the row without an answer.
    const file = writeFile(data, 'gaps.jsonl', `${good(1)}\n\n\n{"problem": "What is 4 + 4?"}\n`);
    await expectRefused({ file }, 'line 4', '"answer"');
  });

  it('CSV messages name the data row, not a line, when a quoted field spans lines', async () => {
    // Header on line 1, row 1 on lines 2-4, row 2 on line 5, row 3 (no answer) on line 6.
    const file = writeFile(data, 'multiline.csv', 'problem,answer\n"A problem\nover three\nlines",1\nWhat is 2 + 2?,4\nWhat is 3 + 3?,\n');
    await expectRefused({ file }, 'data row 3 (after the header)', '"answer"');
  });

  it('a row with an empty answer names the line and the custom field', async () => {
    const file = writeFile(data, 'empty-answer.jsonl', `{"q": "a", "sol": "1"}\n{"q": "b", "sol": "   "}\n`);
    await expectRefused({ file, problemField: 'q', answerField: 'sol' }, 'line 2', '"sol"');
  });

  it('a field name that does not exist lists the fields found', async () => {
    const file = writeFile(data, 'fields.jsonl', `{"question": "What is 1 + 1?", "solution": "2", "topic": "arith"}\n`);
    await expectRefused({ file, answerField: 'solution' }, '"problem"', /fields found: .*question/, 'solution', 'topic');
  });

  it('an empty file', async () => {
    const file = writeFile(data, 'empty.jsonl', '');
    await expectRefused({ file }, /empty|no rows/i);
  });

  it('a file with only blank and whitespace lines says it has no rows', async () => {
    const file = writeFile(data, 'blank.jsonl', '\n   \n\t\n\n');
    await expectRefused({ file }, /no rows|empty|blank/i);
  });

  it('a CSV with invalid UTF-8 names the line', async () => {
    const content = Buffer.concat([
      Buffer.from('problem,answer\nWhat is 1 + 1?,2\nWhat is '),
      Buffer.from([0xc3, 0x28]),
      Buffer.from(' + 2?,4\n'),
    ]);
    const file = writeFile(data, 'latin.csv', content);
    await expectRefused({ file }, 'line 3', /utf-8|unicode/i);
  });

  it('a split column with a value other than train or test', async () => {
    const file = writeFile(
      data,
      'splits.jsonl',
      jsonl([
        { problem: 'What is 1 + 1?', answer: '2', split: 'train' },
        { problem: 'What is 2 + 2?', answer: '4', split: 'validation' },
      ]),
    );
    await expectRefused({ file }, 'line 2', '"split"', 'validation');
  });

  it('duplicate values in the id column', async () => {
    const file = writeFile(
      data,
      'dups.jsonl',
      jsonl([
        { id: 'a', problem: 'What is 1 + 1?', answer: '2' },
        { id: 'b', problem: 'What is 2 + 2?', answer: '4' },
        { id: 'a', problem: 'What is 3 + 3?', answer: '6' },
      ]),
    );
    await expectRefused({ file }, '"id"', '"a"', /unique/);
  });

  it('an unknown extension', async () => {
    const file = writeFile(data, 'problems.txt', jsonl([{ problem: 'What is 1 + 1?', answer: '2' }]));
    await expectRefused({ file }, '".txt"');
  });

  it('a file that does not exist', async () => {
    await expectRefused({ file: join(data, 'nowhere.jsonl') }, /no such file/);
  });
});

// ---------------------------------------------------------------------------------------------

describe('synthetic datasets', () => {
  it('3000 rows, every row split, unique ids, and deterministic per seed', async () => {
    const store = await openStore();
    const a = await synthesizeDataset(store, { name: 'syn-a', count: 3000, seed: 11 });
    expect(a.rowCount).toBe(3000);
    expect(a.kind).toBe('problems');
    expect(a.source).toBe('synth');
    expect(Object.keys(a.splits).sort()).toEqual(['test', 'train']);
    expect((a.splits.train ?? 0) + (a.splits.test ?? 0)).toBe(3000);

    const [ids] = await store.query<{ n: bigint; distinct_ids: bigint }>(
      'SELECT count(*) AS n, count(DISTINCT id) AS distinct_ids FROM problems WHERE dataset_id = $1',
      [a.id],
    );
    expect(Number(ids!.n)).toBe(3000);
    expect(Number(ids!.distinct_ids)).toBe(3000);

    await synthesizeDataset(store, { name: 'syn-b', count: 3000, seed: 11 });
    await synthesizeDataset(store, { name: 'syn-c', count: 3000, seed: 12 });
    const triples = async (name: string) => (await storedRows(store, name, 1)).map((r) => [r.id, r.problem, r.answer]);
    const rowsA = await triples('syn-a');
    expect(await triples('syn-b')).toEqual(rowsA);
    expect(await triples('syn-c')).not.toEqual(rowsA);

    const stored = await storedRows(store, 'syn-a', 1);
    expect(stored.every((r) => r.family !== null && r.level !== null && (r.split === 'train' || r.split === 'test'))).toBe(true);
  });
});

// ---------------------------------------------------------------------------------------------

describe('prepareData', () => {
  it('is idempotent per requestId: a retry returns the same dataset and creates nothing more', async () => {
    const store = await openStore();
    const file = writeFile(data, 'unsplit.jsonl', jsonl(arithmeticRows(200)));
    const input = { source: 'import' as const, file, name: 'prep', requestId: 'req-1', testFraction: 0.2 };

    const first = await prepareData(store, input);
    expect([first.dataset.name, first.dataset.version]).toEqual(['prep', 2]);
    expect(first.created.map((c) => [c.version, c.source.split(':')[0]])).toEqual([
      [1, 'import'],
      [2, 'split'],
    ]);
    expect(first.dataset.rowCount).toBe(200);

    const second = await prepareData(store, input);
    expect([second.dataset.name, second.dataset.version]).toEqual(['prep', 2]);
    expect(second.dataset.id).toBe(first.dataset.id);
    expect(await counts(store)).toEqual({ ...NOTHING, datasets: 2, problems: 400, parents: 1 });
  });

  it('without a requestId, a second call with newVersion makes new versions', async () => {
    const store = await openStore();
    const file = writeFile(data, 'unsplit.jsonl', jsonl(arithmeticRows(100)));

    const first = await prepareData(store, { source: 'import', file, name: 'prep' });
    expect(first.dataset.version).toBe(2);
    const second = await prepareData(store, { source: 'import', file, name: 'prep', newVersion: true });
    expect(second.dataset.version).toBe(4);
    expect(second.dataset.parents).toEqual([{ name: 'prep', version: 3, relation: 'split' }]);
    expect(second.created.map((c) => c.version)).toEqual([3, 4]);
    expect((await counts(store)).datasets).toBe(4);
  });

  it('a synthetic source is already split and makes a single version', async () => {
    const store = await openStore();
    const input = { source: 'synth' as const, name: 'prep-syn', count: 300, seed: 5, requestId: 'req-syn' };
    const first = await prepareData(store, input);
    expect(first.created.map((c) => [c.version, c.source])).toEqual([[1, 'synth']]);
    const second = await prepareData(store, input);
    expect(second.dataset.id).toBe(first.dataset.id);
    expect((await counts(store)).datasets).toBe(1);
  });
});

// ---------------------------------------------------------------------------------------------

describe('file lock held by another process', () => {
  it('fails fast with StoreBusyError, and opens once the other process has exited', async () => {
    const child = await holdLockInChild(dbFile());
    try {
      const started = Date.now();
      const err = await rejectionOf(Store.open(home, { waitForLockMs: 300 }));
      expect(err).toBeInstanceOf(StoreBusyError);
      expect(err.message).toContain('in use by another process');
      expect(err.message).toContain(dbFile());
      expect(err.message).toContain(`PID ${child.pid}`);
      expect(Date.now() - started).toBeLessThan(5_000);
    } finally {
      await killAndWait(child);
    }

    const store = await openStore({ waitForLockMs: 2_000 });
    expect(await store.schemaVersion()).toBe(SCHEMA_VERSION);
  });
});
