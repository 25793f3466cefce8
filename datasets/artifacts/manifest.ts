// What an artifact is: a folder (a checkpoint, an adapter, a shard's trajectories) named by the
// hash of its manifest, which lists every file with its size and SHA-256. Two folders with the same
// files have the same id, and a copy anywhere can be checked against its id alone.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { join, posix, relative, sep } from 'node:path';
import { z } from 'zod';

const RelativePath = z
  .string()
  .min(1)
  .refine((p) => !p.startsWith('/') && !p.includes('\\') && p.split('/').every((part) => part !== '' && part !== '.' && part !== '..'), {
    message: 'a relative path inside the artifact (no "..", no leading "/")',
  });

export const ManifestSchema = z.strictObject({
  files: z.array(z.strictObject({ path: RelativePath, size: z.number().int().min(0), sha256: z.string().regex(/^[0-9a-f]{64}$/) })),
});
export type Manifest = z.infer<typeof ManifestSchema>;

export class ArtifactError extends Error {}

/** An artifact id is the SHA-256 of its manifest; anything else (a path, say) is refused before use. */
export function checkArtifactId(id: string): string {
  if (!/^[0-9a-f]{64}$/.test(id)) throw new ArtifactError(`${JSON.stringify(id)}: not an artifact id (64 hex digits)`);
  return id;
}

/** The manifest as hashed: files sorted by path, keys in a fixed order. */
export function manifestText(m: Manifest): string {
  const files = [...m.files].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return `${JSON.stringify({ files: files.map((f) => ({ path: f.path, size: f.size, sha256: f.sha256 })) }, null, 1)}\n`;
}

export function artifactId(m: Manifest): string {
  return sha256Text(manifestText(m));
}

export function sha256Text(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

export async function sha256File(path: string): Promise<{ sha256: string; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of createReadStream(path) as AsyncIterable<Buffer>) {
    hash.update(chunk);
    size += chunk.length;
  }
  return { sha256: hash.digest('hex'), size };
}

/** Every regular file under `dir`, as relative paths with "/". Links and other special files are refused: an artifact is plain data. */
export async function listFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (at: string): Promise<void> => {
    for (const entry of await readdir(at, { withFileTypes: true })) {
      const full = join(at, entry.name);
      if (entry.isDirectory()) await walk(full);
      else if (entry.isFile()) out.push(relative(dir, full).split(sep).join(posix.sep));
      else throw new Error(`${full}: not a regular file or folder; an artifact holds plain files only`);
    }
  };
  if (!(await stat(dir)).isDirectory()) throw new Error(`${dir}: not a folder`);
  await walk(dir);
  return out.sort();
}

/** Every regular file under `dir`, hashed. */
export async function manifestOf(dir: string): Promise<Manifest> {
  const files: Manifest['files'] = [];
  for (const path of await listFiles(dir)) files.push({ path, ...(await sha256File(join(dir, path))) });
  return ManifestSchema.parse({ files });
}
