// `retool serve` started as a user starts it, on a free port; resolves once it prints its address.
import { join } from 'node:path';
import { execa } from 'execa';
import { ROOT } from './cli.js';

export interface RunningServer {
  /** The OpenAI API root, e.g. http://127.0.0.1:PORT/v1. */
  baseURL: string;
  stop: () => Promise<void>;
}

/** `retool serve` by default; `command` names another serving command (`['artifacts', 'serve']`). */
export async function startServe(args: string[], home: string, command = ['serve']): Promise<RunningServer> {
  const server = execa('node', [join(ROOT, 'bin', 'retool.js'), ...command, ...args, '--port', '0', '--json'], {
    cwd: ROOT,
    env: { RETOOL_HOME: home },
    reject: false,
  });
  // The first stdout JSON object names the address.
  let printed = '';
  const baseURL = await new Promise<string>((resolve, reject) => {
    server.stdout!.on('data', (chunk: Buffer) => {
      printed += chunk.toString();
      try {
        resolve((JSON.parse(printed) as { url: string }).url);
      } catch {
        // not whole yet
      }
    });
    void server.then((r) => reject(new Error(`retool serve exited ${r.exitCode}: ${String(r.stderr)}`)));
  });
  return {
    baseURL,
    stop: async () => {
      server.kill('SIGTERM');
      await server;
    },
  };
}
