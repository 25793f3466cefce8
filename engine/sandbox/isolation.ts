import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { VENV_DIR } from '../util/project-root.js';

export const VENV_PYTHON = join(VENV_DIR, 'bin', 'python');
export const UNSHARE_INIT = join(dirname(fileURLToPath(import.meta.url)), 'unshare-init.py');

/** The one opt-out: run model code with no isolation at all when none is available. */
export const UNSAFE_ENV = 'RETOOL_UNSAFE_NO_SANDBOX';
/** Forces a mode (`bubblewrap` or `unshare`); its absence is then an error, never a fallback. */
export const MODE_ENV = 'RETOOL_SANDBOX';
export const INSTALL_HINT = 'apt-get install bubblewrap';

/**
 * - bubblewrap: namespaces, a minimal read-only filesystem, a private /tmp, an unprivileged uid.
 * - unshare: the same from util-linux `unshare` + `setpriv`, for machines without bubblewrap.
 * - unsafe-none: no namespaces (only with RETOOL_UNSAFE_NO_SANDBOX=1); still never uid 0.
 */
export type IsolationMode = 'bubblewrap' | 'unshare' | 'unsafe-none';
export const ISOLATION_MODES: readonly IsolationMode[] = ['bubblewrap', 'unshare', 'unsafe-none'];

export interface Isolation {
  mode: IsolationMode;
  /** The launcher: bwrap or unshare; null in unsafe-none. */
  launcher: string | null;
  /** Host root: model code runs under setpriv as a per-slot uid. */
  dropUid: boolean;
  /** unshare as a host user: a user namespace of its own (namespace root maps to this user). */
  userNamespace: boolean;
  /** One line for people: what this machine gives and what would be better. */
  summary: string;
}

/** No isolation is available and the unsafe opt-out was not given: model code must not run. */
export class SandboxUnavailableError extends Error {
  override readonly name = 'SandboxUnavailableError';
}

