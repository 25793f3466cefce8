import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { execa, type ResultPromise } from 'execa';
import { cleanOutput } from './output.js';
import { sandboxCommand, unsandboxedCommand } from './command.js';
import { limitsProcesses, pythonPrefix, SANDBOX_ENV, slotUid, VENV_PYTHON, type Isolation } from './isolation.js';
import { ExecResultSchema, type ExecResult, type SandboxLimits } from './types.js';

const SERVER_SCRIPT = join(dirname(fileURLToPath(import.meta.url)), 'forkserver.py');
/** Time the server gets beyond a run's own timeout before we call it hung and replace it. */
const WATCHDOG_GRACE_MS = 3000;
const START_TIMEOUT_MS = 30_000;

interface WireResult {
  id: number;
  status: ExecResult['status'];
  reason: string | null;
  exitCode: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
  durationMs: number;
  truncated: boolean;
}

interface Pending {
  id: number;
  resolve: (r: ExecResult) => void;
  watchdog: NodeJS.Timeout;
  started: number;
}

function failure(status: ExecResult['status'], reason: string, stderr: string, started: number): ExecResult {
  return { status, reason, exitCode: null, stdout: '', stderr, durationMs: performance.now() - started, truncated: false };
}

/** One warm interpreter (in its own sandbox) that forks a child per request. */
class Slot {
  private proc: ResultPromise | null = null;
  private pending: Pending | null = null;
  private ready: Promise<void> | null = null;
  private workRoot: string | null = null;
  private nextId = 0;
  busy = false;

  constructor(
    private readonly isolation: Isolation,
    readonly index: number,
    private readonly preload: string[],
    private readonly lazyPreload: string[],
  ) {}

  start(): Promise<void> {
    this.ready ??= this.spawn();
    return this.ready;
  }

