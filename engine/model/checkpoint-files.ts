// Hugging Face checkpoint layout on disk: `model.safetensors`, or shards
// `model-00001-of-0000N.safetensors` plus `model.safetensors.index.json`
// ({"metadata": {"total_size": bytes}, "weight_map": {tensor: shard file}}), as transformers
// reads and writes them; and a crash-safe way to replace a whole checkpoint directory.
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync, openSync, fsyncSync, closeSync } from 'node:fs';
import { mkdtemp, open, readdir, rename, rm, stat, mkdir } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { readSafetensorsFile, tensorByteSize, writeSafetensorsFile, type DType, type NamedTensor, type ReadTensor } from './safetensors.js';

export const SAFE_WEIGHTS_NAME = 'model.safetensors';
export const SAFE_WEIGHTS_INDEX_NAME = 'model.safetensors.index.json';
/** transformers' default max_shard_size ("5GB", decimal). */
export const DEFAULT_MAX_SHARD_BYTES = 5_000_000_000;
const SHARD_RE = /^model-\d{5}-of-\d{5}\.safetensors$/;

export interface WriteModelOptions {
  /** On-disk dtype (default F32). */
  dtype?: DType;
  /** Shard when the tensors' total size exceeds this (default 5 GB, as transformers). */
  maxShardBytes?: number;
  /** Extra safetensors metadata for every file; {"format": "pt"} is always included. */
  metadata?: Record<string, string>;
}

/**
 * Load every tensor of the checkpoint in `dir`. Like transformers, a single `model.safetensors`
 * wins over an index; with an index, each shard it names is read once, and every tensor in the
 * weight_map must be in the shard it is mapped to.
 */
export function readModelTensors(dir: string): Map<string, ReadTensor> {
  const single = join(dir, SAFE_WEIGHTS_NAME);
  if (existsSync(single)) return readSafetensorsFile(single).tensors;
  const indexFile = join(dir, SAFE_WEIGHTS_INDEX_NAME);
  if (!existsSync(indexFile))
    throw new Error(`${dir}: no ${SAFE_WEIGHTS_NAME} or ${SAFE_WEIGHTS_INDEX_NAME} (not a safetensors checkpoint directory)`);
  const weightMap = readIndex(indexFile);
  const shards = [...new Set(weightMap.values())].sort();
  const out = new Map<string, ReadTensor>();
  const from = new Map<string, string>();
  for (const shard of shards) {
    const shardPath = join(dir, shard);
    if (!existsSync(shardPath)) throw new Error(`${indexFile}: shard "${shard}" listed in weight_map does not exist`);
    for (const [name, tensor] of readSafetensorsFile(shardPath).tensors) {
      const earlier = from.get(name);
      if (earlier !== undefined) throw new Error(`${indexFile}: tensor "${name}" appears in both ${earlier} and ${shard}`);
      from.set(name, shard);
      out.set(name, tensor);
    }
  }
  for (const [name, shard] of weightMap) {
    const actual = from.get(name);
    if (actual === undefined) throw new Error(`${indexFile}: tensor "${name}" is mapped to ${shard} but that shard does not contain it`);
    if (actual !== shard) throw new Error(`${indexFile}: tensor "${name}" is mapped to ${shard} but is in ${actual}`);
  }
  return out;
}

function readIndex(indexFile: string): Map<string, string> {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(indexFile, 'utf8'));
  } catch (e) {
    throw new Error(`${indexFile}: not valid JSON (${(e as Error).message})`);
  }
  const weightMap = (json as { weight_map?: unknown } | null)?.weight_map;
  if (typeof weightMap !== 'object' || weightMap === null || Array.isArray(weightMap)) {
    throw new Error(`${indexFile}: missing "weight_map" object`);
  }
  const out = new Map<string, string>();
  for (const [name, shard] of Object.entries(weightMap as Record<string, unknown>)) {
    if (typeof shard !== 'string' || shard === '' || basename(shard) !== shard || shard === '.' || shard === '..') {
      throw new Error(`${indexFile}: weight_map entry for "${name}" is not a plain file name: ${JSON.stringify(shard)}`);
    }
    out.set(name, shard);
  }
  return out;
}

/**
 * Write `tensors` as a transformers-style checkpoint into `dir` (created if missing): one
 * `model.safetensors` when the total fits in maxShardBytes, else shards filled greedily in name
 * order (a tensor larger than the limit gets a shard of its own) plus the index. Weight files
 * of the other layout left in `dir` by an earlier write are removed so they cannot shadow these.
 * Files are fsynced. Returns the paths written.
 */
