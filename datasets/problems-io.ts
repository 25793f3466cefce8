import { closeSync, existsSync, openSync, readFileSync, readSync, renameSync, rmSync, statSync } from 'node:fs';
import { extname, resolve } from 'node:path';
import { BadInputError } from '../domain/errors.js';
import { createDataset, resolveDataset, setRowCount } from './registry.js';
import { ProblemRowSchema, formatDatasetRef, parseDatasetRef, type DatasetInfo } from './schemas.js';
import { sqlIdent, sqlString, type Store } from './store.js';
import { ImportOptionsSchema, type ImportFormat, type ImportOptions } from './import-options.js';

const EXTENSIONS: Record<string, ImportFormat> = {
  '.jsonl': 'jsonl',
  '.ndjson': 'jsonl',
  '.json': 'json',
  '.csv': 'csv',
  '.tsv': 'csv',
  '.parquet': 'parquet',
};

export function detectFormat(file: string, given?: ImportFormat): ImportFormat {
  if (given) return given;
  const format = EXTENSIONS[extname(file).toLowerCase()];
  if (!format) {
    throw new BadInputError(
      `${file}: cannot tell the format from the extension "${extname(file)}" (known: ${Object.keys(EXTENSIONS).join(', ')}); pass --format jsonl|json|csv|parquet.`,
    );
  }
  return format;
}

export function readerSql(file: string, format: ImportFormat, columns?: Map<string, string>): string {
  const f = sqlString(file);
  switch (format) {
    case 'jsonl':
    case 'json': {
      const shape = format === 'jsonl' ? "format='newline_delimited'" : "format='auto'";
      if (!columns) return `read_json(${f}, ${shape})`;
      const spec = [...columns].map(([name, type]) => `${sqlString(name)}: ${sqlString(type)}`).join(', ');
      return `read_json(${f}, ${shape}, columns={${spec}})`;
    }
    case 'csv': {
      if (!columns) return `read_csv(${f}, header=true)`;
      const spec = [...columns].map(([name, type]) => `${sqlString(name)}: ${sqlString(type)}`).join(', ');
      return `read_csv(${f}, header=true, types={${spec}})`;
    }
    case 'parquet':
      return `read_parquet(${f})`;
  }
}

/**
 * DuckDB's JSON errors point near, not always at, the bad line. On that (rare) path we re-read
 * the file to name the exact line and what is wrong with it.
 */
function locateJsonLinesError(file: string): string | null {
  const decoder = new TextDecoder('utf-8', { fatal: true });
  const fd = openSync(file, 'r');
  try {
    const chunk = Buffer.alloc(1 << 20);
    let pending = Buffer.alloc(0);
    let line = 0;
    const check = (bytes: Buffer): string | null => {
      line += 1;
      let text: string;
      try {
        text = decoder.decode(bytes);
      } catch {
        return `line ${line}: not valid UTF-8`;
      }
      if (text.trim() === '') return null;
      try {
        const value: unknown = JSON.parse(text);
        if (value === null || typeof value !== 'object' || Array.isArray(value))
          return `line ${line}: expected a JSON object, found ${Array.isArray(value) ? 'an array' : typeof value}`;
      } catch (err) {
        return `line ${line}: malformed JSON (${(err as Error).message})`;
      }
      return null;
    };
    for (;;) {
      const n = readSync(fd, chunk, 0, chunk.length, null);
      if (n === 0) break;
      pending = Buffer.concat([pending, chunk.subarray(0, n)]);
      let start = 0;
      for (let nl = pending.indexOf(10, start); nl !== -1; nl = pending.indexOf(10, start)) {
        const problem = check(pending.subarray(start, nl));
        if (problem) return problem;
        start = nl + 1;
      }
      pending = pending.subarray(start);
    }
    return pending.length > 0 ? check(pending) : null;
  } finally {
    closeSync(fd);
  }
}

/** The 1-based line of the `rowIndex`-th non-blank line (DuckDB's row order for JSONL). */
export function jsonlLineOfRow(file: string, rowIndex: number): number {
  let seen = -1;
  const lines = readFileSync(file, 'utf8').split('\n');
  for (let i = 0; i < lines.length; i++) {
    if (lines[i]!.trim() !== '') seen += 1;
    if (seen === rowIndex) return i + 1;
  }
  return rowIndex + 1;
}

