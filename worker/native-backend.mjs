#!/usr/bin/env node
// Builds the native TensorFlow backend (@tensorflow/tfjs-node, or tfjs-node-gpu on an NVIDIA
// machine) without the packages' own install script, which downloads libtensorflow from a host
// many machines cannot reach. libtensorflow comes instead from TensorFlow's PyPI wheel (pinned and
// hash-checked): its libtensorflow_cc.so.2 exports the whole C and eager API the addon needs. The
// addon is compiled from the package's own sources and the result cached per version, so a second
// install restores it in about a second.
//
// Usage: node worker/native-backend.mjs [--force] [--gpu | --cpu] [--python PATH] [--quiet]
// Prints one JSON line last ({ ok, mode, ... }); exits 1 with a one-line reason on failure. It
// never touches anything outside the package's folder and the cache (RETOOL_CACHE, or
// $XDG_CACHE_HOME/retool, or ~/.cache/retool).
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { VARIANTS, TFJS_NODE_VERSION } from './native-variants.mjs';

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const force = args.includes('--force');
const quiet = args.includes('--quiet');
const python = args.includes('--python') ? args[args.indexOf('--python') + 1] : (process.env.RETOOL_PYTHON ?? 'python3');

class Missing extends Error {}
const log = (message) => quiet || console.log(`retool native backend: ${message}`);

function run(cmd, cmdArgs, options = {}) {
  const result = spawnSync(cmd, cmdArgs, { encoding: 'utf8', maxBuffer: 64 << 20, stdio: 'pipe', ...options });
  if (result.error) throw new Missing(`${cmd} could not run (${result.error.code ?? result.error.message})`);
  if (result.status !== 0) {
    const tail = `${result.stdout ?? ''}${result.stderr ?? ''}`.trim().split('\n').slice(-3).join(' | ');
    const what = cmdArgs[0] === '-c' ? 'an inline script' : cmdArgs.slice(0, 2).join(' ');
    throw new Missing(`${path.basename(cmd)} ${what} failed: ${tail.slice(0, 400)}`);
  }
  return result;
}

/**
 * A GPU this process can use: the driver's device nodes (or WSL's) and its libcuda.so.1, the one
 * library the CUDA wheels do not bring. /proc/driver/nvidia alone is not enough: a container can
 * see the host's module without access to a GPU.
 */
export function nvidiaGpuUsable() {
  const devices = (fs.existsSync('/dev/nvidiactl') && fs.existsSync('/dev/nvidia0')) || fs.existsSync('/dev/dxg');
  if (!devices) return false;
  if (fs.existsSync('/usr/lib/wsl/lib/libcuda.so.1')) return true;
  const cache = spawnSync('ldconfig', ['-p'], { encoding: 'utf8' });
  return (cache.stdout ?? '').includes('libcuda.so.1');
}

function chooseVariant() {
  const forced = args.includes('--gpu') || process.env.RETOOL_GPU === '1';
  const refused = args.includes('--cpu') || process.env.RETOOL_GPU === '0';
  return forced || (!refused && nvidiaGpuUsable()) ? VARIANTS.gpu : VARIANTS.cpu;
}

function cacheRoot() {
  if (process.env.RETOOL_CACHE) return process.env.RETOOL_CACHE;
  return path.join(process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache'), 'retool');
}

function sha256(file) {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    fs.createReadStream(file, { highWaterMark: 4 << 20 })
      .on('data', (d) => hash.update(d))
      .on('end', () => resolve(hash.digest('hex')))
      .on('error', reject);
  });
}

/** Copies a tree, keeping symlinks; hard links files where it can (the cache and the install share them). */
function linkTree(from, to) {
  fs.mkdirSync(to, { recursive: true });
  for (const entry of fs.readdirSync(from, { withFileTypes: true })) {
    const src = path.join(from, entry.name);
    const dst = path.join(to, entry.name);
    fs.rmSync(dst, { force: true, recursive: true });
    if (entry.isSymbolicLink()) fs.symlinkSync(fs.readlinkSync(src), dst);
    else if (entry.isDirectory()) linkTree(src, dst);
    else {
      try {
        fs.linkSync(src, dst);
      } catch {
        fs.copyFileSync(src, dst);
      }
    }
  }
}

