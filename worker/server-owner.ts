// Whose Temporal dev server answers on a loopback port. The CLI starts each home's dev server
// with `--db-filename <home>/temporal.db`, so the process table (Linux /proc) is the marker: the
// process listening on the port, its command line, and whether its database file still exists.
import { existsSync, readdirSync, readFileSync, readlinkSync, realpathSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';

export interface DevServerProcess {
  pid: number;
  port: number;
  /** null when it runs without the web UI. */
  uiPort: number | null;
  /** Its `--db-filename`, absolute; null for an in-memory server. */
  db: string | null;
  /** Its database file was deleted (or replaced) while it ran: it answers, but cannot start workflows. */
  dbGone: boolean;
}

/** What listens on a loopback port. */
export type PortHolder =
  | { kind: 'free' }
  | { kind: 'dev-server'; server: DevServerProcess }
  | { kind: 'process'; pid: number; command: string }
  /** A listener whose process this user cannot see (another user's, another pid namespace). */
  | { kind: 'unknown' };

/** Whether this machine lets us see listeners and processes (Linux). */
export function canInspect(): boolean {
  return existsSync('/proc/net/tcp');
}

/** The database file a home's dev server uses. */
export function homeDb(home: string): string {
  return canonical(join(home, 'temporal.db'));
}

/** The path with its folder's symlinks resolved, so that two spellings of one home compare equal. */
function canonical(path: string): string {
  try {
    return join(realpathSync(dirname(path)), basename(path));
  } catch {
    return resolve(path);
  }
}

function pids(): number[] {
  try {
    return readdirSync('/proc')
      .filter((d) => /^\d+$/.test(d))
      .map(Number);
  } catch {
    return [];
  }
}

function argv(pid: number): string[] | null {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
  } catch {
    return null;
  }
}

function flag(args: string[], names: string[]): string | undefined {
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    for (const name of names) {
      if (arg === name) return args[i + 1];
      if (arg.startsWith(`${name}=`)) return arg.slice(name.length + 1);
    }
  }
  return undefined;
}

/** A `temporal server start-dev` process, read from its command line and open files. */
function devServer(pid: number): DevServerProcess | null {
  const args = argv(pid);
  if (!args || !args.includes('server') || !args.includes('start-dev')) return null;
  const port = Number(flag(args, ['--port', '-p']) ?? 7233);
  const headless = args.includes('--headless');
  const uiPort = headless ? null : Number(flag(args, ['--ui-port']) ?? port + 1000);
  const dbArg = flag(args, ['--db-filename', '-f']);
  let db: string | null = null;
  let dbGone = false;
  if (dbArg) {
    let cwd = '/';
    try {
      cwd = readlinkSync(`/proc/${pid}/cwd`);
    } catch {
      // Another user's process: its path is taken as written.
    }
    db = canonical(resolve(cwd, dbArg));
    dbGone = !existsSync(db) || openFiles(pid).some((f) => f === `${db} (deleted)` || f === `${resolve(cwd, dbArg)} (deleted)`);
  }
  return { pid, port, uiPort, db, dbGone };
}

function openFiles(pid: number): string[] {
  try {
    return readdirSync(`/proc/${pid}/fd`).flatMap((fd) => {
      try {
        return [readlinkSync(`/proc/${pid}/fd/${fd}`)];
      } catch {
        return [];
      }
    });
  } catch {
    return [];
  }
}

/** Socket inodes listening on `port` (any local address: 127.0.0.1 and 0.0.0.0 both answer there). */
function listeningInodes(port: number): Set<string> {
  const inodes = new Set<string>();
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = '';
    try {
      text = readFileSync(table, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      // local_address is ADDR:PORT in hex; state 0A is LISTEN; inode is the tenth column.
      if (cols.length > 9 && cols[1]!.endsWith(`:${hexPort}`) && cols[3] === '0A') inodes.add(cols[9]!);
    }
  }
  return inodes;
}

function holdsSocket(pid: number, inodes: Set<string>): boolean {
  return openFiles(pid).some((f) => f.startsWith('socket:[') && inodes.has(f.slice(8, -1)));
}

/** What listens on 127.0.0.1:`port`. Dev servers are looked at first: the usual answer, and cheap. */
export function portHolder(port: number): PortHolder {
  const inodes = listeningInodes(port);
  if (inodes.size === 0) return { kind: 'free' };
  const all = pids();
  for (const pid of all) {
    const server = devServer(pid);
    if (server && holdsSocket(pid, inodes)) return { kind: 'dev-server', server };
  }
  for (const pid of all) {
    if (holdsSocket(pid, inodes)) return { kind: 'process', pid, command: (argv(pid) ?? []).join(' ').slice(0, 120) };
  }
  return { kind: 'unknown' };
}

/** Every dev-server process started on `home`'s database file, those whose file is gone included. */
export function homeServers(home: string): DevServerProcess[] {
  const db = homeDb(home);
  return pids().flatMap((pid) => {
    const server = devServer(pid);
    return server && server.db === db ? [server] : [];
  });
}

/** `home`'s dev server if one runs, its database intact and listening on its port. */
export function liveHomeServer(home: string): DevServerProcess | null {
  return homeServers(home).find((s) => !s.dbGone && holdsSocket(s.pid, listeningInodes(s.port))) ?? null;
}

/** One phrase for whoever holds a port, for the line the user reads. */
export function describeHolder(holder: PortHolder): string {
  switch (holder.kind) {
    case 'free':
      return 'free';
    case 'unknown':
      return 'taken by a process this user cannot see';
    case 'process':
      return `taken by another program (pid ${holder.pid}: ${holder.command})`;
    case 'dev-server': {
      const s = holder.server;
      if (!s.db) return `served by an in-memory Temporal dev server of no retool home (pid ${s.pid})`;
      if (s.dbGone)
        return `served by a Temporal dev server whose database ${s.db} was deleted while it ran (pid ${s.pid}; it can no longer start workflows, \`kill ${s.pid}\` stops it)`;
      return `served by another home's Temporal dev server (${dirname(s.db)}, pid ${s.pid})`;
    }
  }
}