/** Found on PATH, as a shell would: a user hides a tool from the sandbox by leaving it off PATH. */
function which(name: string): string | null {
  for (const dir of (process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin').split(':')) {
    if (!dir) continue;
    const candidate = join(dir, name);
    if (existsSync(candidate)) return candidate;
  }
  return null;
}

const isRoot = (): boolean => process.getuid?.() === 0;

function failureText(err: unknown): string {
  const e = err as { stderr?: Buffer | string; message?: string };
  const text = String(e.stderr ?? '').trim() || e.message || String(err);
  return text.split('\n').filter(Boolean).pop() ?? text;
}

/** Arguments that give a program its own pid, net, mount, ipc and uts namespaces. */
export function unshareArgs(userNamespace: boolean): string[] {
  return [
    ...(userNamespace ? ['--user', '--map-root-user'] : []),
    '--pid',
    '--net',
    '--mount',
    '--ipc',
    '--uts',
    '--fork',
    '--kill-child',
    '--mount-proc',
    '--propagation',
    'private',
  ];
}

/** Why a mode cannot run here (null when a trial run worked). One trial per mode per process. */
const probed = new Map<IsolationMode, string | null>();

function probe(mode: 'bubblewrap' | 'unshare'): string | null {
  if (probed.has(mode)) return probed.get(mode)!;
  let failure: string | null = null;
  if (mode === 'bubblewrap') {
    const bwrap = which('bwrap');
    if (!bwrap) failure = 'bubblewrap is not installed';
    else {
      try {
        execFileSync(bwrap, ['--ro-bind', '/', '/', '--unshare-pid', '--unshare-net', '--die-with-parent', '--', '/bin/true'], {
          stdio: 'pipe',
          timeout: 10_000,
        });
      } catch (err) {
        failure = `bubblewrap cannot create namespaces here (${failureText(err)})`;
      }
    }
  } else {
    const unshare = which('unshare');
    const setpriv = which('setpriv');
    if (!unshare || !setpriv) failure = 'util-linux unshare/setpriv not found';
    else if (!existsSync(VENV_PYTHON)) failure = `${VENV_PYTHON} is missing (run: npm run setup)`;
    else {
      // The whole launcher, as a run would use it, with /bin/true as the program.
      const spec = { binds: [], files: [], tmpBytes: 1 << 20, uid: isRoot() ? slotUid(255) : null, env: {}, argv: ['/usr/bin/true'] };
      try {
        execFileSync(unshare, [...unshareArgs(!isRoot()), '--', VENV_PYTHON, '-I', UNSHARE_INIT, JSON.stringify(spec)], {
          stdio: 'pipe',
          timeout: 10_000,
          env: {},
        });
      } catch (err) {
        failure = `unshare cannot create namespaces here (${failureText(err)})`;
      }
    }
  }
  probed.set(mode, failure);
  return failure;
}

function isolationFor(mode: IsolationMode, summary: string): Isolation {
  return {
    mode,
    launcher: mode === 'bubblewrap' ? which('bwrap') : mode === 'unshare' ? which('unshare') : null,
    dropUid: isRoot(),
    userNamespace: mode === 'unshare' && !isRoot(),
    summary,
  };
}

/**
 * The best isolation this machine gives: bubblewrap, else unshare + setpriv. With neither, model
 * code does not run (SandboxUnavailableError) unless RETOOL_UNSAFE_NO_SANDBOX=1 says otherwise.
 * `wanted` (or RETOOL_SANDBOX) forces a mode; when that mode cannot run, it is an error.
 */
export function detectIsolation(wanted: IsolationMode | undefined = readWanted()): Isolation {
  if (wanted === 'unsafe-none') {
    if (process.env[UNSAFE_ENV] !== '1') throw new SandboxUnavailableError(`the unsafe-none sandbox mode needs ${UNSAFE_ENV}=1`);
    return isolationFor(
      'unsafe-none',
      `code sandbox: NONE (${UNSAFE_ENV}=1): model code runs with no isolation; install bubblewrap (${INSTALL_HINT})`,
    );
  }
  if (wanted) {
    const failure = probe(wanted);
    if (failure) throw new SandboxUnavailableError(`${MODE_ENV}=${wanted}, but ${failure}`);
    return isolationFor(
      wanted,
      wanted === 'bubblewrap' ? 'code sandbox: bubblewrap' : `code sandbox: unshare + setpriv (forced by ${MODE_ENV}=unshare)`,
    );
  }
  const bwrapFailure = probe('bubblewrap');
  if (!bwrapFailure) return isolationFor('bubblewrap', 'code sandbox: bubblewrap');
  const unshareFailure = probe('unshare');
  if (!unshareFailure) {
    return isolationFor('unshare', `code sandbox: unshare + setpriv, because ${bwrapFailure}; bubblewrap is recommended (${INSTALL_HINT})`);
  }
  if (process.env[UNSAFE_ENV] === '1') {
    return isolationFor(
      'unsafe-none',
      `code sandbox: NONE (${UNSAFE_ENV}=1): ${bwrapFailure}; ${unshareFailure}; model code runs with no isolation`,
    );
  }
  throw new SandboxUnavailableError(
    `no code sandbox on this machine: ${bwrapFailure}, and ${unshareFailure}. Install bubblewrap (${INSTALL_HINT}), ` +
      `or run model code with no isolation at your own risk: ${UNSAFE_ENV}=1`,
  );
}

function readWanted(): IsolationMode | undefined {
  const value = process.env[MODE_ENV];
  if (!value) return undefined;
  if (value === 'bubblewrap' || value === 'unshare') return value;
  throw new SandboxUnavailableError(
    `${MODE_ENV}=${value} is not a mode: use bubblewrap or unshare (or ${UNSAFE_ENV}=1 to allow no isolation)`,
  );
}

/**
 * RLIMIT_NPROC counts every process of a uid: it bounds one run only where the run has a uid (or
 * user namespace) of its own, which unsafe-none as a normal user does not give.
 */
export function limitsProcesses(isolation: Isolation): boolean {
  return isolation.mode !== 'unsafe-none' || isolation.dropUid;
}

/** The modes that work here, best first (for tests and `retool bench sandbox --modes`). */
export function availableModes(): IsolationMode[] {
  return (['bubblewrap', 'unshare'] as const).filter((m) => probe(m) === null);
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
  // str/bytes hashes (set iteration order) the same in every run and after a resume.
  PYTHONHASHSEED: '0',
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
