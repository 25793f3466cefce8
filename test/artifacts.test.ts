// The artifact store: a shared folder, and the network option (a training worker serves its store,
// another machine fetches into its own), every artifact checked against its content id.
import { appendFileSync, cpSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fetchArtifact, openArtifact, serveArtifacts, type ArtifactServer } from '../datasets/artifacts/http.js';
import { ArtifactStore } from '../datasets/artifacts/store.js';
import { openModel } from '../engine/model/checkpoint.js';
import { initModelDir } from '../engine/model/init.js';
import { initBackend, tf } from '../engine/tensor/backend.js';
import { json, retool, tempHome } from './helpers/cli.js';
import { startServe } from './helpers/serve.js';

const home = tempHome('retool-artifacts-');
afterAll(() => home.cleanup());

/** A checkpoint folder as the trainer writes one, with a nested file and bytes of every value. */
async function checkpoint(dir: string): Promise<string> {
  await initModelDir(dir, { preset: 'tiny', seed: 3 });
  mkdirSync(join(dir, 'state'));
  writeFileSync(join(dir, 'state', 'optimizer.bin'), Buffer.from(Array.from({ length: 256 }, (_, i) => i)));
  return dir;
}

const rawGet = (url: string) =>
  new Promise<number>((resolve, reject) => {
    request(url, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    })
      .on('error', reject)
      .end();
  });

