import { createServer } from 'node:net';
import { startDevServer, type DevServerOptions } from '../../worker/temporal.js';

/** A loopback port free right now (the OS picks it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/**
 * A dev server on fresh free ports. Between our probe and the server's bind another process (or
 * one of the server's own internal listeners) may take a port: then try again with new ones.
 */
export async function startServerOnFreePorts(
  opts: Omit<DevServerOptions, 'port' | 'uiPort'>,
  attempts = 3,
): Promise<Awaited<ReturnType<typeof startDevServer>> & { ports: { port: number; uiPort: number } }> {
  for (let i = 1; ; i++) {
    const ports = { port: await freePort(), uiPort: await freePort() };
    try {
      return { ...(await startDevServer({ ...opts, ...ports })), ports };
    } catch (err) {
      if (i >= attempts || !/address already in use|already taken/i.test(String(err))) throw err;
    }
  }
}
