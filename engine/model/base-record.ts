// The base model a LoRA adapter was trained on, by path and by content. An adapter is a small
// correction to one exact set of weights: on a base that was re-imported, re-merged or replaced
// it loads without complaint and generates nonsense, so the adapter keeps the base's hash and a
// load on a changed base is refused.
import { closeSync, existsSync, openSync, readdirSync, readFileSync, readSync, statSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import { BadInputError } from '../../domain/errors.js';

export const BASE_RECORD_FILE = 'retool-base.json';

const BaseRecordSchema = z.object({
  path: z.string().min(1),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
});
export type BaseRecord = z.infer<typeof BaseRecordSchema>;

/** What decides a model's outputs: its config, weights (whole or in shards) and tokenizer; not its optimizer or value head. */
const CONTENT_FILES = /^(config\.json|tokenizer\.json|model(-\d{5}-of-\d{5})?\.safetensors|model\.safetensors\.index\.json)$/;
const CHUNK_BYTES = 4 << 20;
const hashes = new Map<string, { stamp: string; sha256: string }>();

/**
 * SHA-256 over a model directory's content files, each as its name, its size and its bytes, in
 * name order. Remembered per process while no file's size or modification time changes: a job
 * that opens the same base several times reads it once.
 */
export function modelContentHash(dir: string): string {
  const files = readdirSync(dir)
    .filter((f) => CONTENT_FILES.test(f))
    .sort();
  if (!files.includes('config.json')) throw new BadInputError(`${dir}: no config.json (not a model directory)`);
  const stats = files.map((f) => statSync(join(dir, f)));
  const stamp = files.map((f, i) => `${f}:${stats[i]!.size}:${stats[i]!.mtimeMs}`).join('|');
  const key = resolve(dir);
  const known = hashes.get(key);
  if (known?.stamp === stamp) return known.sha256;
  const hash = createHash('sha256');
  const buffer = Buffer.allocUnsafe(CHUNK_BYTES);
  files.forEach((file, i) => {
    hash.update(`${file}\0${stats[i]!.size}\0`);
    const fd = openSync(join(dir, file), 'r');
    try {
      for (let n = readSync(fd, buffer, 0, CHUNK_BYTES, null); n > 0; n = readSync(fd, buffer, 0, CHUNK_BYTES, null))
        hash.update(buffer.subarray(0, n));
    } finally {
      closeSync(fd);
    }
  });
  const sha256 = hash.digest('hex');
  hashes.set(key, { stamp, sha256 });
  return sha256;
}

/** Writes the record of `baseDir` into the adapter directory being written. */
export function writeBaseRecord(adapterDir: string, baseDir: string): void {
  const record: BaseRecord = { path: resolve(baseDir), sha256: modelContentHash(baseDir) };
  writeFileSync(join(adapterDir, BASE_RECORD_FILE), `${JSON.stringify(record, null, 2)}\n`);
}

/**
 * Refuses `baseDir` when the adapter in `adapterDir` recorded another content. Adapters written
 * elsewhere (PEFT) carry no record and are taken on trust.
 */
export function checkBaseRecord(adapterDir: string, baseDir: string): void {
  const file = join(adapterDir, BASE_RECORD_FILE);
  if (!existsSync(file)) return;
  const parsed = BaseRecordSchema.safeParse(JSON.parse(readFileSync(file, 'utf8')));
  if (!parsed.success) throw new BadInputError(`${file}: not a base model record (${parsed.error.issues[0]?.message})`);
  const now = modelContentHash(baseDir);
  if (now !== parsed.data.sha256)
    throw new BadInputError(
      `${adapterDir}: its base model ${baseDir} has changed since the adapter was trained ` +
        `(SHA-256 ${parsed.data.sha256.slice(0, 12)}… then, ${now.slice(0, 12)}… now); an adapter fits only the weights it was trained on`,
    );
}