export function explainReadError(file: string, format: ImportFormat, err: unknown): BadInputError {
  const raw = err instanceof Error ? err.message : String(err);
  const firstLine = raw.split('\n')[0]!.replace(/^[A-Za-z ]+Error: /, '');
  if (format === 'jsonl') {
    const located = locateJsonLinesError(file);
    if (located) return new BadInputError(`${file} ${located}`);
  }
  const csvLine = /CSV Error on Line: (\d+)/.exec(raw)?.[1];
  const csvWhat = raw.split('\n').find((l) => /invalid unicode|expected|column/i.test(l) && !/Original Line|Possible Solution/.test(l));
  if (csvLine) return new BadInputError(`${file} line ${csvLine}: ${csvWhat?.trim() ?? firstLine}`);
  return new BadInputError(`${file}: cannot read as ${format}: ${firstLine}`);
}

export interface ImportResult {
  dataset: DatasetInfo;
  duplicateProblems: number;
}

/** Imports a problems file with DuckDB's own readers, in one transaction: all rows or nothing. */
export async function importProblems(store: Store, options: ImportOptions): Promise<ImportResult> {
  const opts = ImportOptionsSchema.parse(options);
  const file = resolve(opts.file);
  if (!existsSync(file) || !statSync(file).isFile()) throw new BadInputError(`${opts.file}: no such file`);
  if (statSync(file).size === 0) throw new BadInputError(`${opts.file}: the file is empty (no rows to import)`);
  const format = detectFormat(file, opts.format);

  let described: { column_name: string; column_type: string }[];
  try {
    described = await store.query(`DESCRIBE SELECT * FROM ${readerSql(file, format)}`);
  } catch (err) {
    throw explainReadError(opts.file, format, err);
  }
  const columns = new Map(described.map((c) => [c.column_name, c.column_type]));
  const fieldList = [...columns.keys()].join(', ') || '(none)';
  const missing = [
    [opts.problemField, '--problem-field'],
    [opts.answerField, '--answer-field'],
    [opts.idField, '--id-field'],
    [opts.splitField, '--split-field'],
  ].find(([field]) => field !== undefined && !columns.has(field));
  if (missing) {
    // A file of blank lines, or `[]`, describes as one placeholder column: say what is wrong.
    const counted = await store.query<{ n: bigint }>(`SELECT count(*) AS n FROM ${readerSql(file, format)}`).catch(() => [{ n: 1n }]);
    if (Number(counted[0]!.n) === 0) throw new BadInputError(`${opts.file}: no rows to import`);
    throw new BadInputError(
      `${opts.file}: no field "${missing[0]}" in the rows (fields found: ${fieldList}); choose one with ${missing[1]}.`,
    );
  }
  const problemField = opts.problemField;
  const answerField = opts.answerField;
  const idField = opts.idField ?? (columns.has('id') ? 'id' : undefined);
  const splitField = opts.splitField ?? (!opts.split && columns.has('split') ? 'split' : undefined);
  const familyField = columns.has('family') ? 'family' : undefined;
  const levelField = columns.has('level') ? 'level' : undefined;

  // Read the text fields as text, so an integer answer beyond 2^53 keeps every digit.
  const asText = [problemField, answerField, idField, splitField, familyField].filter((f): f is string => !!f);
  const typed = new Map(columns);
  for (const field of asText) typed.set(field, 'VARCHAR');
  const source =
    format === 'parquet'
      ? readerSql(file, format)
      : readerSql(file, format, format === 'csv' ? new Map(asText.map((f) => [f, 'VARCHAR'])) : typed);

  const staging = `import_staging_${process.pid}_${Date.now()}`;
  try {
    await store.run(`CREATE TEMP TABLE ${staging} AS SELECT * FROM ${source}`);
  } catch (err) {
    throw explainReadError(opts.file, format, err);
  }
  try {
    // DuckDB skips blank lines and lets quoted CSV fields span lines, so a row's line is only
    // known for JSONL, found by re-reading the file on this error path.
    const rowLabel = (rowid: number): string =>
      format === 'jsonl'
        ? `line ${jsonlLineOfRow(file, rowid)}`
        : format === 'csv'
          ? `data row ${rowid + 1} (after the header)`
          : `row ${rowid + 1}`;
    const [{ n }] = (await store.query<{ n: bigint }>(`SELECT count(*) AS n FROM ${staging}`)) as [{ n: bigint }];
    if (Number(n) === 0) throw new BadInputError(`${opts.file}: no rows to import`);

    const text = (f: string) => `CAST(${sqlIdent(f)} AS VARCHAR)`;
    for (const [field, flag] of [
      [problemField, '--problem-field'],
      [answerField, '--answer-field'],
      ...(idField ? [[idField, '--id-field']] : []),
    ] as [string, string][]) {
      const bad = await store.query<{ r: bigint }>(
        `SELECT rowid AS r FROM ${staging} WHERE ${text(field)} IS NULL OR trim(${text(field)}) = '' ORDER BY rowid LIMIT 1`,
      );
      if (bad[0]) throw new BadInputError(`${opts.file} ${rowLabel(Number(bad[0].r))}: field "${field}" is missing or empty (${flag})`);
    }
    if (splitField) {
      const bad = await store.query<{ r: bigint; v: string | null }>(
        `SELECT rowid AS r, ${text(splitField)} AS v FROM ${staging} WHERE ${text(splitField)} IS NOT NULL AND ${text(splitField)} NOT IN ('train', 'test') ORDER BY rowid LIMIT 1`,
      );
      if (bad[0])
        throw new BadInputError(
          `${opts.file} ${rowLabel(Number(bad[0].r))}: field "${splitField}" is "${bad[0].v}", expected train or test`,
        );
    }
    if (idField) {
      const dup = await store.query<{ v: string }>(`SELECT ${text(idField)} AS v FROM ${staging} GROUP BY 1 HAVING count(*) > 1 LIMIT 1`);
      if (dup[0])
        throw new BadInputError(`${opts.file}: field "${idField}" has the value "${dup[0].v}" on more than one row; ids must be unique`);
    }
    if (levelField) {
      const bad = await store.query<{ r: bigint }>(
        `SELECT rowid AS r FROM ${staging} WHERE ${sqlIdent(levelField)} IS NOT NULL AND TRY_CAST(${sqlIdent(levelField)} AS INTEGER) IS NULL ORDER BY rowid LIMIT 1`,
      );
      if (bad[0]) throw new BadInputError(`${opts.file} ${rowLabel(Number(bad[0].r))}: field "level" is not an integer`);
    }

    // Fields without a column of their own are kept in `extra`; a column named `extra` (as our
    // own exports write) is merged in, so export -> import round-trips.
    const extraField = columns.has('extra') ? 'extra' : undefined;
    const used = new Set([problemField, answerField, idField, splitField, familyField, levelField, extraField].filter(Boolean));
    const rest = [...columns.keys()].filter((c) => !used.has(c));
    const restJson = rest.length ? `to_json(struct_pack(${rest.map((c) => `${sqlIdent(c)} := ${sqlIdent(c)}`).join(', ')}))` : null;
    const extraJson = extraField ? `CAST(${sqlIdent(extraField)} AS JSON)` : null;
    const extra = restJson && extraJson ? `json_merge_patch(coalesce(${extraJson}, '{}'), ${restJson})` : (restJson ?? extraJson ?? 'NULL');
    const dups = await store.query<{ d: bigint }>(`SELECT count(*) - count(DISTINCT ${text(problemField)}) AS d FROM ${staging}`);
    const duplicateProblems = Number(dups[0]?.d ?? 0);
    // Ids hash the content; a repeated (problem, answer) pair gets a -2, -3... suffix so ids stay
    // unique (the window costs a sort, so only when there are repeats).
    const hashId = `substr(md5(${text(problemField)} || chr(0) || ${text(answerField)}), 1, 16)`;
    const repeat = `row_number() OVER (PARTITION BY ${text(problemField)}, ${text(answerField)} ORDER BY rowid)`;
    const idExpr = idField
      ? text(idField)
      : duplicateProblems > 0
        ? `${hashId} || CASE WHEN ${repeat} > 1 THEN '-' || ${repeat} ELSE '' END`
        : hashId;
    const splitExpr = splitField ? text(splitField) : opts.split ? sqlString(opts.split) : 'NULL';

    const dataset = await store.transaction(async () => {
      const { id } = await createDataset(store, {
        name: opts.name,
        kind: 'problems',
        source: `import:${file}`,
        params: {
          format,
          problemField,
          answerField,
          idField: idField ?? null,
          splitField: splitField ?? null,
          split: opts.split ?? null,
          requestId: opts.requestId,
        },
        newVersion: opts.newVersion,
      });
      await store.run(
        `INSERT INTO problems (dataset_id, row_idx, id, problem, answer, family, level, split, extra)
         SELECT ${id}, rowid, ${idExpr}, ${text(problemField)}, trim(${text(answerField)}),
                ${familyField ? text(familyField) : 'NULL'}, ${levelField ? `CAST(${sqlIdent(levelField)} AS INTEGER)` : 'NULL'},
                ${splitExpr}, ${extra}
         FROM ${staging}`,
      );
      await setRowCount(store, id, Number(n));
      return resolveDataset(store, {
        name: opts.name,
        version: (await store.query<{ v: number }>('SELECT version AS v FROM datasets WHERE id = $1', [id]))[0]!.v,
      });
    });
    return { dataset, duplicateProblems };
  } finally {
    await store.run(`DROP TABLE IF EXISTS ${staging}`);
  }
}

