import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createConnection, createServer, type Server } from 'node:net';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import {
  availableModes,
  lastErrorLine,
  renderForModel,
  Sandbox,
  truncateMiddle,
  type ExecResult,
  type SandboxLimits,
} from '../engine/sandbox/index.js';
import { PROJECT_ROOT } from '../engine/util/project-root.js';
import { freePort } from './helpers/net.js';
import { bwrapWorks, expectedSandboxMode } from './helpers/sandbox-mode.js';

/**
 * Hostile code against the real sandbox (fork servers in bubblewrap, and in the unshare + setpriv
 * fallback): every case checks the status, that nothing reached the host, and that the pool still
 * answers afterwards. The catalogue runs once per isolation mode this machine has. Limits are
 * short so the file stays fast on two cores.
 */
const MODES = availableModes();

// Unique per test run, so a leftover from an earlier run can never make a check pass or fail.
const MARK = `retool-sbx-${process.pid}-${randomUUID().slice(0, 8)}`;
// Set before any Sandbox exists: if the environment leaks into a run, this is what would show.
const SECRET_NAME = 'RETOOL_TEST_SECRET';
const SECRET = `never-show-${randomUUID()}`;
const previousSecret = process.env[SECRET_NAME];
process.env[SECRET_NAME] = SECRET;

const POOL = 2;
const SHORT = { timeoutMs: 1000 } satisfies Partial<SandboxLimits>;

const py = (sandbox: Sandbox, code: string, limits: Partial<SandboxLimits> = {}, stdin = ''): Promise<ExecResult> =>
  sandbox.run({ lang: 'python', code, limits, stdin });

const js = (sandbox: Sandbox, code: string, limits: Partial<SandboxLimits> = {}): Promise<ExecResult> =>
  sandbox.run({ lang: 'javascript', code, limits });

/** The pool still works: `print(6*7)` on every slot at once gives ok and 42. */
async function expectHealthy(sandbox: Sandbox, slots = POOL): Promise<void> {
  const results = await Promise.all(Array.from({ length: slots }, () => py(sandbox, 'print(6*7)', { timeoutMs: 5000 })));
  for (const r of results) {
    expect(r, JSON.stringify(r)).toMatchObject({ status: 'ok', exitCode: 0, stdout: '42\n', truncated: false });
  }
}

/** Processes this run's pid namespace holds: init (bwrap), the fork server and the run itself. */
const COUNT_PROCS = "import os; print(len([p for p in os.listdir('/proc') if p.isdigit()]))";

async function expectNoLeftovers(sandbox: Sandbox): Promise<void> {
  const results = await Promise.all(Array.from({ length: POOL }, () => py(sandbox, COUNT_PROCS, { timeoutMs: 5000 })));
  for (const r of results) {
    expect(r.status, JSON.stringify(r)).toBe('ok');
    expect(Number(r.stdout.trim())).toBeLessThanOrEqual(3);
  }
}

/** Places on the host where a file written by an escaping run would land. */
function hostLeaks(name: string): string[] {
  const places = ['/', '/etc', '/root', '/tmp', homedir(), tmpdir(), process.cwd(), join(process.cwd(), '..')];
  const found = places.map((dir) => join(dir, name)).filter((p) => existsSync(p));
  for (const dir of new Set(['/tmp', tmpdir(), process.cwd()])) {
    for (const entry of readdirSync(dir)) if (entry.startsWith(name)) found.push(join(dir, entry));
  }
  return found;
}

/** Tries a TCP connection from the host: 'connected' or the error code. */
function tryConnect(port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    socket.setTimeout(1000, () => {
      socket.destroy();
      resolve('ETIMEDOUT');
    });
    socket.once('connect', () => {
      socket.destroy();
      resolve('connected');
    });
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'));
  });
}

const lines = (...l: string[]): string => `${l.join('\n')}\n`;

afterAll(() => {
  rmSync(join(tmpdir(), `retool-node-only-${process.pid}`), { recursive: true, force: true });
  if (previousSecret === undefined) delete process.env[SECRET_NAME];
  else process.env[SECRET_NAME] = previousSecret;
});

/** A process of the host's, for the code to try to see, signal or kill. */
function startHostProcess(): ChildProcess {
  return spawn('sleep', ['1000'], { detached: true, stdio: 'ignore' });
}

function isAlive(proc: ChildProcess): boolean {
  if (proc.exitCode !== null || proc.signalCode !== null) return false;
  try {
    process.kill(proc.pid!, 0);
    return true;
  } catch {
    return false;
  }
}