describe('artifact store', () => {
  let source: string;
  beforeAll(async () => {
    await initBackend();
    source = await checkpoint(join(home.dir, 'ckpt'));
  });

  it('names a folder by its content: the same files give the same id from anywhere, and open returns them checked', async () => {
    const shared = new ArtifactStore(join(home.dir, 'shared'));
    const id = await shared.put(source);
    expect(id).toMatch(/^[0-9a-f]{64}$/);
    cpSync(source, join(home.dir, 'elsewhere'), { recursive: true });
    expect(await shared.put(join(home.dir, 'elsewhere'))).toBe(id);
    appendFileSync(join(home.dir, 'elsewhere', 'config.json'), ' ');
    expect(await shared.put(join(home.dir, 'elsewhere'))).not.toBe(id);

    const files = await shared.open(id);
    for (const name of ['config.json', 'model.safetensors', 'tokenizer.json', 'state/optimizer.bin'])
      expect(readFileSync(join(files, name)).equals(readFileSync(join(source, name)))).toBe(true);
    expect(readdirSync(join(home.dir, 'shared')).filter((n) => n.startsWith('.incoming'))).toEqual([]);
  });

  it('refuses a stored artifact whose file, file list or manifest changed, naming what', async () => {
    const store = new ArtifactStore(join(home.dir, 'tamper'));
    const id = await store.put(source);
    const files = await store.open(id);
    const weights = readFileSync(join(files, 'model.safetensors'));
    weights[weights.length - 1]! ^= 1;
    writeFileSync(join(files, 'model.safetensors'), weights);
    await expect(store.open(id)).rejects.toThrow(/model\.safetensors has \d+ bytes, SHA-256 [0-9a-f]{64}; its manifest says/);

    const other = new ArtifactStore(join(home.dir, 'extra'));
    const id2 = await other.put(source);
    writeFileSync(join(await other.open(id2), 'adapter_config.json'), '{}');
    await expect(other.open(id2)).rejects.toThrow(`artifact ${id2}: adapter_config.json not in its manifest`);

    const third = new ArtifactStore(join(home.dir, 'manifest'));
    const id3 = await third.put(source);
    appendFileSync(join(home.dir, 'manifest', id3, 'manifest.json'), '\n');
    await expect(third.open(id3)).rejects.toThrow('its manifest.json does not hash to its id');
    await expect(third.open('0'.repeat(64))).rejects.toThrow('is not in');
    await expect(third.open('../x')).rejects.toThrow('"../x": not an artifact id (64 hex digits)');
  });

  describe('over HTTP, to a machine with no shared folder', () => {
    let origin: ArtifactStore;
    let server: ArtifactServer;
    let id: string;
    beforeAll(async () => {
      origin = new ArtifactStore(join(home.dir, 'trainer'));
      id = await origin.put(source);
      server = await serveArtifacts(origin);
    });
    afterAll(() => server.close());

    it('serves on loopback; another home fetches a checkpoint it can load, and keeps it for next time', async () => {
      expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      const worker = new ArtifactStore(join(home.dir, 'worker-home', 'artifacts'));
      const files = await openArtifact(server.url, id, worker);
      expect(files.startsWith(join(home.dir, 'worker-home'))).toBe(true);
      const fetched = openModel(files);
      const original = openModel(source);
      const ids = tf.tensor2d([[5, 9, 2, 7]], [1, 4], 'int32');
      const positions = tf.tensor2d([[0, 1, 2, 3]], [1, 4], 'int32');
      const [a, b] = [fetched, original].map((m) => m.model.forward({ ids, positions }).logits.arraySync());
      expect(a).toEqual(b);
      for (const m of [fetched, original]) m.model.dispose();
      tf.dispose([ids, positions]);
      // Cached: the same folder without the server.
      const closed = await serveArtifacts(origin);
      await closed.close();
      expect(await fetchArtifact(closed.url, id, worker)).toBe(files);
    });

    it('a file changed on the server is refused and nothing is left half-written; unknown and climbing paths are 404', async () => {
      const corrupt = new ArtifactStore(join(home.dir, 'corrupt-origin'));
      const badId = await corrupt.put(source);
      writeFileSync(join(await corrupt.open(badId), 'tokenizer.json'), '{"changed": true}');
      const bad = await serveArtifacts(corrupt);
      const worker = new ArtifactStore(join(home.dir, 'worker2'));
      try {
        await expect(fetchArtifact(bad.url, badId, worker)).rejects.toThrow(/tokenizer\.json has \d+ bytes/);
        expect(await worker.has(badId)).toBe(false);
        expect(readdirSync(join(home.dir, 'worker2'))).toEqual([]);
        expect(await rawGet(`${bad.url}/artifacts/${badId}/files/%2e%2e/%2e%2e/%2e%2e/corrupt-origin/${badId}/manifest.json`)).toBe(404);
        expect(await rawGet(`${bad.url}/artifacts/${badId}/files/..%2F..%2Fmanifest.json`)).toBe(404);
        expect(await rawGet(`${bad.url}/artifacts/${badId}/files/%E0%A4%A`)).toBe(404);
        expect(await rawGet(`${bad.url}/artifacts/${'0'.repeat(64)}/manifest.json`)).toBe(404);
        expect(await rawGet(`${bad.url}/artifacts/${badId}/manifest.json`)).toBe(200);
        await expect(fetchArtifact(bad.url, '0'.repeat(64), worker)).rejects.toThrow(/answered 404/);
      } finally {
        await bad.close();
      }
      expect(existsSync(join(home.dir, 'worker2', '0'.repeat(64)))).toBe(false);
    });
  });

  it('from the command line: put in one home, serve it, get it into a second home; a wrong id is refused with exit 2', async () => {
    const trainer = join(home.dir, 'cli-trainer');
    const worker = join(home.dir, 'cli-worker');
    const put = await retool(['artifacts', 'put', source, '--json'], { home: trainer });
    expect(put.exitCode).toBe(0);
    const { id } = json<{ id: string }>(put);
    const server = await startServe([], trainer, ['artifacts', 'serve']);
    try {
      const got = await retool(['artifacts', 'get', id, '--from', server.baseURL, '--json'], { home: worker });
      expect(got.exitCode).toBe(0);
      const { files } = json<{ files: string }>(got);
      expect(files).toBe(join(worker, 'artifact-store', id, 'files'));
      expect(readFileSync(join(files, 'model.safetensors')).equals(readFileSync(join(source, 'model.safetensors')))).toBe(true);
      const wrong = await retool(['artifacts', 'get', 'f'.repeat(64), '--from', server.baseURL], { home: worker });
      expect(wrong.exitCode).toBe(2);
      expect(wrong.stderr).toMatch(/artifact f{64}: .* answered 404/);
    } finally {
      await server.stop();
    }
    // A mounted store folder works the same, with no server.
    const shared = await retool(['artifacts', 'get', id, '--from', join(trainer, 'artifact-store'), '--json'], { home: worker });
    expect(json<{ files: string }>(shared).files).toBe(join(trainer, 'artifact-store', id, 'files'));
  });
});