/** Writes `NAME[@VERSION][:split]` to a Parquet or JSONL file, atomically (temp file, then rename). */
export async function exportProblems(
  store: Store,
  refText: string,
  out: string,
): Promise<{ dataset: DatasetInfo; rows: number; file: string }> {
  const ref = parseDatasetRef(refText);
  const dataset = await resolveDataset(store, ref);
  const ext = extname(out).toLowerCase();
  const format = ext === '.parquet' ? 'PARQUET' : ext === '.jsonl' || ext === '.ndjson' ? 'JSON' : null;
  if (!format) throw new BadInputError(`${out}: export writes .parquet or .jsonl files`);
  const file = resolve(out);
  const temp = `${file}.tmp-${process.pid}`;
  const where = `dataset_id = ${dataset.id}${ref.split ? ` AND split = ${sqlString(ref.split)}` : ''}`;
  const select = `SELECT id, problem, answer, family, level, split, extra FROM problems WHERE ${where} ORDER BY row_idx`;
  try {
    await store.run(`COPY (${select}) TO ${sqlString(temp)} (FORMAT ${format})`);
    renameSync(temp, file);
  } catch (err) {
    rmSync(temp, { force: true });
    throw err instanceof BadInputError ? err : new BadInputError(`${out}: cannot write: ${(err as Error).message.split('\n')[0]}`);
  }
  const counted = await store.query<{ n: bigint }>(`SELECT count(*) AS n FROM problems WHERE ${where}`);
  return { dataset, rows: Number(counted[0]!.n), file };
}