function locatePackage(variant) {
  const projectRequire = createRequire(path.join(root, 'package.json'));
  let dir;
  try {
    dir = path.dirname(projectRequire.resolve(`${variant.package}/package.json`));
  } catch {
    throw new Missing(`${variant.package} is not installed (run npm install first)`);
  }
  const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'));
  if (pkg.version !== TFJS_NODE_VERSION) throw new Missing(`${variant.package} is ${pkg.version}, this recipe is for ${TFJS_NODE_VERSION}`);
  // node-pre-gyp builds for the highest N-API version both the package and this Node support.
  const napi = Math.max(...pkg.binary.napi_versions.filter((v) => v <= Number(process.versions.napi)));
  const moduleDir = path.join(dir, pkg.binary.module_path.replace('{napi_build_version}', String(napi)));
  return {
    dir,
    napi,
    moduleDir,
    addon: path.join(moduleDir, `${pkg.binary.module_name}.node`),
    require: createRequire(path.join(dir, 'package.json')),
  };
}

/** Loads the addon in a child process and multiplies two matrices with it. */
function verify(variant) {
  const code = `const tf = require(${JSON.stringify(variant.package)});
    const c = Array.from(tf.matMul(tf.tensor2d([[1, 2], [3, 4]]), tf.tensor2d([[5, 6], [7, 8]])).dataSync());
    const ok = tf.getBackend() === 'tensorflow' && c.join() === '19,22,43,50';
    console.log(JSON.stringify({ ok, tensorflow: tf.backend().binding.TF_Version, gpu: tf.backend().isUsingGpuDevice }));
    process.exit(ok ? 0 : 1);`;
  const result = spawnSync(process.execPath, ['-e', code], {
    cwd: root,
    encoding: 'utf8',
    env: { ...process.env, TF_CPP_MIN_LOG_LEVEL: '3' },
  });
  try {
    const out = JSON.parse(result.stdout.trim().split('\n').pop());
    if (result.status === 0 && out.ok) return out;
  } catch {
    // not JSON: the error is on stderr
  }
  throw new Missing(
    `the built addon does not load: ${(result.stderr || result.stdout).trim().split('\n').slice(-2).join(' | ').slice(0, 400)}`,
  );
}

async function fetchWheel(wheel, dir) {
  const file = path.join(dir, wheel.file);
  if (fs.existsSync(file) && (await sha256(file)) === wheel.sha256) return file;
  fs.mkdirSync(dir, { recursive: true });
  const requirements = path.join(dir, `${wheel.name}-${wheel.version}.txt`);
  fs.writeFileSync(requirements, `${wheel.name}==${wheel.version} --hash=sha256:${wheel.sha256}\n`);
  // The platform quartet picks the manylinux x86_64 cp311 wheel whatever Python runs pip;
  // --require-hashes makes pip refuse anything but the pinned file.
  run(python, [
    '-m',
    'pip',
    'download',
    '--no-deps',
    '--only-binary=:all:',
    '--require-hashes',
    '--disable-pip-version-check',
    '--python-version',
    '3.11',
    '--implementation',
    'cp',
    '--abi',
    'cp311',
    '--platform',
    'manylinux2014_x86_64',
    '--progress-bar',
    'off',
    '--no-cache-dir',
    '-d',
    dir,
    '-r',
    requirements,
  ]);
  if (!fs.existsSync(file)) throw new Missing(`pip did not produce ${wheel.file}`);
  if ((await sha256(file)) !== wheel.sha256) throw new Missing(`${wheel.file} does not match its pinned sha256`);
  return file;
}

