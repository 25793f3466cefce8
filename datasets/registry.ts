import { BadInputError } from '../domain/errors.js';
import { DatasetInfoSchema, formatDatasetRef, parseDatasetRef, type DatasetInfo, type DatasetKind, type DatasetRef } from './schemas.js';
import type { Store } from './store.js';

export interface NewDataset {
  name: string;
  kind: DatasetKind;
  /** Where it came from: `import:<file>`, `synth`, `split`, ... */
  source: string;
  params?: Record<string, unknown>;
  parents?: { id: number; relation: string }[];
  /** Add a version to an existing name instead of refusing the duplicate. */
  newVersion?: boolean;
}

/** Registers a dataset version (call inside the transaction that writes its rows). */
export async function createDataset(store: Store, spec: NewDataset): Promise<{ id: number; version: number }> {
  const rows = await store.query<{ v: number | null }>('SELECT max(version) AS v FROM datasets WHERE name = $1', [spec.name]);
  const latest = rows[0]?.v ?? null;
  if (latest !== null && !spec.newVersion) {
    throw new BadInputError(
      `A dataset named "${spec.name}" already exists (latest version ${latest}). ` +
        'Choose another --name, or pass --new-version to add version ' +
        (latest + 1) +
        '.',
    );
  }
  const version = (latest ?? 0) + 1;
  const inserted = await store.query<{ id: number }>(
    'INSERT INTO datasets (name, version, kind, source, params) VALUES ($1, $2, $3, $4, $5) RETURNING id',
    [spec.name, version, spec.kind, spec.source, JSON.stringify(spec.params ?? {})],
  );
  const id = inserted[0]!.id;
  for (const parent of spec.parents ?? []) {
    await store.run('INSERT INTO dataset_parents VALUES ($1, $2, $3)', [id, parent.id, parent.relation]);
  }
  return { id, version };
}

export async function setRowCount(store: Store, id: number, rowCount: number): Promise<void> {
  await store.run('UPDATE datasets SET row_count = $1 WHERE id = $2', [rowCount, id]);
}

const INFO_SQL = `
  SELECT d.id, d.name, d.version, d.kind, d.source, CAST(d.params AS VARCHAR) AS params,
         d.row_count AS "rowCount", strftime(d.created_at, '%Y-%m-%dT%H:%M:%S%z') AS "createdAt",
         (SELECT coalesce(json_group_object(coalesce(s.split, 'none'), s.n), '{}')
            FROM (SELECT split, count(*) AS n FROM problems p WHERE p.dataset_id = d.id GROUP BY split) s) AS splits,
         (SELECT coalesce(json_group_array(json_object('name', pd.name, 'version', pd.version, 'relation', dp.relation)), '[]')
            FROM dataset_parents dp JOIN datasets pd ON pd.id = dp.parent_id WHERE dp.child_id = d.id) AS parents
  FROM datasets d`;

function toInfo(row: Record<string, unknown>): DatasetInfo {
  return DatasetInfoSchema.parse({
    ...row,
    rowCount: Number(row.rowCount),
    params: JSON.parse(String(row.params ?? '{}')),
    splits: JSON.parse(String(row.splits)),
    parents: JSON.parse(String(row.parents)),
  });
}

export async function listDatasets(store: Store): Promise<DatasetInfo[]> {
  const rows = await store.query(`${INFO_SQL} ORDER BY d.name, d.version`);
  return rows.map(toInfo);
}

/** Finds `name[@version]`; the latest version when none is given. */
export async function resolveDataset(store: Store, refOrText: DatasetRef | string): Promise<DatasetInfo> {
  const ref = typeof refOrText === 'string' ? parseDatasetRef(refOrText) : refOrText;
  const rows = ref.version
    ? await store.query(`${INFO_SQL} WHERE d.name = $1 AND d.version = $2`, [ref.name, ref.version])
    : await store.query(`${INFO_SQL} WHERE d.name = $1 ORDER BY d.version DESC LIMIT 1`, [ref.name]);
  if (rows.length === 0) {
    const known = await store.query<{ name: string; versions: string }>(
      `SELECT name, string_agg(CAST(version AS VARCHAR), ',' ORDER BY version) AS versions FROM datasets GROUP BY name ORDER BY name`,
    );
    const same = known.find((k) => k.name === ref.name);
    throw new BadInputError(
      same
        ? `Dataset "${ref.name}" has no version ${ref.version} (versions: ${same.versions}).`
        : `No dataset named "${formatDatasetRef(ref)}". Known datasets: ${known.map((k) => k.name).join(', ') || '(none yet: use retool data import or retool data synth)'}.`,
    );
  }
  return toInfo(rows[0]!);
}

/** The dataset a workflow request already made at `source` (import, synth, split), if any. */
export async function findByRequest(store: Store, requestId: string, source: string): Promise<DatasetInfo | null> {
  const rows = await store.query(
    `${INFO_SQL} WHERE json_extract_string(d.params, '$.requestId') = $1 AND (d.source = $2 OR d.source LIKE $2 || ':%') ORDER BY d.version DESC LIMIT 1`,
    [requestId, source],
  );
  return rows[0] ? toInfo(rows[0]) : null;
}
