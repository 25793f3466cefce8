import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The checkout: the nearest folder above this file with a package.json (engine/util/ in the
 * sources, dist/engine/util/ once compiled), where bin/ and .venv/ are.
 */
export const PROJECT_ROOT = projectRoot(dirname(fileURLToPath(import.meta.url)));

/** The project's own Python (Temporal CLI, sympy, numpy), made by `npm install`. */
export const VENV_DIR = join(PROJECT_ROOT, '.venv');

function projectRoot(from: string): string {
  for (let dir = from; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    if (dirname(dir) === dir) throw new Error(`no package.json above ${from}: the project's files were moved apart`);
  }
}
