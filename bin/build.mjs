#!/usr/bin/env node
// `npm run build`, also run by `npm install` / `npm ci`: the TypeScript sources compiled to dist/,
// which bin/retool.js runs while it is fresh (no compiling at every start). Beside the JavaScript:
// the files the code reads next to itself (the sandbox's Python scripts, the shipped data). Code
// that needs the checkout (.venv, bin/) finds it by the nearest package.json (engine/util/project-root.ts).
//
//   node bin/build.mjs              build (exit 1 when no JavaScript could be written)
//   node bin/build.mjs --if-stale   only when dist/ does not match the sources (test set-up)
//   node bin/build.mjs --install    never fail: npm install goes on, the CLI runs the sources via tsx
//
// It compiles into dist.tmp-<pid>/ and renames that to dist/ at the end, so a `retool` started
// meanwhile (another build, a test run) never loads half-written files.
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ASSET_FILE, distState, scanSources, sourceDirs, STAMP } from './freshness.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const install = args.includes('--install');

function fail(message) {
  console.error(`retool build: ${message}`);
  if (install)
    console.error(
      'retool build: the `retool` command will run the TypeScript sources through tsx (slower start) until `npm run build` succeeds',
    );
  process.exit(install ? 0 : 1);
}

if (args.includes('--if-stale') && distState(root).fresh) {
  console.log('retool build: dist/ is up to date');
  process.exit(0);
}

let tsc;
try {
  tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
} catch {
  fail('TypeScript is not installed (node_modules/typescript is missing: run npm install)');
}

// Taken before compiling: a source edited while tsc runs is newer than this, so dist/ reads stale.
const sources = scanSources(root);
const started = Date.now();
const tmp = join(root, `dist.tmp-${process.pid}`);
rmSync(tmp, { recursive: true, force: true });
// --noCheck --noResolve: the JavaScript `tsc -p tsconfig.build.json` writes, file for file, in a
// fifth of the time (isolatedModules and verbatimModuleSyntax make each file's output its own
// business, so no other file or declaration is read). Type errors are `npm run typecheck`'s to
// report (CI runs it); tsx, the other way to run the sources, does not check types either.
const compiled = spawnSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json'), '--noCheck', '--noResolve', '--outDir', tmp], {
  cwd: root,
  stdio: 'inherit',
});
// tsc: 0 is written; 2 is errors with the JavaScript written anyway (with --noCheck, syntax errors,
// which tsx would stop at too); anything else wrote nothing usable.
if (compiled.status !== 0 && compiled.status !== 2) {
  rmSync(tmp, { recursive: true, force: true });
  fail(`tsc failed (${compiled.error?.message ?? `exit ${compiled.status ?? compiled.signal}`}); dist/ is unchanged`);
}

let assets = 0;
const copyAssets = (rel) => {
  for (const entry of readdirSync(join(root, rel), { withFileTypes: true })) {
    const path = `${rel}/${entry.name}`;
    if (entry.isDirectory()) copyAssets(path);
    else if (ASSET_FILE.test(entry.name)) {
      mkdirSync(join(tmp, rel), { recursive: true });
      copyFileSync(join(root, path), join(tmp, path));
      assets += 1;
    }
  }
};
for (const dir of sourceDirs(root)) copyAssets(dir);
writeFileSync(join(tmp, STAMP), `${JSON.stringify({ ...sources, builtAt: new Date().toISOString() }, null, 2)}\n`);

// dist/ -> dist.old-<pid>-<n>, then dist.tmp-<pid> -> dist/ (retried when another build swaps at the same moment).
const dist = join(root, 'dist');
const olds = [];
for (let attempt = 0; ; attempt += 1) {
  const old = join(root, `dist.old-${process.pid}-${attempt}`);
  try {
    renameSync(dist, old);
    olds.push(old);
  } catch (err) {
    if (err.code !== 'ENOENT') throw err;
  }
  try {
    renameSync(tmp, dist);
    break;
  } catch (err) {
    if (!['ENOTEMPTY', 'EEXIST'].includes(err.code) || attempt >= 10) throw err;
  }
}
for (const old of olds) rmSync(old, { recursive: true, force: true });

const seconds = ((Date.now() - started) / 1000).toFixed(1);
if (compiled.status === 2) console.error(`retool build: dist/ written in ${seconds} s despite the errors above`);
else console.log(`retool build: dist/ written in ${seconds} s (${sources.files} sources, ${assets} files copied beside them)`);