/** Rows of a dataset for people to read (`retool data show`). */
export async function readProblems(store: Store, refText: string, limit = 10, offset = 0) {
  const ref = parseDatasetRef(refText);
  const dataset = await resolveDataset(store, ref);
  const rows = await store.query<Record<string, unknown>>(
    `SELECT id, problem, answer, family, level, split, CAST(extra AS VARCHAR) AS extra FROM problems
     WHERE dataset_id = $1 ${ref.split ? 'AND split = $4' : ''} ORDER BY row_idx LIMIT $2 OFFSET $3`,
    ref.split ? [dataset.id, limit, offset, ref.split] : [dataset.id, limit, offset],
  );
  return {
    dataset,
    rows: rows.map((r) =>
      ProblemRowSchema.parse({
        ...r,
        level: r.level === null ? null : Number(r.level),
        extra: r.extra ? JSON.parse(String(r.extra)) : null,
      }),
    ),
  };
}

/**
 * Every problem of NAME[@V][:split]; without a split, `preferSplit` when the dataset has one (a
 * stage that trains reads train, one that evaluates reads test, so held-out problems stay out).
 */
export async function problemsForStage(store: Store, refText: string, preferSplit: 'train' | 'test') {
  const ref = parseDatasetRef(refText);
  const dataset = await resolveDataset(store, ref);
  if (dataset.kind !== 'problems') throw new BadInputError(`${refText} holds ${dataset.kind}, not problems`);
  const split = ref.split ?? ((dataset.splits[preferSplit] ?? 0) > 0 ? preferSplit : undefined);
  const source = formatDatasetRef({ ...ref, version: dataset.version, split });
  const { rows } = await readProblems(store, source, Number.MAX_SAFE_INTEGER);
  return { dataset, source, rows };
}
