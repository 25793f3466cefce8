// The network option of the artifact store, for worker machines with no shared folder: the
// training worker serves its store read-only over HTTP (content-addressed, so nothing to keep in
// sync and any copy can be checked), and a worker fetches an artifact into its own local store,
// checking every file against the manifest and the manifest against the id before using it.
// Hand-written on node:http and fetch: two GET routes, and the checking is the store's.
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, stat } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ArtifactError, checkArtifactId, ManifestSchema, sha256Text } from './manifest.js';
import { ArtifactStore } from './store.js';

export interface ArtifactServer {
  url: string;
  close(): Promise<void>;
}

const ROUTE = /^\/artifacts\/([0-9a-f]{64})\/(manifest\.json|files\/(.+))$/;

/** Serves `store` at `http://host:port/artifacts/<id>/...`; loopback unless told otherwise. */
export async function serveArtifacts(store: ArtifactStore, o: { host?: string; port?: number } = {}): Promise<ArtifactServer> {
  const server: Server = createServer((req, res) => {
    const path = req.method === 'GET' ? routePath(store, req.url ?? '/') : null;
    if (!path) {
      res.writeHead(404).end();
      return;
    }
    stat(path).then(
      (s) => {
        if (!s.isFile()) return void res.writeHead(404).end();
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': s.size });
        createReadStream(path).pipe(res);
      },
      () => res.writeHead(404).end(),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port ?? 0, o.host ?? '127.0.0.1', resolve);
  });
  const { address, port } = server.address() as AddressInfo;
  const host = address.includes(':') ? `[${address}]` : address;
  return {
    url: `http://${host}:${port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** The file a request names, or null (an unknown route, a malformed escape, a path that climbs out). */
function routePath(store: ArtifactStore, url: string): string | null {
  let m: RegExpExecArray | null;
  try {
    m = ROUTE.exec(decodeURIComponent(new URL(url, 'http://localhost').pathname));
  } catch {
    return null;
  }
  if (!m) return null;
  if (m[3] === undefined) return store.manifestPath(m[1]!);
  if (m[3].split('/').some((p) => p === '' || p === '.' || p === '..')) return null;
  return store.filePath(m[1]!, m[3]);
}

/** Artifact `id` from the server at `baseUrl` into `local` (unless it is there already); returns its files folder. */
export async function fetchArtifact(baseUrl: string, id: string, local: ArtifactStore): Promise<string> {
  checkArtifactId(id);
  if (await local.has(id)) return local.open(id);
  const at = (path: string) => `${baseUrl.replace(/\/$/, '')}/artifacts/${id}/${path}`;
  const res = await get(at('manifest.json'), id);
  const text = await res.text();
  if (sha256Text(text) !== id) throw new ArtifactError(`artifact ${id} from ${baseUrl}: its manifest does not hash to its id`);
  const manifest = ManifestSchema.parse(JSON.parse(text));
  await local.add(id, manifest, async (into) => {
    for (const f of manifest.files) {
      const body = (await get(at(`files/${f.path.split('/').map(encodeURIComponent).join('/')}`), id)).body;
      await mkdir(dirname(join(into, f.path)), { recursive: true });
      await pipeline(Readable.fromWeb(body as import('node:stream/web').ReadableStream), createWriteStream(join(into, f.path)));
    }
  });
  return local.open(id);
}

async function get(url: string, id: string): Promise<Response> {
  let res: Response;
  try {
    res = await fetch(url);
  } catch (err) {
    throw new ArtifactError(`artifact ${id}: ${url} unreachable (${(err as Error).message})`);
  }
  if (!res.ok || !res.body) throw new ArtifactError(`artifact ${id}: ${url} answered ${res.status}`);
  return res;
}

/**
 * Artifact `id` from wherever the run keeps them: an http(s) URL (a training worker's artifact
 * server; fetched into `local`) or a folder this machine mounts (the shared store). Returns the
 * folder of its files, checked.
 */
export async function openArtifact(source: string, id: string, local: ArtifactStore): Promise<string> {
  if (/^https?:\/\//.test(source)) return fetchArtifact(source, id, local);
  return new ArtifactStore(source).open(id);
}
