import { chownSync, existsSync, realpathSync } from 'node:fs';
import { SANDBOX_ENV, UNSHARE_INIT, unshareArgs, VENV_PYTHON, type Isolation } from './isolation.js';

export interface SandboxCommandOptions {
  /** Program and arguments, run inside the sandbox. */
  argv: string[];
  /** Host paths the program needs, bound read-only at the same place or at `dest`. */
  readOnly: (string | { src: string; dest: string })[];
  uid: number;
  env?: Record<string, string>;
  /** Size of the private /tmp (tmpfs). */
  tmpBytes?: number;
  /** Files the sandbox gets from the parent's file descriptors (content written into its /tmp). */
  files?: { fd: number; dest: string }[];
}

export interface SandboxCommand {
  file: string;
  args: string[];
}

const DEFAULT_TMP_BYTES = 64 * 1024 * 1024;

function resolveBinds(readOnly: SandboxCommandOptions['readOnly']): { src: string; dest: string }[] {
  return readOnly.map((bind) => {
    const src = realpathSync(typeof bind === 'string' ? bind : bind.src);
    const dest = typeof bind === 'string' ? src : bind.dest;
    // Paths under /tmp would be hidden by the private /tmp: bind those elsewhere (dest).
    if (dest === '/tmp' || dest.startsWith('/tmp/')) throw new Error(`cannot bind ${dest} into the sandbox: /tmp is private there`);
    return { src, dest };
  });
}

/** setpriv to an unprivileged uid with no new privileges and no capabilities. */
function dropToUid(uid: number): string[] {
  return [
    '/usr/bin/setpriv',
    `--reuid=${uid}`,
    `--regid=${uid}`,
    '--clear-groups',
    '--no-new-privs',
    '--bounding-set=-all',
    '--inh-caps=-all',
    '--',
  ];
}

/**
 * unsafe-none: `argv` on the host with no namespaces, but never as uid 0: as root, under setpriv
 * as `uid`, which then owns `workDir` (so a run's kill(-1) reaches only its own uid).
 */
export function unsandboxedCommand(isolation: Isolation, argv: string[], uid: number, workDir: string): SandboxCommand {
  const full = isolation.dropUid ? [...dropToUid(uid), ...argv] : argv;
  if (isolation.dropUid) chownSync(workDir, uid, uid);
  return { file: full[0]!, args: full.slice(1) };
}

/**
 * The bwrap command line: no network, private pid/ipc/uts namespaces, read-only system dirs and
 * bound paths only (no /root, /home or /work unless bound), private /tmp, cleared environment,
 * dies with its parent, new session (no terminal injection), a read-only root, then setpriv to an unprivileged uid
 * with no new privileges and no capabilities.
 */
function bwrapArgs(isolation: Isolation, opts: SandboxCommandOptions): string[] {
  const args = ['--unshare-net', '--unshare-pid', '--unshare-ipc', '--unshare-uts', '--unshare-cgroup-try'];
  args.push('--die-with-parent', '--new-session', '--clearenv', '--hostname', 'sandbox');
  args.push('--ro-bind', '/usr', '/usr', '--ro-bind', '/etc', '/etc');
  for (const link of ['bin', 'lib', 'lib64', 'sbin']) {
    const host = `/${link}`;
    if (existsSync(host)) args.push('--symlink', `usr/${link}`, host);
  }
  const made = new Set<string>(['/', '/usr', '/etc', '/tmp', '/proc', '/dev']);
  for (const { src, dest } of resolveBinds(opts.readOnly)) {
    const parts = dest.split('/').filter(Boolean);
    for (let i = 1; i < parts.length; i++) {
      const ancestor = `/${parts.slice(0, i).join('/')}`;
      if (made.has(ancestor) || ancestor.startsWith('/usr/') || ancestor.startsWith('/etc/')) continue;
      made.add(ancestor);
      args.push('--perms', '0755', '--dir', ancestor);
    }
    if (!(src === dest && dest.startsWith('/usr/'))) args.push('--ro-bind', src, dest);
  }
  args.push('--proc', '/proc', '--dev', '/dev', '--perms', '1777', '--size', String(16 * 1024 * 1024), '--tmpfs', '/dev/shm');
  args.push('--perms', '1777', '--size', String(opts.tmpBytes ?? DEFAULT_TMP_BYTES), '--tmpfs', '/tmp', '--chdir', '/tmp');
  // A host user's code runs as that user, who owns bwrap's tmpfs mounts: read-only, or /, /dev
  // and the bind points' parents (/opt/retool) would be writable (/dev/shm stays, for multiprocessing).
  args.push('--remount-ro', '/', '--remount-ro', '/dev');
  for (const [k, v] of Object.entries({ ...SANDBOX_ENV, ...opts.env })) args.push('--setenv', k, v);
  for (const { fd, dest } of opts.files ?? []) args.push('--file', String(fd), dest);
  args.push('--');
  if (isolation.dropUid) args.push(...dropToUid(opts.uid));
  return [...args, ...opts.argv];
}

/** unshare's namespaces, then unshare-init.py builds bubblewrap's filesystem and drops the uid. */
function unshareCommandArgs(isolation: Isolation, opts: SandboxCommandOptions): string[] {
  const spec = {
    binds: resolveBinds(opts.readOnly).map(({ src, dest }) => [src, dest]),
    files: (opts.files ?? []).map(({ fd, dest }) => [fd, dest]),
    tmpBytes: opts.tmpBytes ?? DEFAULT_TMP_BYTES,
    uid: isolation.dropUid ? opts.uid : null,
    env: { ...SANDBOX_ENV, ...opts.env },
    argv: opts.argv,
  };
  return [...unshareArgs(isolation.userNamespace), '--', VENV_PYTHON, '-I', UNSHARE_INIT, JSON.stringify(spec)];
}

/**
 * The command that runs `opts.argv` isolated; the same filesystem layout in both namespace modes.
 * Start it with an empty environment (everything the program sees is in `opts.env`).
 */
export function sandboxCommand(isolation: Isolation, opts: SandboxCommandOptions): SandboxCommand {
  if (isolation.mode === 'bubblewrap') return { file: isolation.launcher!, args: bwrapArgs(isolation, opts) };
  if (isolation.mode === 'unshare') return { file: isolation.launcher!, args: unshareCommandArgs(isolation, opts) };
  throw new Error('sandboxCommand: unsafe-none has no sandbox; run the program directly');
}
