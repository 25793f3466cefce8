// A folder of artifacts, each under its id: `<root>/<id>/manifest.json` and `<root>/<id>/files/`.
// The shared-directory artifact store (a path every worker mounts) and each worker's local cache
// of fetched ones are both this. An artifact appears whole or not at all (built aside, then one
// rename), and is checked against its manifest, and the manifest against the id, when opened.
import { randomBytes } from 'node:crypto';
import { copyFile, mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import {
  ArtifactError,
  artifactId,
  checkArtifactId,
  listFiles,
  ManifestSchema,
  manifestOf,
  manifestText,
  sha256File,
  sha256Text,
  type Manifest,
} from './manifest.js';

export { ArtifactError };

export class ArtifactStore {
  constructor(readonly root: string) {}

  private dir(id: string): string {
    return join(this.root, checkArtifactId(id));
  }

  async has(id: string): Promise<boolean> {
    return stat(join(this.dir(id), 'manifest.json')).then(
      () => true,
      () => false,
    );
  }

  /** Copies the folder `src` in; returns its id (the same for the same files, so a second put is free). */
  async put(src: string): Promise<string> {
    const manifest = await manifestOf(src);
    const id = artifactId(manifest);
    if (await this.has(id)) return id;
    await this.add(id, manifest, async (into) => {
      for (const f of manifest.files) {
        await mkdir(dirname(join(into, f.path)), { recursive: true });
        await copyFile(join(src, f.path), join(into, f.path));
      }
    });
    return id;
  }

  /**
   * Adds artifact `id` whose files `fill` writes into a fresh folder; every file is checked against
   * `manifest` (and the manifest against the id) before the artifact appears under its id.
   */
  async add(id: string, manifest: Manifest, fill: (filesDir: string) => Promise<void>): Promise<void> {
    if (artifactId(manifest) !== id) throw new ArtifactError(`artifact ${id}: its manifest hashes to ${artifactId(manifest)}`);
    await mkdir(this.root, { recursive: true });
    const staging = join(this.root, `.incoming-${randomBytes(6).toString('hex')}`);
    try {
      await fill(join(staging, 'files'));
      await mkdir(join(staging, 'files'), { recursive: true });
      await checkFiles(id, manifest, join(staging, 'files'));
      await writeFile(join(staging, 'manifest.json'), manifestText(manifest));
      await rename(staging, this.dir(id)).catch(async (err: NodeJS.ErrnoException) => {
        // Another writer put the same artifact first: theirs is the same bytes.
        if (!(await this.has(id))) throw err;
      });
    } finally {
      await rm(staging, { recursive: true, force: true });
    }
  }

  async manifest(id: string): Promise<Manifest> {
    const path = join(this.dir(id), 'manifest.json');
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch {
      throw new ArtifactError(`artifact ${id} is not in ${this.root}`);
    }
    if (sha256Text(text) !== id) throw new ArtifactError(`artifact ${id} in ${this.root}: its manifest.json does not hash to its id`);
    return ManifestSchema.parse(JSON.parse(text));
  }

  /** The folder of the artifact's files, every file checked against the manifest first. */
  async open(id: string): Promise<string> {
    const manifest = await this.manifest(id);
    const files = join(this.dir(id), 'files');
    await checkFiles(id, manifest, files);
    return files;
  }

  /** Where a file of the artifact lies (unchecked: for serving, where the reader checks). */
  filePath(id: string, path: string): string {
    return join(this.dir(id), 'files', path);
  }

  manifestPath(id: string): string {
    return join(this.dir(id), 'manifest.json');
  }
}

async function checkFiles(id: string, manifest: Manifest, dir: string): Promise<void> {
  const listed = new Set(manifest.files.map((f) => f.path));
  const extra = (await listFiles(dir)).filter((path) => !listed.has(path));
  if (extra.length > 0) throw new ArtifactError(`artifact ${id}: ${extra.join(', ')} not in its manifest`);
  for (const f of manifest.files) {
    const got = await sha256File(join(dir, f.path)).catch(() => null);
    if (!got) throw new ArtifactError(`artifact ${id}: ${f.path} is missing`);
    if (got.size !== f.size || got.sha256 !== f.sha256)
      throw new ArtifactError(
        `artifact ${id}: ${f.path} has ${got.size} bytes, SHA-256 ${got.sha256}; its manifest says ${f.size} bytes, ${f.sha256}`,
      );
  }
}
