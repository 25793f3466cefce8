// Whether dist/ (the compiled CLI, `npm run build`) still matches the TypeScript sources. Read at
// every `retool` start, so it only stats: about 130 files, a few milliseconds. Plain .mjs with no
// dependencies: bin/retool.js, bin/build.mjs and the test set-up share it.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

/** The folders compiled to dist/: the `include` of tsconfig.build.json, the one list of them. */
export function sourceDirs(root) {
  return JSON.parse(readFileSync(join(root, 'tsconfig.build.json'), 'utf8')).include;
}
/** What the build reads: TypeScript to compile, and the files copied beside it (sandbox scripts, shipped data). */
export const SOURCE_FILE = /\.(ts|py|json|jsonl)$/;
export const ASSET_FILE = /\.(py|json|jsonl)$/;
/** Files outside those folders whose change changes the output. */
const BUILD_INPUTS = ['tsconfig.json', 'tsconfig.build.json', 'bin/build.mjs', 'bin/freshness.mjs'];
export const STAMP = '.build.json';

/**
 * The newest modification time among the build's inputs, which file that is, and how many source
 * files there are (a deleted file leaves its compiled copy behind: the count tells).
 */
export function scanSources(root) {
  let newest = 0;
  let newestFile = '';
  let files = 0;
  const see = (rel) => {
    const mtime = statSync(join(root, rel)).mtimeMs;
    if (mtime > newest) {
      newest = mtime;
      newestFile = rel;
    }
  };
  const walk = (rel) => {
    for (const entry of readdirSync(join(root, rel), { withFileTypes: true })) {
      const path = `${rel}/${entry.name}`;
      if (entry.isDirectory()) walk(path);
      else if (SOURCE_FILE.test(entry.name)) {
        files += 1;
        see(path);
      }
    }
  };
  for (const dir of sourceDirs(root)) walk(dir);
  for (const file of BUILD_INPUTS) {
    try {
      see(file);
    } catch {
      // a checkout without it (an exported tarball with no bin/build.mjs) has nothing to compare
    }
  }
  return { newest, newestFile, files };
}

/**
 * `{ fresh: true }` when dist/ was built from the sources as they are now; otherwise why not, in
 * words that fit the one line bin/retool.js prints.
 */
export function distState(root) {
  let stamp;
  try {
    stamp = JSON.parse(readFileSync(join(root, 'dist', STAMP), 'utf8'));
  } catch {
    return { fresh: false, reason: 'dist/ is not built' };
  }
  let now;
  try {
    now = scanSources(root);
  } catch (err) {
    return { fresh: false, reason: `cannot read the sources (${err.message})` };
  }
  if (now.newest > stamp.newest)
    return { fresh: false, reason: `dist/ is older than the sources (${now.newestFile} changed since the build)` };
  if (now.files !== stamp.files)
    return { fresh: false, reason: `dist/ was built from ${stamp.files} source files, there are ${now.files} now` };
  return { fresh: true, reason: null };
}
