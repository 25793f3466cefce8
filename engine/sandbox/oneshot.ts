import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { cleanOutput } from './output.js';
import { sandboxCommand, unsandboxedCommand } from './command.js';
import { limitsProcesses, SANDBOX_ENV, slotUid, type Isolation } from './isolation.js';
import type { ExecResult, SandboxLimits } from './types.js';

let nextRun = 0;

/**
 * One fresh process per run, for languages without a fork server (JavaScript). Limits come from
 * prlimit (the util-linux tool) and V8's heap flag; in a sandbox the code file is copied into its
 * private /tmp through a file descriptor, so nothing is written on the host.
 */
export async function runNodeOnce(
  isolation: Isolation,
  code: string,
  stdin: string,
  limits: SandboxLimits,
  seed: number,
): Promise<ExecResult> {
  const started = performance.now();
  const heapMb = Math.max(16, Math.floor(limits.memoryMb * 0.75));
  const prlimit = [
    '/usr/bin/prlimit',
    `--cpu=${limits.cpuSeconds}:${limits.cpuSeconds + 1}`,
    `--data=${limits.memoryMb * 1024 * 1024}`,
    ...(limitsProcesses(isolation) ? [`--nproc=${limits.maxProcesses}`] : []),
    `--fsize=${limits.maxFileBytes}`,
    '--core=0',
    '--',
  ];
  // Math.random seeded like the Python runs' random module: the same code gives the same output.
  const node = [process.execPath, `--max-old-space-size=${heapMb}`, `--random-seed=${seed + 1}`];
  const uid = slotUid(128 + (nextRun++ % 128));
  const isolated = isolation.mode !== 'unsafe-none';
  let host: string | null = null;
  let command: { file: string; args: string[] };
  let extraFd: Uint8Array | undefined;
  if (isolated) {
    command = sandboxCommand(isolation, {
      argv: [...prlimit, ...node, '/tmp/main.js'],
      readOnly: [process.execPath],
      uid,
      files: [{ fd: 3, dest: '/tmp/main.js' }],
    });
    extraFd = Buffer.from(code, 'utf8');
  } else {
    host = mkdtempSync(join(tmpdir(), 'retool-js-'));
    writeFileSync(join(host, 'main.js'), code);
    command = unsandboxedCommand(isolation, [...prlimit, ...node, join(host, 'main.js')], uid, host);
  }
  try {
    const proc = execa(command.file, command.args, {
      input: stdin,
      env: isolated ? {} : { ...SANDBOX_ENV, HOME: host! },
      extendEnv: false,
      cwd: host ?? undefined,
      stdio: ['pipe', 'pipe', 'pipe', ...(extraFd ? [extraFd] : [])],
      encoding: 'buffer',
      // Output as written, like the Python pool's (execa would drop a final newline).
      stripFinalNewline: false,
      maxBuffer: limits.maxOutputBytes,
      timeout: limits.timeoutMs,
      killSignal: 'SIGKILL',
      detached: !isolated,
      cleanup: true,
      reject: false,
    });
    const r = await proc;
    if (!isolated && proc.pid) {
      try {
        process.kill(-proc.pid, 'SIGKILL');
      } catch {
        // the group is gone already
      }
    }
    const stdout = cleanOutput(r.stdout as Uint8Array);
    const stderr = cleanOutput(r.stderr as Uint8Array);
    const base = {
      exitCode: r.exitCode ?? null,
      stdout,
      stderr,
      durationMs: performance.now() - started,
      truncated: r.isMaxBuffer === true,
    };
    if (r.timedOut) return { ...base, status: 'timeout', reason: 'timeout' };
    if (r.isMaxBuffer) return { ...base, status: 'killed', reason: 'output' };
    if (r.signal === 'SIGXCPU') return { ...base, status: 'timeout', reason: 'cpu' };
    if (/heap out of memory|Cannot allocate memory|ERR_MEMORY_ALLOCATION_FAILED|Array buffer allocation failed/i.test(stderr))
      return { ...base, status: 'memory', reason: 'memory' };
    if (r.signal) return { ...base, status: 'killed', reason: r.signal };
    return { ...base, status: r.exitCode === 0 ? 'ok' : 'error', reason: null };
  } finally {
    if (host) rmSync(host, { recursive: true, force: true });
  }
}