export function writeModelTensors(dir: string, tensors: Map<string, NamedTensor>, opts: WriteModelOptions = {}): string[] {
  const dtype = opts.dtype ?? 'F32';
  const maxShardBytes = opts.maxShardBytes ?? DEFAULT_MAX_SHARD_BYTES;
  if (!(maxShardBytes > 0)) throw new Error(`writeModelTensors: maxShardBytes must be positive, got ${maxShardBytes}`);
  mkdirSync(dir, { recursive: true });
  for (const f of readdirSync(dir)) {
    if (f === SAFE_WEIGHTS_NAME || f === SAFE_WEIGHTS_INDEX_NAME || SHARD_RE.test(f)) rmSync(join(dir, f), { force: true });
  }
  const names = [...tensors.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const sizeOf = (name: string) => tensorByteSize(tensors.get(name)!, dtype);
  const totalSize = names.reduce((a, n) => a + sizeOf(n), 0);
  const fileOpts = { dtype, fsync: true, ...(opts.metadata ? { metadata: opts.metadata } : {}) };

  if (totalSize <= maxShardBytes) {
    const file = join(dir, SAFE_WEIGHTS_NAME);
    writeSafetensorsFile(file, tensors, fileOpts);
    return [file];
  }

  const blocks: string[][] = [];
  let current: string[] = [];
  let currentSize = 0;
  for (const name of names) {
    const size = sizeOf(name);
    if (current.length > 0 && currentSize + size > maxShardBytes) {
      blocks.push(current);
      current = [];
      currentSize = 0;
    }
    current.push(name);
    currentSize += size;
  }
  if (current.length > 0) blocks.push(current);

  const pad = (i: number) => String(i).padStart(5, '0');
  const written: string[] = [];
  const weightMap: Record<string, string> = {};
  blocks.forEach((block, i) => {
    const shard = `model-${pad(i + 1)}-of-${pad(blocks.length)}.safetensors`;
    const file = join(dir, shard);
    writeSafetensorsFile(file, new Map(block.map((n) => [n, tensors.get(n)!])), fileOpts);
    for (const n of block) weightMap[n] = shard;
    written.push(file);
  });
  const indexFile = join(dir, SAFE_WEIGHTS_INDEX_NAME);
  // Keys are inserted in sorted order; build the JSON by hand so integer-like names keep it too.
  const mapJson = names.map((n) => `    ${JSON.stringify(n)}: ${JSON.stringify(weightMap[n])}`).join(',\n');
  writeFileSync(indexFile, `{\n  "metadata": {\n    "total_size": ${totalSize}\n  },\n  "weight_map": {\n${mapJson}\n  }\n}\n`);
  fsyncPath(indexFile);
  written.push(indexFile);
  return written;
}

function fsyncPath(path: string): void {
  const fd = openSync(path, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

async function fsyncTree(path: string): Promise<void> {
  const info = await stat(path);
  if (info.isDirectory()) {
    for (const entry of await readdir(path)) await fsyncTree(join(path, entry));
  }
  await fsyncHandle(path);
}

async function fsyncHandle(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } catch (e) {
    // Some platforms/filesystems cannot fsync a directory; the files themselves were synced.
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'EISDIR' && code !== 'EINVAL' && code !== 'EPERM' && code !== 'EBADF') throw e;
  } finally {
    await handle.close();
  }
}

/**
 * Produce `finalDir` atomically: `fill` writes into a fresh sibling temp dir, every file is
 * fsynced, then the temp dir is renamed into place. An existing `finalDir` is renamed aside
 * first, the new one renamed in, and only then the old one deleted (a crash between the two
 * renames leaves the old checkpoint intact as `.<name>.old-*` next to it). If `fill` (or
 * anything before the swap) fails, the temp dir is removed and `finalDir` is left untouched.
 */
export async function writeDirAtomically(finalDir: string, fill: (tempDir: string) => Promise<void> | void): Promise<void> {
  const target = resolve(finalDir);
  const parent = dirname(target);
  const name = basename(target);
  await mkdir(parent, { recursive: true });
  const temp = await mkdtemp(join(parent, `.${name}.tmp-`));
  try {
    await fill(temp);
    await fsyncTree(temp);
  } catch (e) {
    await rm(temp, { recursive: true, force: true });
    throw e;
  }

  let old: string | null = null;
  if (existsSync(target)) {
    old = join(parent, `.${name}.old-${randomBytes(6).toString('hex')}`);
    try {
      await rename(target, old);
    } catch (e) {
      await rm(temp, { recursive: true, force: true });
      throw e;
    }
  }
  try {
    await rename(temp, target);
  } catch (e) {
    if (old !== null) await rename(old, target);
    await rm(temp, { recursive: true, force: true });
    throw e;
  }
  await fsyncHandle(parent);
  if (old !== null) await rm(old, { recursive: true, force: true });
}
