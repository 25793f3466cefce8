import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa, type Result } from 'execa';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));

export function tempHome(prefix = 'retool-test-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Runs the real `retool` command (bin/retool.js) as a user would, never throwing on exit codes. */
export function retool(args: string[], opts: { home: string; env?: Record<string, string>; input?: string }): Promise<Result> {
  return execa('node', [join(ROOT, 'bin', 'retool.js'), ...args], {
    cwd: ROOT,
    env: { RETOOL_HOME: opts.home, ...opts.env },
    input: opts.input,
    reject: false,
    timeout: 120_000,
  });
}

export function json<T = any>(result: Result): T {
  if (result.exitCode !== 0) throw new Error(`retool exited ${result.exitCode}: ${String(result.stderr)}`);
  return JSON.parse(String(result.stdout)) as T;
}