describe('isolation', () => {
  it('picks bubblewrap where it works, else the unshare fallback (or the mode RETOOL_SANDBOX forces)', () => {
    const sandbox = new Sandbox({ poolSize: 1 });
    void sandbox.close();
    const expected = expectedSandboxMode();
    expect(sandbox.isolation.mode).toBe(expected);
    expect(MODES).toContain('unshare');
    expect(MODES.includes('bubblewrap')).toBe(bwrapWorks());
  });

  /** `retool exec --json` with only `node` on PATH: neither bubblewrap nor unshare can be found. */
  async function execWithoutTools(code: string, env: Record<string, string>, lang = 'python') {
    return retoolWithoutTools(['exec', '--json', '--lang', lang], env, code);
  }

  function retoolWithoutTools(args: string[], env: Record<string, string>, input = '') {
    const bin = join(tmpdir(), `retool-node-only-${process.pid}`);
    mkdirSync(bin, { recursive: true });
    if (!existsSync(join(bin, 'node'))) symlinkSync(process.execPath, join(bin, 'node'));
    return execa(process.execPath, [join(PROJECT_ROOT, 'bin', 'retool.js'), ...args], {
      input,
      // VITEST: the runner's mark, kept so that a stale dist/ falls back to the sources quietly.
      env: { PATH: bin, HOME: tmpdir(), VITEST: 'true', ...env },
      extendEnv: false,
      reject: false,
      timeout: 60_000,
    });
  }

  it('refuses to run model code where no isolation works: one line naming the package and the opt-out', async () => {
    const marker = join(tmpdir(), `${MARK}-refused`);
    const r = await execWithoutTools(`open(${JSON.stringify(marker)}, 'w').write('ran')\n`, {});
    expect(r.exitCode).toBe(2);
    expect(r.stdout).toBe('');
    const lines = String(r.stderr).trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^retool: no code sandbox on this machine: bubblewrap is not installed/);
    expect(lines[0]).toContain('apt-get install bubblewrap');
    expect(lines[0]).toContain('RETOOL_UNSAFE_NO_SANDBOX=1');
    expect(existsSync(marker)).toBe(false);
    const forced = await execWithoutTools('print(1)\n', { RETOOL_SANDBOX: 'unshare' });
    expect(forced.exitCode).toBe(2);
    expect(String(forced.stderr).trim()).toMatch(/^retool: RETOOL_SANDBOX=unshare, but util-linux unshare\/setpriv not found$/);
  });

  it('starts no worker on such a machine (before any server is asked for)', async () => {
    const r = await retoolWithoutTools(['worker'], { TEMPORAL_ADDRESS: '127.0.0.1:1', RETOOL_HOME: join(tmpdir(), `${MARK}-home`) });
    expect(r.exitCode).toBe(2);
    expect(String(r.stderr).trim()).toMatch(
      /^retool: no code sandbox on this machine: .*apt-get install bubblewrap.*RETOOL_UNSAFE_NO_SANDBOX=1$/,
    );
    expect(existsSync(join(tmpdir(), `${MARK}-home`))).toBe(false);
  });

  it('runs with no isolation only when RETOOL_UNSAFE_NO_SANDBOX=1 says so, and never as uid 0', async () => {
    const r = await execWithoutTools('console.log(process.getuid())', { RETOOL_UNSAFE_NO_SANDBOX: '1' }, 'javascript');
    const result = JSON.parse(String(r.stdout));
    expect(result).toMatchObject({ status: 'ok', isolation: 'unsafe-none' });
    expect(Number(result.stdout.trim())).toBeGreaterThan(0);
  });
});

