import { execFileSync } from 'node:child_process';
import { existsSync, realpathSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const PROJECT_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const VENV_PYTHON = join(PROJECT_ROOT, '.venv', 'bin', 'python');

export interface Isolation {
  mode: 'bubblewrap' | 'rlimits';
  bwrap: string | null;
  /** Root can and must drop to an unprivileged uid: rlimits on processes do not bind uid 0. */
  dropUid: boolean;
  /** What is missing, for a loud warning. Empty under bubblewrap. */
  missing: string[];
}

let detected: Isolation | null = null;

function which(name: string): string | null {
  for (const dir of (process.env.PATH ?? '/usr/bin:/bin').split(':')) {
    const candidate = join(dir, name);
    if (existsSync(candidate)) return candidate;
  }
  return null;
}

/**
 * Bubblewrap when it is installed and works here (a trial run), else rlimits and a process group.
 * RETOOL_SANDBOX=rlimits forces the fallback; RETOOL_SANDBOX=bubblewrap makes its absence an error.
 */
export function detectIsolation(): Isolation {
  if (detected) return detected;
  const wanted = process.env.RETOOL_SANDBOX;
  const isRoot = process.getuid?.() === 0;
  const bwrap = wanted === 'rlimits' ? null : which('bwrap');
  let failure = bwrap ? null : 'bubblewrap is not installed (Debian/Ubuntu: apt-get install bubblewrap)';
  if (bwrap) {
    try {
      execFileSync(bwrap, ['--ro-bind', '/', '/', '--unshare-pid', '--unshare-net', '--die-with-parent', '--', '/bin/true'], { stdio: 'pipe', timeout: 10_000 });
    } catch (err) {
      failure = `bubblewrap is installed but cannot create namespaces here: ${String((err as { stderr?: Buffer }).stderr ?? err).trim()}`;
    }
  }
  if (wanted === 'rlimits') failure = 'RETOOL_SANDBOX=rlimits was set';
  if (failure && wanted === 'bubblewrap') throw new Error(`RETOOL_SANDBOX=bubblewrap, but ${failure}`);
  detected = failure
    ? {
        mode: 'rlimits',
        bwrap: null,
        dropUid: false,
        missing: [failure, 'so: no network, filesystem or pid isolation; code runs as this user with rlimits and a process group only'],
      }
    : { mode: 'bubblewrap', bwrap, dropUid: isRoot, missing: [] };
  return detected;
}

/**
 * A uid per pool slot (0-127) or one-shot run (128-255), so RLIMIT_NPROC counts one run's
 * processes, not every sandbox's; the block of 256 is chosen by this process's pid.
 */
export function slotUid(slot: number): number {
  return 100_000 + (process.pid % 4096) * 256 + (slot % 256);
}

export const SANDBOX_ENV: Record<string, string> = {
  PATH: '/usr/local/bin:/usr/bin:/bin',
  HOME: '/tmp',
  LANG: 'C.UTF-8',
  LC_ALL: 'C.UTF-8',
  PYTHONDONTWRITEBYTECODE: '1',
  PYTHONUNBUFFERED: '1',
  OPENBLAS_NUM_THREADS: '1',
  OMP_NUM_THREADS: '1',
  MKL_NUM_THREADS: '1',
};

let pythonHome: string | null = null;

/** The interpreter's installation (sys.base_prefix), which a venv's python links into. */
export function pythonPrefix(python = VENV_PYTHON): string {
  pythonHome ??= execFileSync(python, ['-c', 'import sys; print(sys.base_prefix)'], { encoding: 'utf8' }).trim();
  return pythonHome;
}

export interface SandboxCommandOptions {
  /** Program and arguments, run inside the sandbox. */
  argv: string[];
  /** Host paths the program needs, bound read-only at the same place or at `dest`. */
  readOnly: (string | { src: string; dest: string })[];
  uid: number;
  env?: Record<string, string>;
  /** Size of the private /tmp (tmpfs). */
  tmpBytes?: number;
  /** Extra bwrap arguments placed before the program (e.g. --file FD DEST). */
  extra?: string[];
}

/**
 * The bwrap command line: no network, private pid/ipc/uts namespaces, read-only system dirs and
 * bound paths only (no /root, /home or /work unless bound), private /tmp, cleared environment,
 * dies with its parent, new session (no terminal injection), then setpriv to an unprivileged uid
 * with no new privileges and no capabilities.
 */
export function bwrapArgs(opts: SandboxCommandOptions): string[] {
  const args = ['--unshare-net', '--unshare-pid', '--unshare-ipc', '--unshare-uts', '--unshare-cgroup-try'];
  args.push('--die-with-parent', '--new-session', '--clearenv', '--hostname', 'sandbox');
  args.push('--ro-bind', '/usr', '/usr', '--ro-bind', '/etc', '/etc');
  for (const link of ['bin', 'lib', 'lib64', 'sbin']) {
    const host = `/${link}`;
    if (existsSync(host)) args.push('--symlink', `usr/${link}`, host);
  }
  const made = new Set<string>(['/', '/usr', '/etc', '/tmp', '/proc', '/dev']);
  for (const bind of opts.readOnly) {
    const src = realpathSync(typeof bind === 'string' ? bind : bind.src);
    const dest = typeof bind === 'string' ? src : bind.dest;
    // Paths under /tmp would be hidden by the private /tmp: bind those elsewhere (dest).
    if (dest === '/tmp' || dest.startsWith('/tmp/')) throw new Error(`cannot bind ${dest} into the sandbox: /tmp is private there`);
    const parts = dest.split('/').filter(Boolean);
    for (let i = 1; i < parts.length; i++) {
      const ancestor = `/${parts.slice(0, i).join('/')}`;
      if (made.has(ancestor) || ancestor.startsWith('/usr/') || ancestor.startsWith('/etc/')) continue;
      made.add(ancestor);
      args.push('--perms', '0755', '--dir', ancestor);
    }
    if (!(src === dest && dest.startsWith('/usr/'))) args.push('--ro-bind', src, dest);
  }
  args.push('--proc', '/proc', '--dev', '/dev');
  args.push('--perms', '1777', '--size', String(opts.tmpBytes ?? 64 * 1024 * 1024), '--tmpfs', '/tmp', '--chdir', '/tmp');
  for (const [k, v] of Object.entries({ ...SANDBOX_ENV, ...opts.env })) args.push('--setenv', k, v);
  args.push(...(opts.extra ?? []), '--');
  if (detectIsolation().dropUid) {
    args.push('/usr/bin/setpriv', `--reuid=${opts.uid}`, `--regid=${opts.uid}`, '--clear-groups', '--no-new-privs', '--bounding-set=-all', '--inh-caps=-all', '--');
  }
  return [...args, ...opts.argv];
}
