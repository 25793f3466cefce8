import { execFile, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestProject } from 'vitest/node';
import { startServerOnFreePorts } from './helpers/net.js';

declare module 'vitest' {
  export interface ProvidedContext {
    temporalAddress: string;
    /** The dev server's web UI ('' when TEMPORAL_ADDRESS names a server whose UI we do not know). */
    temporalUiUrl: string;
  }
}

/**
 * The tests spawn bin/retool.js, which runs the compiled dist/ only while it matches the sources
 * (else the sources through tsx: the same code, seconds more per start). Built here once, beside
 * the server's start, when it does not; a failed build leaves the tests on the sources.
 */
export function buildCliIfStale(): Promise<void> {
  const build = fileURLToPath(new URL('../bin/build.mjs', import.meta.url));
  return new Promise((resolve) => {
    execFile(process.execPath, [build, '--if-stale', '--install'], (_err, _stdout, stderr) => {
      if (stderr) process.stderr.write(stderr);
      resolve();
    });
  });
}

/**
 * One real Temporal dev server for the whole run (ephemeral, on free loopback ports), unless
 * TEMPORAL_ADDRESS points at one that CI or a developer started.
 */
export default async function setup(project: TestProject) {
  const built = buildCliIfStale();
  let child: ChildProcess | null = null;
  let home: string | null = null;
  let address = process.env.TEMPORAL_ADDRESS;
  let uiUrl = process.env.TEMPORAL_UI_URL ?? '';
  if (!address) {
    home = mkdtempSync(join(tmpdir(), 'retool-test-temporal-'));
    const started = await startServerOnFreePorts({ home, ephemeral: true });
    child = started.child;
    address = started.target.address;
    uiUrl = started.target.uiUrl ?? '';
  }
  await built;
  project.provide('temporalAddress', address);
  project.provide('temporalUiUrl', uiUrl);
  return async () => {
    if (child && child.exitCode === null) {
      const exited = new Promise((r) => child!.once('exit', r));
      child.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
    }
    if (home) rmSync(home, { recursive: true, force: true });
  };
}
