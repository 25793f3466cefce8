import { Command } from 'commander';
import { BadInputError } from '../../domain/errors.js';
import { emit, parseNumber, type CommonOptions } from '../output.js';

/** The home's content-addressed artifact store (apart from `<home>/artifacts`, the runs' outputs by name). */
async function homeStore(opts: CommonOptions) {
  const { join } = await import('node:path');
  const { resolveHome } = await import('../../datasets/home.js');
  const { ArtifactStore } = await import('../../datasets/artifacts/store.js');
  return new ArtifactStore(join(resolveHome(opts.home), 'artifact-store'));
}

/** An artifact store's refusals are bad input (a wrong id, a changed file): exit 2 with the reason. */
async function refusing<T>(work: () => Promise<T>): Promise<T> {
  const { ArtifactError } = await import('../../datasets/artifacts/manifest.js');
  try {
    return await work();
  } catch (err) {
    if (err instanceof ArtifactError) throw new BadInputError(err.message);
    throw err;
  }
}

export function artifactsCommand(common: (cmd: Command) => Command): Command {
  const artifacts = new Command('artifacts').description(
    'content-addressed artifacts (checkpoints, adapters) for workers on other machines: put, get (checked), serve over HTTP',
  );

  common(artifacts.command('put'))
    .description("copy a folder into the home's artifact store; prints its id (the SHA-256 of its manifest)")
    .argument('<dir>', 'the folder, e.g. a checkpoint')
    .action(async (dir: string, opts: CommonOptions) => {
      const store = await homeStore(opts);
      const id = await refusing(() => store.put(dir));
      emit(opts, { id, store: store.root }, () => id);
    });

  common(artifacts.command('get'))
    .description("an artifact from a shared store folder or a training worker's artifact server, every file checked against its id")
    .argument('<id>', 'the artifact id')
    .requiredOption('--from <url|dir>', 'http(s)://HOST:PORT of `retool artifacts serve`, or a store folder this machine mounts')
    .action(async (id: string, opts: CommonOptions & { from: string }) => {
      const { openArtifact } = await import('../../datasets/artifacts/http.js');
      const store = await homeStore(opts);
      const files = await refusing(() => openArtifact(opts.from, id, store));
      emit(opts, { id, files }, () => files);
    });

  common(artifacts.command('serve'))
    .description("serve the home's artifact store read-only over HTTP until interrupted")
    .option('--host <address>', 'address to listen on', '127.0.0.1')
    .option('--port <n>', 'port (0: any free one)', parseNumber('--port'), 8765)
    .action(async (opts: CommonOptions & { host: string; port: number }) => {
      const { serveArtifacts } = await import('../../datasets/artifacts/http.js');
      const store = await homeStore(opts);
      const server = await serveArtifacts(store, { host: opts.host, port: opts.port });
      emit(opts, { url: server.url, store: store.root }, () => `serving ${store.root} at ${server.url}`);
      await new Promise<void>((done) => {
        const stop = () => void server.close().then(done);
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
    });
  return artifacts;
}