  private async spawn(): Promise<void> {
    const isolation = this.isolation;
    const preload = { RETOOL_SANDBOX_PRELOAD: this.preload.join(','), RETOOL_SANDBOX_LAZY: this.lazyPreload.join(',') };
    // -s, not -I: -I would ignore PYTHONHASHSEED; the environment is ours alone either way.
    let command: { file: string; args: string[] };
    let env: Record<string, string> = {};
    if (isolation.mode === 'unsafe-none') {
      this.workRoot = mkdtempSync(join(tmpdir(), `retool-sandbox-${this.index}-`));
      command = unsandboxedCommand(
        isolation,
        [VENV_PYTHON, '-s', SERVER_SCRIPT, '--work-root', this.workRoot],
        slotUid(this.index),
        this.workRoot,
      );
      env = { ...SANDBOX_ENV, HOME: this.workRoot, ...preload };
    } else {
      // The venv and the server script get fixed places, so a checkout anywhere (even under
      // /tmp, which is private in the sandbox) works; a venv does not care where it sits.
      command = sandboxCommand(isolation, {
        argv: ['/opt/retool/venv/bin/python', '-s', '/opt/retool/forkserver.py', '--pidns', '--work-root', '/tmp'],
        readOnly: [
          pythonPrefix(),
          { src: dirname(dirname(VENV_PYTHON)), dest: '/opt/retool/venv' },
          { src: SERVER_SCRIPT, dest: '/opt/retool/forkserver.py' },
        ],
        uid: slotUid(this.index),
        env: preload,
      });
    }
    const proc = execa(command.file, command.args, {
      env,
      extendEnv: false,
      stdin: 'pipe',
      stdout: 'pipe',
      stderr: 'pipe',
      buffer: false,
      reject: false,
      // Without namespaces there is no pid namespace: a group of its own lets us kill it whole.
      detached: isolation.mode === 'unsafe-none',
    });
    this.proc = proc;
    // A server that dies mid-write must not take this process down with EPIPE.
    proc.stdin!.on('error', () => {});
    let stderrTail = '';
    proc.stderr!.on('data', (d: Buffer) => (stderrTail = (stderrTail + d.toString()).slice(-4000)));
    const lines = createInterface({ input: proc.stdout! });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`sandbox slot ${this.index} did not start within ${START_TIMEOUT_MS} ms: ${stderrTail}`)),
        START_TIMEOUT_MS,
      );
      let started = false;
      lines.on('line', (line) => {
        const msg = JSON.parse(line) as WireResult & { ready?: boolean };
        if (msg.ready) {
          started = true;
          clearTimeout(timer);
          resolve();
          return;
        }
        this.finish(msg);
      });
      void proc.then(() => {
        clearTimeout(timer);
        if (this.proc === proc) this.onServerExit(stderrTail);
        if (!started) reject(new Error(`sandbox slot ${this.index} exited while starting: ${stderrTail.trim()}`));
      });
    });
  }

  /** The server died (killed by the code it ran, crashed, or by us): fail the run, start afresh. */
  private onServerExit(stderrTail: string): void {
    this.proc = null;
    this.ready = null;
    if (this.workRoot) rmSync(this.workRoot, { recursive: true, force: true });
    const pending = this.pending;
    if (pending) {
      this.pending = null;
      clearTimeout(pending.watchdog);
      pending.resolve(
        failure(
          'killed',
          'sandbox server died',
          `the sandbox process was killed during the run ${stderrTail ? `(${stderrTail.trim().split('\n').pop()})` : ''}`.trim(),
          pending.started,
        ),
      );
    }
  }

  private finish(msg: WireResult): void {
    const pending = this.pending;
    if (!pending || pending.id !== msg.id) return;
    this.pending = null;
    clearTimeout(pending.watchdog);
    pending.resolve(
      ExecResultSchema.parse({
        status: msg.status,
        reason: msg.reason ?? (msg.signal ? msg.signal : null),
        exitCode: msg.exitCode,
        stdout: cleanOutput(Buffer.from(msg.stdout, 'base64')),
        stderr: cleanOutput(Buffer.from(msg.stderr, 'base64')),
        durationMs: msg.durationMs,
        truncated: msg.truncated,
      }),
    );
  }

  async run(code: string, stdin: string, limits: SandboxLimits, seed: number): Promise<ExecResult> {
    const started = performance.now();
    try {
      await this.start();
    } catch (err) {
      this.ready = null;
      return failure('sandbox_error', 'start', (err as Error).message, started);
    }
    const proc = this.proc!;
    const id = ++this.nextId;
    return new Promise<ExecResult>((resolve) => {
      const watchdog = setTimeout(() => {
        // The server itself is stuck: kill it (its namespace goes with it) and report a timeout.
        const pending = this.pending;
        this.pending = null;
        this.kill();
        pending?.resolve(failure('timeout', 'watchdog', 'the sandbox server stopped answering and was replaced', started));
      }, limits.timeoutMs + WATCHDOG_GRACE_MS);
      this.pending = { id, resolve, watchdog, started };
      const maxProcesses = limitsProcesses(this.isolation) ? limits.maxProcesses : null;
      proc.stdin!.write(`${JSON.stringify({ id, code, stdin, seed, ...limits, maxProcesses })}\n`);
    });
  }

  kill(): void {
    const proc = this.proc;
    if (!proc?.pid) return;
    try {
      if (this.isolation.mode !== 'unsafe-none') proc.kill('SIGKILL');
      else process.kill(-proc.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

export interface PythonPoolOptions {
  isolation: Isolation;
  /** Warm interpreters, i.e. runs in parallel. */
  size: number;
  /** Modules imported once by each server at start and inherited by every run. */
  preload?: string[];
  /** Modules a server imports into itself the first time a run imports them. */
  lazyPreload?: string[];
  /** Runs waiting for a slot beyond this are refused (backpressure). */
  maxQueue?: number;
}

// numpy.random is imported lazily by numpy 2; preloading it keeps per-run reseeding cheap.
export const DEFAULT_PRELOAD = ['numpy', 'numpy.random'];
// sympy doubles a fork's cost, so a server takes it on only once its runs use it.
export const DEFAULT_LAZY_PRELOAD = ['sympy', 'mpmath', 'scipy'];

/** Bounded pool of fork servers with a FIFO queue. */
export class PythonPool {
  private readonly slots: Slot[];
  private readonly queue: { run: (slot: Slot) => void; cancel: () => void }[] = [];
  private readonly maxQueue: number;
  private closed = false;

  constructor(opts: PythonPoolOptions) {
    this.slots = Array.from(
      { length: opts.size },
      (_, i) => new Slot(opts.isolation, i, opts.preload ?? DEFAULT_PRELOAD, opts.lazyPreload ?? DEFAULT_LAZY_PRELOAD),
    );
    this.maxQueue = opts.maxQueue ?? 4096;
  }

  get size(): number {
    return this.slots.length;
  }

  get queued(): number {
    return this.queue.length;
  }

  /** Starts every interpreter now rather than on first use. */
  async warm(): Promise<void> {
    await Promise.all(this.slots.map((s) => s.start()));
  }

  run(code: string, stdin: string, limits: SandboxLimits, seed = 0): Promise<ExecResult> {
    if (this.closed) return Promise.resolve(failure('sandbox_error', 'closed', 'the sandbox pool is closed', performance.now()));
    const free = this.slots.find((s) => !s.busy);
    if (free) return this.runOn(free, code, stdin, limits, seed);
    if (this.queue.length >= this.maxQueue) {
      return Promise.resolve(
        failure('sandbox_error', 'queue full', `more than ${this.maxQueue} runs are waiting for the sandbox`, performance.now()),
      );
    }
    return new Promise((resolve) =>
      this.queue.push({
        run: (slot) => void this.runOn(slot, code, stdin, limits, seed).then(resolve),
        cancel: () => resolve(failure('sandbox_error', 'closed', 'the sandbox pool was closed before this run started', performance.now())),
      }),
    );
  }

  private async runOn(slot: Slot, code: string, stdin: string, limits: SandboxLimits, seed: number): Promise<ExecResult> {
    slot.busy = true;
    try {
      return await slot.run(code, stdin, limits, seed);
    } finally {
      slot.busy = false;
      const next = this.queue.shift();
      if (next) next.run(slot);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const waiting of this.queue.splice(0)) waiting.cancel();
    for (const slot of this.slots) slot.kill();
  }
}
