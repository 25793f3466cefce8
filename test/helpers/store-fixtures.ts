/**
 * Small helpers for test/store.test.ts: temp store homes, input files, an independent Parquet
 * reader (pandas in a subprocess) and child processes that hold or probe the DuckDB file lock.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

/** The repository root: child processes run here so that `@duckdb/node-api` resolves. */
export const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const PYTHON = join(REPO_ROOT, '.venv', 'bin', 'python');

/** Fresh temp directories, removed by `cleanup()`. */
export class TempDirs {
  private dirs: string[] = [];

  make(prefix = 'retool-store-test-'): string {
    const dir = mkdtempSync(join(tmpdir(), prefix));
    this.dirs.push(dir);
    return dir;
  }

  cleanup(): void {
    for (const dir of this.dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  }
}

/** Writes `content` to `dir/name` and returns the absolute path. */
export function writeFile(dir: string, name: string, content: string | Buffer): string {
  const path = join(dir, name);
  writeFileSync(path, content);
  return path;
}

/** One JSON object per line, newline-terminated. */
export function jsonl(rows: readonly unknown[]): string {
  return rows.map((r) => JSON.stringify(r)).join('\n') + '\n';
}

/** Parses a JSON-lines file independently of the code under test (blank lines skipped). */
export function readJsonLines(path: string): Record<string, unknown>[] {
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

/** `n` distinct arithmetic problems with their answers, like a synthetic data set would hold. */
export function arithmeticRows(n: number, offset = 0): { problem: string; answer: string }[] {
  return Array.from({ length: n }, (_, k) => {
    const i = k + offset;
    const a = 3 + ((i * 37) % 997);
    const b = 5 + ((i * 101) % 883);
    return { problem: `Compute ${a} * ${b} + ${i}.`, answer: String(a * b + i) };
  });
}

export interface ParquetContents {
  columns: string[];
  rows: Record<string, unknown>[];
}

const READ_PARQUET_PY = `
import json, sys
import pandas as pd
df = pd.read_parquet(sys.argv[1])
cols = ['id', 'problem', 'answer', 'split', 'family', 'level']
def clean(v):
    try:
        if pd.isna(v):
            return None
    except (TypeError, ValueError):
        pass
    if hasattr(v, 'item'):
        v = v.item()
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    return v
rows = [{c: clean(r.get(c)) for c in cols} for r in df.to_dict(orient='records')]
print(json.dumps({'columns': [str(c) for c in df.columns], 'rows': rows}))
`;

/** Reads a Parquet file with pandas (pyarrow) in a subprocess: no DuckDB involved. */
export async function readParquetWithPandas(path: string): Promise<ParquetContents> {
  const { stdout } = await execFileAsync(PYTHON, ['-c', READ_PARQUET_PY, path], { timeout: 30_000 });
  return JSON.parse(stdout) as ParquetContents;
}

const HOLD_LOCK_JS = `
import { DuckDBInstance } from '@duckdb/node-api';
const instance = await DuckDBInstance.create(process.argv[1]);
await instance.connect();
console.log('ready');
setTimeout(() => {}, 60000);
`;

/** A child process that opens the DuckDB file and keeps it (and its lock) until killed. */
export async function holdLockInChild(dbFile: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--input-type=module', '-e', HOLD_LOCK_JS, dbFile], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  await new Promise<void>((resolveReady, reject) => {
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => reject(new Error(`lock holder not ready after 15 s: ${stderr}`)), 15_000);
    child.stdout!.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      if (stdout.includes('ready')) {
        clearTimeout(timer);
        resolveReady();
      }
    });
    child.stderr!.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`lock holder exited early (code ${code}): ${stderr}`));
    });
  });
  return child;
}

/** Kills a child and waits until it has exited (so the OS has dropped its file locks). */
export async function killAndWait(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGKILL');
  await exited;
}

const PROBE_LOCK_JS = `
import { DuckDBInstance } from '@duckdb/node-api';
try {
  const instance = await DuckDBInstance.create(process.argv[1]);
  (await instance.connect()).closeSync();
  instance.closeSync();
  console.log('opened');
} catch (err) {
  console.log('failed: ' + String(err && err.message).split('\\n')[0]);
}
`;

/** Whether another process can open the DuckDB file right now ('opened' or 'failed: ...'). */
export async function probeOpenFromChild(dbFile: string): Promise<string> {
  const { stdout } = await execFileAsync(process.execPath, ['--input-type=module', '-e', PROBE_LOCK_JS, dbFile], {
    cwd: REPO_ROOT,
    timeout: 30_000,
  });
  return stdout.trim();
}

/** The error a promise rejects with; fails the test when it resolves. */
export async function rejectionOf(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof Error) return err;
    throw new Error(`rejected with a non-Error: ${String(err)}`);
  }
  throw new Error('expected the promise to reject, but it resolved');
}
