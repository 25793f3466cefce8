import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { DuckDBInstance, type DuckDBConnection, type DuckDBValue } from '@duckdb/node-api';
import { BadInputError, StoreBusyError } from '../domain/errors.js';
import { resolveHome } from './home.js';
import { MIGRATIONS, SCHEMA_VERSION } from './migrations.js';

export type Row = Record<string, unknown>;
export type Params = Record<string, DuckDBValue> | DuckDBValue[];

export { resolveHome };

/**
 * One DuckDB instance per file per process, shared by reference count: concurrent activities in
 * a worker share it, and the file lock is released as soon as nobody uses it, so the CLI and a
 * worker can take turns on the same store. Opening is serialised per file: DuckDB's file lock is
 * per process, so two instances opened at once in one process would both write the file.
 */
const openInstances = new Map<string, { instance: DuckDBInstance; refs: number }>();
const opening = new Map<string, Promise<unknown>>();

const LOCK_ERROR = /Could not set lock on file|Conflicting lock is held/i;

async function acquireInstance(path: string, waitForLockMs: number): Promise<DuckDBInstance> {
  for (;;) {
    const shared = openInstances.get(path);
    if (shared) {
      shared.refs += 1;
      return shared.instance;
    }
    const pending = opening.get(path);
    if (!pending) break;
    await pending.catch(() => undefined);
  }
  const open = openMigrated(path, waitForLockMs).then((instance) => openInstances.set(path, { instance, refs: 0 }));
  opening.set(path, open);
  try {
    await open;
  } finally {
    opening.delete(path);
  }
  return acquireInstance(path, waitForLockMs);
}

/** Opens the file (waiting out another process's lock) and brings its schema up to date. */
async function openMigrated(path: string, waitForLockMs: number): Promise<DuckDBInstance> {
  const deadline = Date.now() + waitForLockMs;
  for (let delay = 50; ; delay = Math.min(delay * 2, 1000)) {
    let instance: DuckDBInstance;
    try {
      instance = await DuckDBInstance.create(path);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      if (!LOCK_ERROR.test(message)) throw err;
      if (Date.now() >= deadline) {
        const pid = /PID (\d+)/.exec(message)?.[1];
        throw new StoreBusyError(
          `The dataset store ${path} is in use by another process${pid ? ` (PID ${pid})` : ''}. ` +
            'DuckDB lets one process write a file at a time: wait for that command to finish, stop it, ' +
            'or point this command at another store with --home DIR (or RETOOL_HOME).',
        );
      }
      await new Promise((r) => setTimeout(r, delay));
      continue;
    }
    const connection = await instance.connect();
    try {
      await migrate(path, connection);
      return instance;
    } catch (err) {
      instance.closeSync();
      throw err;
    } finally {
      connection.closeSync();
    }
  }
}

function releaseInstance(path: string): void {
  const shared = openInstances.get(path);
  if (!shared) return;
  shared.refs -= 1;
  if (shared.refs === 0) {
    openInstances.delete(path);
    shared.instance.closeSync();
  }
}

export interface OpenOptions {
  /** How long to wait for another process to release the file before failing. */
  waitForLockMs?: number;
}

export class Store {
  private closed = false;

  private constructor(
    readonly path: string,
    readonly home: string,
    readonly connection: DuckDBConnection,
  ) {}

  static async open(home?: string, options: OpenOptions = {}): Promise<Store> {
    const dir = resolveHome(home);
    mkdirSync(dir, { recursive: true });
    const path = join(dir, 'retool.duckdb');
    const instance = await acquireInstance(path, options.waitForLockMs ?? 60_000);
    try {
      return new Store(path, dir, await instance.connect());
    } catch (err) {
      releaseInstance(path);
      throw err;
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.connection.closeSync();
    releaseInstance(this.path);
  }

  async run(sql: string, params?: Params): Promise<void> {
    await this.connection.run(sql, params);
  }

  async query<T extends Row = Row>(sql: string, params?: Params): Promise<T[]> {
    const reader = await this.connection.runAndReadAll(sql, params);
    return reader.getRowObjectsJS() as T[];
  }

  /** Runs `fn` in one transaction: all of it is written, or none of it. */
  async transaction<T>(fn: () => Promise<T>): Promise<T> {
    await this.run('BEGIN TRANSACTION');
    try {
      const result = await fn();
      await this.run('COMMIT');
      return result;
    } catch (err) {
      await this.run('ROLLBACK');
      throw err;
    }
  }

  async schemaVersion(): Promise<number> {
    const rows = await this.query<{ v: number | null }>('SELECT max(version) AS v FROM schema_migrations');
    return rows[0]?.v ?? 0;
  }
}

async function migrate(path: string, connection: DuckDBConnection): Promise<void> {
  await connection.run(
    `CREATE TABLE IF NOT EXISTS schema_migrations (
       version INTEGER PRIMARY KEY, name VARCHAR NOT NULL, applied_at TIMESTAMPTZ DEFAULT current_timestamp)`,
  );
  const rows = (await connection.runAndReadAll('SELECT max(version) AS v FROM schema_migrations')).getRowObjectsJS();
  const current = Number(rows[0]?.v ?? 0);
  if (current > SCHEMA_VERSION) {
    throw new BadInputError(
      `The store ${path} has schema version ${current}, newer than this retool understands (${SCHEMA_VERSION}). Upgrade retool.`,
    );
  }
  for (const migration of MIGRATIONS.filter((m) => m.version > current)) {
    await connection.run('BEGIN TRANSACTION');
    try {
      await connection.run(migration.sql);
      await connection.run('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [migration.version, migration.name]);
      await connection.run('COMMIT');
    } catch (err) {
      await connection.run('ROLLBACK');
      throw err;
    }
  }
}

/**
 * How a long stage reaches the store: `briefStore(home)` opens it for each read or write alone, so
 * other processes (a parallel arm's stages) can use the file while the stage computes;
 * `heldStore(store)` uses a store the caller already holds.
 */
export type StoreAccess = <T>(fn: (store: Store) => Promise<T>) => Promise<T>;
export const briefStore =
  (home: string | undefined): StoreAccess =>
  (fn) =>
    withStore(home, fn);
export const heldStore =
  (store: Store): StoreAccess =>
  (fn) =>
    fn(store);

/** Opens the store, runs `fn`, and always releases the file. */
export async function withStore<T>(home: string | undefined, fn: (store: Store) => Promise<T>, options?: OpenOptions): Promise<T> {
  const store = await Store.open(home, options);
  try {
    return await fn(store);
  } finally {
    store.close();
  }
}

/** SQL string literal, for the places DuckDB takes no parameters (table functions, COPY). */
export function sqlString(text: string): string {
  return `'${text.replaceAll("'", "''")}'`;
}

export function sqlIdent(text: string): string {
  return `"${text.replaceAll('"', '""')}"`;
}