describe.each(MODES)('python sandbox (%s): hostile code is contained', (mode) => {
  let sandbox: Sandbox;
  // Started before the sandbox, so every hostile run has a host process within its reach, were it not isolated.
  const sentinel = startHostProcess();

  beforeAll(async () => {
    sandbox = new Sandbox({ poolSize: POOL, isolation: mode });
    await sandbox.warm();
  });

  afterAll(async () => {
    await sandbox.close();
    sentinel.kill('SIGKILL');
  });

  /** Both the test's own process and the host process it started survived. */
  function expectHostAlive(): void {
    expect(isAlive(sentinel), 'host process started by the test').toBe(true);
    expect(() => process.kill(process.pid, 0)).not.toThrow();
  }

  it(`runs under ${mode} as an unprivileged uid with no capabilities`, async () => {
    expect(sandbox.isolation.mode).toBe(mode);
    const r = await py(
      sandbox,
      "import os\ncaps = dict(l.split(':\\t') for l in open('/proc/self/status').read().splitlines() if l.startswith('Cap'))\nprint(os.getuid(), os.geteuid(), os.getgid(), caps['CapEff'].strip(), caps['CapPrm'].strip())\n",
    );
    expect(r.status, JSON.stringify(r)).toBe('ok');
    const [uid, euid, gid, eff, prm] = r.stdout.trim().split(' ');
    for (const id of [uid, euid, gid]) expect(Number(id)).toBeGreaterThan(0);
    expect(BigInt(`0x${eff}`)).toBe(0n);
    expect(BigInt(`0x${prm}`)).toBe(0n);
    await expectHealthy(sandbox);
  });

  describe('time', () => {
    it('stops an infinite CPU loop at the wall-clock limit', async () => {
      const r = await py(sandbox, 'while True:\n    pass\n', SHORT);
      expect(r).toMatchObject({ status: 'timeout', reason: 'timeout', exitCode: null });
      expect(r.durationMs).toBeLessThan(3000);
      expect(renderForModel(r)).toMatch(/^TimeoutError/);
      await expectHealthy(sandbox);
    });

    it('stops an infinite CPU loop at the CPU limit before a longer wall limit', async () => {
      const r = await py(sandbox, 'while True:\n    pass\n', { cpuSeconds: 1, timeoutMs: 6000 });
      expect(r).toMatchObject({ status: 'timeout', reason: 'cpu' });
      expect(renderForModel(r)).toContain('CPU time');
      await expectHealthy(sandbox);
    });

    it('stops time.sleep(10**9)', async () => {
      const r = await py(sandbox, 'import time\ntime.sleep(10**9)\n', SHORT);
      expect(r).toMatchObject({ status: 'timeout', reason: 'timeout' });
      expect(r.durationMs).toBeLessThan(3000);
      await expectHealthy(sandbox);
    });

    it('stops code that ignores SIGTERM, SIGINT and SIGHUP', async () => {
      const code = lines(
        'import signal, time',
        'for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):',
        '    signal.signal(s, signal.SIG_IGN)',
        'print("ignoring", flush=True)',
        'time.sleep(10**6)',
      );
      const r = await py(sandbox, code, SHORT);
      expect(r).toMatchObject({ status: 'timeout', reason: 'timeout', stdout: 'ignoring\n' });
      await expectHealthy(sandbox);
    });
  });

  describe('processes', () => {
    it('contains a fork bomb and leaves no process behind', async () => {
      const code = lines('import os', 'while True:', '    try:', '        os.fork()', '    except OSError:', '        pass');
      const r = await py(sandbox, code, { timeoutMs: 2000 });
      expect(['timeout', 'error']).toContain(r.status);
      expectHostAlive();
      await expectNoLeftovers(sandbox);
      await expectHealthy(sandbox);
    });

    it('stops a thread bomb at RLIMIT_NPROC', async () => {
      const code = lines(
        'import threading, time',
        'threads = []',
        'while True:',
        '    t = threading.Thread(target=time.sleep, args=(1000,), daemon=True)',
        '    t.start()',
        '    threads.append(t)',
      );
      const r = await py(sandbox, code, { timeoutMs: 2000 });
      expect(['error', 'timeout']).toContain(r.status);
      if (r.status === 'error') expect(lastErrorLine(r.stderr)).toMatch(/can't start new thread/);
      await expectNoLeftovers(sandbox);
      await expectHealthy(sandbox);
    });

    it('kills a setsid double-fork daemon when the run ends', async () => {
      const marker = `/tmp/${MARK}-daemon`;
      const code = lines(
        'import os, time',
        'if os.fork() == 0:',
        '    os.setsid()',
        '    if os.fork() == 0:',
        '        while True:',
        `            with open(${JSON.stringify(marker)}, 'a') as f:`,
        "                f.write('x')",
        '            time.sleep(0.1)',
        '    os._exit(0)',
        'time.sleep(0.35)',
        `print(os.path.getsize(${JSON.stringify(marker)}))`,
      );
      const r = await py(sandbox, code, { timeoutMs: 3000 });
      expect(r.status, JSON.stringify(r)).toBe('ok');
      expect(Number(r.stdout.trim())).toBeGreaterThanOrEqual(1);

      // On every slot: no stray process, and the marker neither exists nor grows.
      const check = lines(
        'import os, time',
        `m = ${JSON.stringify(marker)}`,
        'size = lambda: os.path.getsize(m) if os.path.exists(m) else -1',
        'a = size()',
        'time.sleep(0.4)',
        'b = size()',
        "print(len([p for p in os.listdir('/proc') if p.isdigit()]), a, b)",
      );
      const after = await Promise.all(Array.from({ length: POOL }, () => py(sandbox, check, { timeoutMs: 3000 })));
      for (const a of after) {
        expect(a.status).toBe('ok');
        const [procs, before, later] = a.stdout.trim().split(' ').map(Number);
        expect(procs).toBeLessThanOrEqual(3);
        expect(before).toBe(-1);
        expect(later).toBe(-1);
      }
      expect(hostLeaks(MARK)).toEqual([]);
      await expectHealthy(sandbox);
    });

    it('survives the run killing its parent (the fork server)', async () => {
      const r = await py(sandbox, 'import os, time\nos.kill(os.getppid(), 9)\ntime.sleep(5)\n', { timeoutMs: 2000 });
      expect(['killed', 'ok']).toContain(r.status);
      await expectHealthy(sandbox);
    });

    it('survives os.kill(-1, 9), and so does every host process', async () => {
      const r = await py(sandbox, 'import os\nprint("before", flush=True)\nos.kill(-1, 9)\n', { timeoutMs: 2000 });
      expect(['killed', 'ok']).toContain(r.status);
      expectHostAlive();
      await expectHealthy(sandbox);
    });

    it('cannot see, signal or kill the group of a host process whose pid it is given', async () => {
      const code = lines(
        'import os, signal',
        'pid = int(input())',
        'seen = os.path.exists("/proc/%d" % pid)',
        'outcomes = []',
        'for attempt in (lambda: os.kill(pid, 0), lambda: os.kill(pid, signal.SIGKILL), lambda: os.killpg(pid, signal.SIGKILL)):',
        '    try:',
        '        attempt()',
        '        outcomes.append("sent")',
        '    except OSError as e:',
        '        outcomes.append(type(e).__name__)',
        'print(seen, *outcomes)',
      );
      const r = await py(sandbox, code, { timeoutMs: 3000 }, String(sentinel.pid));
      expect(r.status, JSON.stringify(r)).toBe('ok');
      const [seen, ...outcomes] = r.stdout.trim().split(' ');
      expect(seen).toBe('False');
      expect(outcomes).toEqual(['ProcessLookupError', 'ProcessLookupError', 'ProcessLookupError']);
      await new Promise((resolve) => setTimeout(resolve, 100));
      expectHostAlive();
      await expectHealthy(sandbox);
    });

    it('sees only its own processes in /proc', async () => {
      const r = await py(
        sandbox,
        "import os\nprint(sorted(open('/proc/%s/cmdline' % p, 'rb').read().split(b'\\0')[0].decode() for p in os.listdir('/proc') if p.isdigit()))\n",
      );
      expect(r.status, JSON.stringify(r)).toBe('ok');
      expect(r.stdout).not.toMatch(/sleep|node|vitest|temporal/);
      await expectHealthy(sandbox);
    });
  });

  describe('memory', () => {
    it('reports a single huge allocation as memory', async () => {
      const r = await py(sandbox, 'x = bytearray(8 * 1024**3)\n', { timeoutMs: 2000 });
      expect(r.status).toBe('memory');
      expect(renderForModel(r)).toMatch(/^MemoryError/);
      // The traceback shows the model's code only, not the server's frames.
      expect(r.stderr).not.toContain('forkserver');
      await expectHealthy(sandbox);
    });

    it('reports slow growth in 10 MB chunks as memory', async () => {
      const r = await py(sandbox, 'chunks = []\nwhile True:\n    chunks.append(bytearray(10 * 1024 * 1024))\n', {
        timeoutMs: 5000,
        memoryMb: 256,
      });
      expect(r.status).toBe('memory');
      await expectHealthy(sandbox);
    });

    it('reports plain deep recursion as a RecursionError', async () => {
      const r = await py(sandbox, 'def f(n):\n    return f(n + 1)\nf(0)\n', { timeoutMs: 2000 });
      expect(r).toMatchObject({ status: 'error', exitCode: 1 });
      expect(renderForModel(r)).toMatch(/^RecursionError/);
      await expectHealthy(sandbox);
    });

    it('contains deep recursion past a raised recursion limit', async () => {
      const code = 'import sys\nsys.setrecursionlimit(10**7)\ndef f(n):\n    return f(n + 1)\nf(0)\n';
      // A million frames at 256 MB take about 2 s of CPU: the wall limit leaves room for a loaded machine.
      const r = await py(sandbox, code, { timeoutMs: 20_000, memoryMb: 256 });
      expect(r.status, JSON.stringify(r)).toBe('memory');
      // Not a bare exit status with nothing to show: the model gets a real error line.
      expect(renderForModel(r)).toMatch(/^MemoryError/);
      expect(lastErrorLine(r.stderr)).toMatch(/^MemoryError: out of memory: the recursion went too deep/);
      // Only the ends of the traceback (when memory was left to print one): formatting every
      // frame would take longer than the run.
      if (r.stderr.startsWith('Traceback')) expect(r.stderr).toMatch(/\[\.\.\. \d+ frames omitted \.\.\.\]/);
      expect(Buffer.byteLength(r.stderr)).toBeLessThan(20_000);
      await expectHealthy(sandbox);
    });

    it('contains C-level recursion (repr of a deeply nested list)', async () => {
      const code = 'import sys\nsys.setrecursionlimit(10**7)\nx = []\nfor _ in range(10**6):\n    x = [x]\nprint(len(repr(x)))\n';
      // CPython's repr keeps a list of the containers it is inside and scans it at every level, so
      // reaching the C stack's end costs 2.5-4 s of CPU by itself: the wall limit leaves room for load.
      const r = await py(sandbox, code, { timeoutMs: 20_000, memoryMb: 512 });
      expect(['killed', 'error', 'memory'], JSON.stringify(r)).toContain(r.status);
      await expectHealthy(sandbox);
    });
  });

  describe('output', () => {
    const cap = 256 * 1024;

    it('cuts 100 MB on stdout at the cap and kills the run', async () => {
      const r = await py(sandbox, "import sys\nsys.stdout.write('x' * (100 * 1024 * 1024))\n", { timeoutMs: 5000, maxOutputBytes: cap });
      expect(r).toMatchObject({ status: 'killed', reason: 'output', truncated: true });
      expect(Buffer.byteLength(r.stdout)).toBeLessThanOrEqual(cap);
      expect(r.stdout.length).toBeGreaterThan(0);
      expect(renderForModel(r)).toMatch(/OutputLimitError/);
      await expectHealthy(sandbox);
    });

    it('cuts 100 MB on stderr at the cap and kills the run', async () => {
      const r = await py(sandbox, "import sys\nsys.stderr.write('x' * (100 * 1024 * 1024))\n", { timeoutMs: 5000, maxOutputBytes: cap });
      expect(r).toMatchObject({ status: 'killed', reason: 'output', truncated: true });
      expect(Buffer.byteLength(r.stderr)).toBeLessThanOrEqual(cap);
      expect(Buffer.byteLength(r.stdout)).toBeLessThanOrEqual(cap);
      await expectHealthy(sandbox);
    });

    it('cleans invalid UTF-8, NUL bytes and terminal escapes', async () => {
      const code = String.raw`import sys
sys.stdout.buffer.write(b"hello \xff\xfe world\x00 nul \x1b[31mred\x1b[0m \x1b]0;pwned\x07 \x1b[2J\x1b[H end\r\n")
sys.stderr.buffer.write(b"err\x00 \x1b[1mbold\x1b[0m \xc3\x28 tail\n")
`;
      const r = await py(sandbox, code);
      expect(r.status).toBe('ok');
      for (const stream of [r.stdout, r.stderr]) {
        expect(stream).not.toContain('\u0000');
        expect(stream).not.toContain('\u001b');
        expect(stream).not.toContain('\u0007');
        expect(stream).not.toContain('\r');
        expect(stream).toContain('\uFFFD');
      }
      for (const word of ['hello', 'world', 'nul', 'red', 'end']) expect(r.stdout).toContain(word);
      for (const word of ['err', 'bold', 'tail']) expect(r.stderr).toContain(word);
      // Whole sequences are removed, not just their ESC byte.
      expect(r.stdout).not.toMatch(/\[31m|\[0m|\[2J|pwned/);
      await expectHealthy(sandbox);
    });

    it('keeps output printed before exit(0) and os._exit(0)', async () => {
      const a = await py(sandbox, "print('kept')\nexit(0)\nprint('not reached')\n");
      expect(a).toMatchObject({ status: 'ok', exitCode: 0, stdout: 'kept\n' });
      const b = await py(sandbox, "import os\nprint('kept', end='')\nos._exit(0)\n");
      expect(b).toMatchObject({ status: 'ok', exitCode: 0, stdout: 'kept' });
      await expectHealthy(sandbox);
    });

    it('reports sys.exit(3) as an error with exit code 3', async () => {
      const r = await py(sandbox, "print('partial')\nimport sys\nsys.exit(3)\n");
      expect(r).toMatchObject({ status: 'error', exitCode: 3, stdout: 'partial\n' });
      await expectHealthy(sandbox);
    });
  });

  describe('source', () => {
    it('runs empty code', async () => {
      const r = await py(sandbox, '');
      expect(r).toMatchObject({ status: 'ok', exitCode: 0, stdout: '', stderr: '' });
    });

    it('reports a syntax error on its last line', async () => {
      const r = await py(sandbox, 'def f(:\n    pass\n');
      expect(r.status).toBe('error');
      expect(renderForModel(r)).toMatch(/^SyntaxError/);
      await expectHealthy(sandbox);
    });

    it('renders a traceback as its last line only', async () => {
      const r = await py(sandbox, "def f():\n    raise ValueError('boom')\nf()\n");
      expect(r).toMatchObject({ status: 'error', exitCode: 1 });
      expect(r.stderr).toContain('Traceback');
      expect(r.stderr).not.toContain('forkserver');
      expect(renderForModel(r)).toBe('ValueError: boom');
    });

    it('runs 1 MB of source', async () => {
      const code = `${'x = 1\n'.repeat(170_000)}print(x)\n`;
      expect(code.length).toBeGreaterThan(1_000_000);
      const r = await py(sandbox, code, { timeoutMs: 10_000 });
      expect(r).toMatchObject({ status: 'ok', stdout: '1\n' });
      await expectHealthy(sandbox);
    });
  });

  describe('filesystem', () => {
    it("cannot read files the test writes outside the bound paths (the store's folder, the host's /tmp)", async () => {
      const secret = `secret-${randomUUID()}`;
      const storeDir = join(PROJECT_ROOT, '.retool', `${MARK}-store`);
      mkdirSync(storeDir, { recursive: true });
      const places = [join(storeDir, 'store.duckdb'), join(tmpdir(), `${MARK}-secret`), join(PROJECT_ROOT, 'package.json')];
      try {
        for (const place of places.slice(0, 2)) writeFileSync(place, secret);
        const code = lines(
          'import sys',
          'for path in sys.stdin.read().split():',
          '    try:',
          "        print(path, open(path).read()[:200].replace('\\n', ' '))",
          '    except OSError as e:',
          '        print(path, type(e).__name__)',
        );
        const r = await py(sandbox, code, {}, places.join('\n'));
        expect(r.status, JSON.stringify(r)).toBe('ok');
        expect(r.stdout).not.toContain(secret);
        expect(r.stdout).not.toContain('retool-pipeline');
        for (const place of places)
          expect(r.stdout).toMatch(new RegExp(`${place.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} (FileNotFoundError|PermissionError)`));
      } finally {
        rmSync(storeDir, { recursive: true, force: true });
        rmSync(places[1]!, { force: true });
      }
      await expectHealthy(sandbox);
    });

    it('runs multiprocessing (its semaphores need a writable /dev/shm)', async () => {
      const r = await py(sandbox, 'import multiprocessing as mp\nwith mp.Pool(2) as pool:\n    print(pool.map(abs, [-1, -2, -3]))\n', {
        timeoutMs: 5000,
      });
      expect(r, JSON.stringify(r)).toMatchObject({ status: 'ok', stdout: '[1, 2, 3]\n' });
      await expectHealthy(sandbox);
    });

    it('cannot write anywhere but its private /tmp', async () => {
      const dirs = [
        '/',
        '/etc',
        '/usr',
        '/usr/local',
        '/opt',
        '/opt/retool',
        '/opt/retool/venv',
        '/var',
        '/home',
        '/root',
        '/proc',
        '/dev',
        PROJECT_ROOT,
        homedir(),
      ];
      const code = lines(
        'import os, sys',
        'for d in sys.stdin.read().split():',
        '    try:',
        `        open(os.path.join(d, ${JSON.stringify(MARK)}), 'w').write('x')`,
        "        print(d, 'written')",
        '    except OSError as e:',
        '        print(d, type(e).__name__)',
      );
      const r = await py(sandbox, code, {}, dirs.join('\n'));
      expect(r.status, JSON.stringify(r)).toBe('ok');
      expect(r.stdout).not.toContain('written');
      expect(r.stdout.trim().split('\n')).toHaveLength(dirs.length);
      for (const dir of dirs) expect(existsSync(join(dir, MARK)), dir).toBe(false);
      expect(existsSync(join(PROJECT_ROOT, '.venv', MARK))).toBe(false);
      expect(hostLeaks(MARK)).toEqual([]);
      await expectHealthy(sandbox);
    });

    it('fills its private /tmp without touching the host disk', async () => {
      const code = lines(
        'i = 0',
        'while True:',
        `    with open(${JSON.stringify(`${MARK}-fill-`)} + str(i), 'wb') as f:`,
        "        f.write(b'x' * (8 << 20))",
        '    i += 1',
      );
      const r = await py(sandbox, code, { timeoutMs: 5000 });
      expect(r.status).toBe('error');
      expect(lastErrorLine(r.stderr)).toMatch(/No space left on device|File too large|Disk quota/);
      expect(hostLeaks(MARK)).toEqual([]);
      // The space is given back: the next run can write again.
      const next = await py(
        sandbox,
        "with open('after', 'wb') as f:\n    f.write(b'x' * (4 << 20))\nimport os\nprint(sorted(os.listdir('/tmp')))\n",
      );
      expect(next.status, JSON.stringify(next)).toBe('ok');
      expect(next.stdout).not.toContain(MARK);
      await expectHealthy(sandbox);
    });

    it('refuses a single file above maxFileBytes', async () => {
      const r = await py(sandbox, "with open('big', 'wb') as f:\n    f.write(b'x' * (2 << 20))\n", {
        timeoutMs: 3000,
        maxFileBytes: 1 << 20,
      });
      if (r.status === 'killed') expect(r.reason).toBe('SIGXFSZ');
      else {
        expect(r.status).toBe('error');
        expect(lastErrorLine(r.stderr)).toMatch(/File too large/);
      }
      await expectHealthy(sandbox);
    });

    it('cannot write to /etc, / or /root', async () => {
      for (const dir of ['/etc', '', '/root']) {
        const path = `${dir}/${MARK}`;
        const r = await py(sandbox, `open(${JSON.stringify(path)}, 'w').write('x')\n`);
        expect(r.status, path).toBe('error');
        expect(lastErrorLine(r.stderr)).toMatch(/Read-only file system|Permission denied|No such file/);
        expect(existsSync(path)).toBe(false);
      }
      expect(hostLeaks(MARK)).toEqual([]);
      await expectHealthy(sandbox);
    });

    it('keeps $HOME inside the sandbox', async () => {
      const r = await py(
        sandbox,
        `import os\npath = os.path.join(os.path.expanduser('~'), ${JSON.stringify(MARK)})\nopen(path, 'w').write('x')\nprint(path)\n`,
      );
      expect(r.status).toBe('ok');
      expect(r.stdout.startsWith('/tmp/')).toBe(true);
      expect(existsSync(join(homedir(), MARK))).toBe(false);
      expect(existsSync(join('/root', MARK))).toBe(false);
      expect(hostLeaks(MARK)).toEqual([]);
      await expectHealthy(sandbox);
    });

    it('allows ../x inside the private /tmp, gone on the next run', async () => {
      const name = `${MARK}-parent`;
      const r = await py(sandbox, `open('../${name}', 'w').write('x')\nimport os\nprint(os.path.exists('/tmp/${name}'))\n`);
      expect(r).toMatchObject({ status: 'ok', stdout: 'True\n' });
      expect(hostLeaks(name)).toEqual([]);
      const next = await Promise.all(
        Array.from({ length: POOL }, () => py(sandbox, `import os\nprint(os.path.exists('../${name}'), os.path.exists('/tmp/${name}'))\n`)),
      );
      for (const n of next) expect(n).toMatchObject({ status: 'ok', stdout: 'False False\n' });
      await expectHealthy(sandbox);
    });

    it("cannot list the host's ~/.ssh", async () => {
      const r = await py(sandbox, "import os\nprint(os.listdir('/root/.ssh'))\n");
      expect(r.status).toBe('error');
      expect(lastErrorLine(r.stderr)).toMatch(/FileNotFoundError|PermissionError/);
      const home = await py(sandbox, "import os\nprint(os.listdir(os.path.expanduser('~/.ssh')))\n");
      expect(home.status).toBe('error');
      await expectHealthy(sandbox);
    });
  });

  describe('environment', () => {
    it('never shows the host environment', async () => {
      const code = lines(
        'import os',
        'print(dict(os.environ))',
        "for p in ['/proc/1/environ', '/proc/self/environ', '/proc/%d/environ' % os.getppid()]:",
        '    try:',
        "        print(p, open(p, 'rb').read())",
        '    except OSError as e:',
        '        print(p, type(e).__name__)',
        "for p in ['/proc/1/cmdline', '/proc/self/cmdline']:",
        "    print(p, open(p, 'rb').read())",
      );
      const r = await py(sandbox, code);
      expect(r.status, JSON.stringify(r)).toBe('ok');
      for (const text of [r.stdout, r.stderr]) {
        expect(text).not.toContain(SECRET);
        expect(text).not.toContain(SECRET_NAME);
      }
      // Each environ file is either unreadable or (then) already checked to hold no secret.
      expect(r.stdout).toMatch(/\/proc\/1\/environ (PermissionError|b')/);
      await expectHealthy(sandbox);
    });
  });

  describe('network', () => {
    it('cannot connect out', async () => {
      const r = await py(sandbox, "import socket\nsocket.create_connection(('1.1.1.1', 80), timeout=2)\nprint('connected')\n", {
        timeoutMs: 5000,
      });
      expect(r.status).toBe('error');
      expect(r.stdout).not.toContain('connected');
      await expectHealthy(sandbox);
    });

    it('cannot connect to a port the test listens on at 127.0.0.1', async () => {
      let accepted = 0;
      const server: Server = createServer((socket) => {
        accepted += 1;
        socket.destroy();
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      const port = (server.address() as { port: number }).port;
      try {
        const code = lines(
          'import socket',
          'port = int(input())',
          'for host in ("127.0.0.1", "localhost"):',
          '    try:',
          '        socket.create_connection((host, port), timeout=1).close()',
          "        print(host, 'connected')",
          '    except OSError as e:',
          '        print(host, type(e).__name__)',
        );
        const r = await py(sandbox, code, { timeoutMs: 5000 }, String(port));
        expect(r.status, JSON.stringify(r)).toBe('ok');
        expect(r.stdout).not.toContain('connected');
        expect(accepted).toBe(0);
      } finally {
        await new Promise((resolve) => server.close(resolve));
      }
      await expectHealthy(sandbox);
    });

    it('cannot resolve names', async () => {
      const r = await py(sandbox, "import socket\nprint(socket.getaddrinfo('pypi.org', 443))\n", { timeoutMs: 5000 });
      expect(r.status).toBe('error');
      expect(lastErrorLine(r.stderr)).toMatch(/gaierror|resolution|Name or service/);
      await expectHealthy(sandbox);
    });

    it('can listen only in its own network namespace, unreachable from the host', async () => {
      // A port free on the host: the run listens on it while the host tries to connect.
      const port = await freePort();
      const code = lines(
        'import socket',
        's = socket.socket()',
        "s.bind(('127.0.0.1', int(input())))",
        's.listen()',
        'print(s.getsockname()[1], flush=True)',
        's.settimeout(1.5)',
        'try:',
        '    s.accept()',
        "    print('accepted')",
        'except socket.timeout:',
        "    print('none')",
      );
      const running = py(sandbox, code, { timeoutMs: 5000 }, String(port));
      await new Promise((r) => setTimeout(r, 500));
      const during = await tryConnect(port);
      const r = await running;
      expect(during).not.toBe('connected');
      expect(r).toMatchObject({ status: 'ok', stdout: `${port}\nnone\n` });

      // bind(0): whatever port the kernel picked is not reachable from the host either.
      const zero = await py(
        sandbox,
        "import socket\ns = socket.socket()\ns.bind(('127.0.0.1', 0))\ns.listen()\nprint(s.getsockname()[1])\n",
      );
      expect(zero.status).toBe('ok');
      const picked = Number(zero.stdout.trim());
      expect(picked).toBeGreaterThan(0);
      expect(await tryConnect(picked)).not.toBe('connected');
      await expectHealthy(sandbox);
    });
  });
});

describe('python sandbox: pool, concurrency and fresh state', () => {
  const SIZE = 4;
  let sandbox: Sandbox;

  beforeAll(async () => {
    sandbox = new Sandbox({ poolSize: SIZE });
    await sandbox.warm();
  });

  afterAll(async () => {
    await sandbox.close();
  });

  it('runs 256 concurrent runs through a pool of 4, each with its own output', async () => {
    const results = await Promise.all(
      Array.from({ length: 256 }, (_, i) => py(sandbox, `i = ${i}\nprint(i * i)\n`, { timeoutMs: 10_000 })),
    );
    results.forEach((r, i) => expect(r, `run ${i}`).toMatchObject({ status: 'ok', stdout: `${i * i}\n` }));
    await expectHealthy(sandbox, SIZE);
  });

  it('gives every run fresh state', async () => {
    const name = `${MARK}-state`;
    const set = lines(
      'import json, os, sys',
      "leaked_global = 'yes'",
      "json.leaked_attr = 'yes'",
      "os.environ['LEAKED_ENV'] = 'yes'",
      "sys.modules['leaked_module'] = json",
      `open('/tmp/${name}', 'w').write('x')`,
      "open('state.txt', 'w').write('x')",
      "print('set')",
    );
    const check = lines(
      'import json, os, sys, glob',
      "print('leaked_global' in globals(), hasattr(json, 'leaked_attr'), 'LEAKED_ENV' in os.environ,",
      `      'leaked_module' in sys.modules, os.path.exists('/tmp/${name}'), bool(glob.glob('/tmp/*/state.txt')))`,
    );
    // As many at once as there are slots, so every slot gets both.
    const sets = await Promise.all(Array.from({ length: SIZE }, () => py(sandbox, set)));
    for (const s of sets) expect(s).toMatchObject({ status: 'ok', stdout: 'set\n' });
    const checks = await Promise.all(Array.from({ length: SIZE }, () => py(sandbox, check)));
    for (const c of checks) expect(c).toMatchObject({ status: 'ok', stdout: 'False False False False False False\n' });
    expect(hostLeaks(name)).toEqual([]);
  });

  it('seeds random and numpy.random from the request, and hashes strings the same in every interpreter', async () => {
    const code = "import random, numpy\nprint(random.random(), numpy.random.random(), hash('retool'), list({'a', 'b', 'c', 'd'}))\n";
    // As many at once as there are slots: every interpreter answers, and all must agree.
    const same = await Promise.all(Array.from({ length: SIZE }, () => sandbox.run({ code, seed: 7 })));
    for (const r of same) expect(r.status, JSON.stringify(r)).toBe('ok');
    expect(new Set(same.map((r) => r.stdout)).size).toBe(1);
    const again = new Sandbox({ poolSize: 1 });
    try {
      expect((await again.run({ code, seed: 7 })).stdout).toBe(same[0]!.stdout);
    } finally {
      await again.close();
    }
    const other = await sandbox.run({ code, seed: 8 });
    const [r7, n7, h7] = same[0]!.stdout.split(' ');
    const [r8, n8, h8] = other.stdout.split(' ');
    expect(r8).not.toBe(r7);
    expect(n8).not.toBe(n7);
    expect(h8).toBe(h7);
  });
});

describe.each(MODES)('javascript sandbox (%s)', (mode) => {
  let sandbox: Sandbox;

  beforeAll(async () => {
    sandbox = new Sandbox({ poolSize: 2, isolation: mode });
    await sandbox.warm();
  });

  afterAll(async () => {
    await sandbox.close();
  });

  async function expectJsHealthy(): Promise<void> {
    const r = await js(sandbox, 'console.log(6*7)', { timeoutMs: 5000 });
    expect(r).toMatchObject({ status: 'ok', stdout: '42\n' });
    await expectHealthy(sandbox);
  }

  it('runs console.log(6*7)', async () => {
    const r = await js(sandbox, 'console.log(6*7)', { timeoutMs: 5000 });
    expect(r).toMatchObject({ status: 'ok', exitCode: 0, stdout: '42\n' });
    expect(renderForModel(r)).toBe('42');
  });

  it('stops while(true){}', async () => {
    const r = await js(sandbox, 'while(true){}', { timeoutMs: 1500 });
    expect(r).toMatchObject({ status: 'timeout', reason: 'timeout' });
    await expectJsHealthy();
  });

  it('stops a memory hog', async () => {
    const r = await js(sandbox, 'const a = []; while (true) a.push(new Array(1e6).fill(1.5));', { timeoutMs: 10_000, memoryMb: 256 });
    expect(['memory', 'killed']).toContain(r.status);
    await expectJsHealthy();
  });

  it('has no network', async () => {
    const connect = await js(
      sandbox,
      'require("net").connect(80, "1.1.1.1").on("connect", () => { console.log("connected"); process.exit(0); }).on("error", (e) => { console.error(e.code); process.exit(1); });',
      { timeoutMs: 5000 },
    );
    expect(connect.status).toBe('error');
    expect(connect.stdout).not.toContain('connected');
    const dns = await js(
      sandbox,
      'require("dns").lookup("pypi.org", (e, a) => { if (e) { console.error(e.code); process.exit(1); } console.log(a); });',
      { timeoutMs: 5000 },
    );
    expect(dns.status).toBe('error');
    await expectJsHealthy();
  });

  it('seeds Math.random from the request', async () => {
    const code = 'console.log(Math.random())';
    const [a, b, c] = await Promise.all([7, 7, 8].map((seed) => sandbox.run({ lang: 'javascript', code, seed })));
    expect(a!.status).toBe('ok');
    expect(a!.stdout).toBe(b!.stdout);
    expect(c!.stdout).not.toBe(a!.stdout);
  });

  it('never shows the host environment', async () => {
    const r = await js(
      sandbox,
      'console.log(JSON.stringify(process.env)); try { console.log(require("fs").readFileSync("/proc/1/environ", "utf8")); } catch (e) { console.log(e.code); }',
      { timeoutMs: 5000 },
    );
    expect(r.status).toBe('ok');
    expect(r.stdout).not.toContain(SECRET);
    expect(r.stdout).not.toContain(SECRET_NAME);
  });
});

describe('renderForModel', () => {
  const base: ExecResult = { status: 'ok', exitCode: 0, stdout: '', stderr: '', durationMs: 1, truncated: false, reason: null };

  it('cuts long output keeping head and tail, never splitting a character', () => {
    const text = `HEAD${'€'.repeat(5000)}TAIL`;
    for (let max = 64; max <= 400; max += 1) {
      const out = renderForModel({ ...base, stdout: text }, max);
      expect(Buffer.byteLength(out), `max ${max}`).toBeLessThanOrEqual(max);
      // Valid UTF-8: a split character would have become U+FFFD, and survives no round trip.
      expect(out).not.toContain('\uFFFD');
      expect(Buffer.from(out, 'utf8').toString('utf8')).toBe(out);
      expect(out.startsWith('HEAD')).toBe(true);
      expect(out.endsWith('TAIL')).toBe(true);
      expect(out).toMatch(/bytes cut/);
    }
    const plain = '€'.repeat(1000);
    const cut = truncateMiddle(plain, 101);
    expect(Buffer.byteLength(cut)).toBeLessThanOrEqual(101);
    expect(Buffer.from(cut, 'utf8').toString('utf8')).toBe(cut);
    expect(cut.replace(/\n\.\.\.\[\d+ bytes cut\]\.\.\.\n/, '')).toMatch(/^€+$/);
  });

  it('leaves short output alone', () => {
    expect(renderForModel({ ...base, stdout: '€ 42\n' }, 1024)).toBe('€ 42');
  });

  it('renders an error as the last traceback line', () => {
    const stderr =
      'Traceback (most recent call last):\n  File "<code>", line 3, in <module>\n    1/0\nZeroDivisionError: division by zero\n\n';
    expect(renderForModel({ ...base, status: 'error', exitCode: 1, stderr })).toBe('ZeroDivisionError: division by zero');
    expect(renderForModel({ ...base, status: 'error', exitCode: 4, stderr: '' })).toBe('exited with code 4');
  });
});

describe('python sandbox: closing', () => {
  it('settles runs still waiting in the queue when the pool closes', async () => {
    const sandbox = new Sandbox({ poolSize: 1, preload: [] });
    await sandbox.warm();
    const running = sandbox.run({ code: 'import time; time.sleep(30)', limits: { timeoutMs: 20_000 } });
    const waiting = [sandbox.run({ code: 'print(1)' }), sandbox.run({ code: 'print(2)' })];
    await new Promise((r) => setTimeout(r, 200));
    await sandbox.close();
    const settled = await Promise.all(waiting);
    expect(settled.map((r) => [r.status, r.reason])).toEqual([
      ['sandbox_error', 'closed'],
      ['sandbox_error', 'closed'],
    ]);
    expect((await running).status).toBe('killed');
  });
});

describe('python sandbox: warm imports', () => {
  it('imports sympy into the server on first use, so later runs get it for a fork', async () => {
    const sandbox = new Sandbox({ poolSize: 1 });
    try {
      await sandbox.warm();
      const loaded = "import sys; print('numpy' in sys.modules, 'sympy' in sys.modules)";
      expect((await sandbox.run({ code: loaded })).stdout).toBe('True False\n');
      const first = await sandbox.run({ code: 'import sympy\nprint(sympy.factorint(360))' });
      expect(first).toMatchObject({ status: 'ok', stdout: '{2: 3, 3: 2, 5: 1}\n' });
      expect((await sandbox.run({ code: loaded })).stdout).toBe('True True\n');
    } finally {
      await sandbox.close();
    }
  });
});