// Extracts what one wheel gives: named libraries into deps/lib, the header closure of the addon's
// #includes into deps/include (14 files), or a library tree (the nvidia wheels) kept as it is.
const EXTRACT = String.raw`
import json, os, re, shutil, sys, zipfile
wheel, dest, spec = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
z = zipfile.ZipFile(wheel)
names = set(z.namelist())
def copy(member, target):
    os.makedirs(os.path.dirname(target), exist_ok=True)
    with z.open(member) as src, open(target, "wb") as dst:
        shutil.copyfileobj(src, dst, 8 << 20)
for member in spec.get("libs", []):
    copy(member, os.path.join(dest, "lib", os.path.basename(member)))
tree = spec.get("tree")
if tree:
    library = re.compile(re.escape(tree["under"]) + r"[^/]+/lib/[^/]+\.so[.0-9]*$")
    for member in names:
        if library.match(member) and not any(os.path.basename(member).startswith(s) for s in tree["skip"]):
            copy(member, os.path.join(dest, member))
include_root = spec.get("includeRoot")
include = re.compile(rb'^\s*#\s*include\s+"([^"]+)"', re.M)
todo, seen = list(spec.get("seeds", [])) if include_root else [], set()
while todo:
    header = todo.pop()
    if header in seen or include_root + header not in names:
        continue
    seen.add(header)
    data = z.read(include_root + header)
    target = os.path.join(dest, "include", header)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    open(target, "wb").write(data)
    todo.extend(m.decode() for m in include.findall(data))
`;

function stripInParallel(files) {
  const hasStrip = spawnSync('strip', ['--version'], { stdio: 'ignore' }).status === 0;
  if (!hasStrip) return Promise.resolve(false);
  return Promise.all(
    files.map(
      (file) =>
        new Promise((resolve, reject) =>
          spawn('strip', ['--strip-unneeded', file], { stdio: 'ignore' }).on('exit', (code) =>
            code === 0 ? resolve() : reject(new Missing(`strip ${file} failed`)),
          ),
        ),
    ),
  ).then(() => true);
}

function buildTools(pkg) {
  for (const [tool, hint] of [
    ['g++', 'C++ compiler (Debian/Ubuntu: apt-get install g++ make)'],
    ['make', 'make (Debian/Ubuntu: apt-get install make)'],
  ]) {
    if (spawnSync(tool, ['--version'], { stdio: 'ignore' }).status !== 0) throw new Missing(`no ${hint}`);
  }
  const env = { ...process.env, JOBS: String(os.availableParallelism()) };
  const prefix = path.resolve(path.dirname(process.execPath), '..');
  if (!env.npm_config_nodedir && fs.existsSync(path.join(prefix, 'include', 'node', 'node_api.h'))) env.npm_config_nodedir = prefix;
  if (!env.npm_config_node_gyp) {
    const candidates = [
      process.env.npm_execpath && path.join(path.dirname(process.env.npm_execpath), '..', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
      path.join(prefix, 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
    ].filter(Boolean);
    const found = candidates.find((c) => fs.existsSync(c));
    if (!found) throw new Missing('no node-gyp found (it ships with npm)');
    env.npm_config_node_gyp = found;
  }
  return { preGyp: pkg.require.resolve('@mapbox/node-pre-gyp/bin/node-pre-gyp'), env };
}

async function build(variant, pkg, entry) {
  const tools = buildTools(pkg);
  const work = path.join(cacheRoot(), 'tmp', `${variant.key}-${process.pid}`);
  fs.rmSync(work, { recursive: true, force: true });
  fs.mkdirSync(path.join(work, 'deps', 'lib'), { recursive: true });
  fs.mkdirSync(path.join(work, 'deps', 'include'), { recursive: true });
  let installed = false;
  try {
    log(`downloading ${variant.wheels.map((w) => `${w.name}==${w.version}`).join(', ')} from PyPI (pinned, hash-checked)`);
    const wheelDir = path.join(cacheRoot(), 'wheels');
    const wheels = [];
    for (const wheel of variant.wheels) wheels.push([wheel, await fetchWheel(wheel, wheelDir)]);
    const seeds = new Set();
    for (const file of fs.readdirSync(path.join(pkg.dir, 'binding'))) {
      for (const m of fs.readFileSync(path.join(pkg.dir, 'binding', file), 'utf8').matchAll(/#include\s+"(tensorflow\/[^"]+)"/g))
        seeds.add(m[1]);
    }
    log('extracting and stripping libtensorflow');
    for (const [wheel, file] of wheels) {
      run(python, ['-c', EXTRACT, file, path.join(work, 'deps'), JSON.stringify({ ...wheel, seeds: [...seeds] })]);
    }
    const lib = path.join(work, 'deps', 'lib');
    await stripInParallel(fs.readdirSync(lib).map((f) => path.join(lib, f)));
    // Link-time names binding.gyp asks for; at run time the addon needs the sonames, found through
    // its rpath ($ORIGIN/../../deps/lib). libtensorflow.so.2.9.1 is the file the package's own
    // install script checks: present, an `npm rebuild` leaves deps/ alone instead of downloading.
    for (const [name, target] of Object.entries(variant.links)) fs.symlinkSync(target, path.join(lib, name));
    installed = true;
    fs.rmSync(path.join(pkg.dir, 'deps'), { recursive: true, force: true });
    linkTree(path.join(work, 'deps'), path.join(pkg.dir, 'deps'));
    log('compiling the addon against it');
    fs.rmSync(pkg.moduleDir, { recursive: true, force: true });
    run(process.execPath, [tools.preGyp, 'install', '--build-from-source'], { cwd: pkg.dir, env: tools.env, timeout: 15 * 60_000 });
    fs.rmSync(path.join(pkg.dir, 'build'), { recursive: true, force: true });
    if (!fs.existsSync(pkg.addon)) throw new Missing(`the build finished without ${pkg.addon}`);
    const loaded = verify(variant);
    // Stored whole or not at all: a half-written entry must never be restored.
    const staged = path.join(cacheRoot(), 'tmp', `${variant.key}-store-${process.pid}`);
    linkTree(path.join(pkg.dir, 'deps'), path.join(staged, 'deps'));
    linkTree(pkg.moduleDir, path.join(staged, 'module'));
    fs.writeFileSync(
      path.join(staged, 'entry.json'),
      JSON.stringify({ key: variant.key, wheels: variant.wheels, at: new Date().toISOString() }, null, 2),
    );
    fs.rmSync(entry, { recursive: true, force: true });
    fs.mkdirSync(path.dirname(entry), { recursive: true });
    fs.renameSync(staged, entry);
    for (const [, file] of wheels) fs.rmSync(file, { force: true });
    return loaded;
  } catch (err) {
    // A failed build leaves the package as npm installed it, not half-provisioned.
    if (installed)
      for (const dir of [path.join(pkg.dir, 'deps'), pkg.moduleDir, path.join(pkg.dir, 'build')])
        fs.rmSync(dir, { recursive: true, force: true });
    throw err;
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

async function provision() {
  if (process.platform !== 'linux' || process.arch !== 'x64')
    throw new Missing(`no recipe for ${process.platform}-${process.arch} (linux-x64 only)`);
  const variant = chooseVariant();
  const pkg = locatePackage(variant);
  const entry = path.join(cacheRoot(), 'native-backend', `${variant.key}_napi-v${pkg.napi}`);
  const started = performance.now();
  const done = (mode, loaded) => ({
    ok: true,
    mode,
    package: variant.package,
    ...loaded,
    seconds: Number(((performance.now() - started) / 1000).toFixed(1)),
  });
  if (!force && fs.existsSync(pkg.addon)) {
    try {
      return done('already built', verify(variant));
    } catch {
      log('the installed addon does not load; building it again');
    }
  }
  if (!force && fs.existsSync(path.join(entry, 'entry.json'))) {
    fs.rmSync(path.join(pkg.dir, 'deps'), { recursive: true, force: true });
    fs.rmSync(pkg.moduleDir, { recursive: true, force: true });
    linkTree(path.join(entry, 'deps'), path.join(pkg.dir, 'deps'));
    linkTree(path.join(entry, 'module'), pkg.moduleDir);
    try {
      return done('restored from cache', verify(variant));
    } catch {
      log('the cached build does not load; building it again');
    }
  }
  return done('built', await build(variant, pkg, entry));
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    console.log(JSON.stringify(await provision()));
  } catch (err) {
    // One line for the install's log, whatever failed (an unwritable cache folder, a crash).
    const reason = err instanceof Missing ? err.message : String(err?.message ?? err).split('\n')[0];
    console.log(JSON.stringify({ ok: false, reason }));
    process.exit(1);
  }
}
