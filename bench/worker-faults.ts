// Worker processes a benchmark or a fault test can kill, and the time another worker takes to pick a
// stage up: SIGKILL (or SIGTERM) the worker whose attempt is running, then wait for the next
// attempt's first step of its own, as the server sees it (its heartbeat).
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import type { WorkflowHandle } from '@temporalio/client';
import { pendingHeartbeats } from '../cli/status.js';

export async function pollUntil<T>(what: string, probe: () => Promise<T | null | undefined>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const found = await probe().catch(() => null);
    if (found !== null && found !== undefined) return found;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
}

export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** `retool worker` processes on one queue and home, by pid. */
export class WorkerProcesses {
  private readonly children = new Map<number, { child: ChildProcess; exit: Promise<number | null> }>();

  constructor(private readonly opts: { root: string; queue: string; home: string; env?: Record<string, string> }) {}

  /** Starts one; resolves with its pid once it polls. */
  async start(): Promise<number> {
    const { root, queue, home, env } = this.opts;
    const child = spawn(process.execPath, [join(root, 'bin', 'retool.js'), 'worker', '--task-queue', queue, '--home', home], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    await new Promise<void>((resolve, reject) => {
      child.stdout!.on('data', (d: Buffer) => String(d).includes('worker polling') && resolve());
      child.once('exit', (code) => reject(new Error(`a worker exited with code ${code} while starting`)));
    });
    this.children.set(child.pid!, { child, exit });
    return child.pid!;
  }

  has(pid: number): boolean {
    return this.children.has(pid);
  }

  /** Sends `signal` and waits for the exit; resolves with the exit code (null when killed). */
  async stop(pid: number, signal: NodeJS.Signals): Promise<number | null> {
    const entry = this.children.get(pid);
    if (!entry) throw new Error(`no worker with pid ${pid}`);
    entry.child.kill(signal);
    const code = await entry.exit;
    this.children.delete(pid);
    return code;
  }

  async stopAll(): Promise<void> {
    await Promise.all([...this.children.keys()].map((pid) => this.stop(pid, 'SIGKILL')));
  }
}

export interface Interruption {
  /** From the signal to the server's first heartbeat of the next attempt showing a step of its own. */
  seconds: number;
  /** The step the interrupted attempt had reported. */
  step: number;
  workerExitCode: number | null;
  /** The process that ran the stage for the interrupted worker; it must exit with it. */
  stagePid: number;
}

/**
 * Once the running `activity`'s heartbeat satisfies `ready`, interrupts its worker with `signal`,
 * waits for its stage process to exit, starts a replacement worker, and times the takeover: until a
 * later attempt heartbeats a step of its own (its metrics carry `metric`).
 */
export async function interruptStage(
  handle: WorkflowHandle,
  activity: string,
  metric: string,
  signal: NodeJS.Signals,
  workers: WorkerProcesses,
  ready: (step: number, checkpoint: string | null) => boolean,
  timeoutMs = 300_000,
): Promise<Interruption> {
  let seen: unknown = null;
  const beat = async () => {
    const described = await handle.describe();
    seen = { status: described.status.name, pending: pendingHeartbeats(described) };
    return pendingHeartbeats(described).find((p) => p.activity === activity) ?? null;
  };
  const withLastSeen = (err: Error) => {
    throw new Error(`${err.message}; last seen: ${JSON.stringify(seen)}`);
  };
  const running = await pollUntil(
    `${activity} ready to interrupt`,
    async () => {
      const b = await beat();
      return b && b.worker && b.details.pid && ready(b.details.step ?? 0, b.details.checkpoint ?? null) ? b : null;
    },
    timeoutMs,
  ).catch(withLastSeen);
  const workerPid = Number(running.worker!.split('@')[0]);
  if (!workers.has(workerPid)) throw new Error(`${activity} runs on ${running.worker}, not on one of this run's workers`);
  const stagePid = running.details.pid!;
  const started = performance.now();
  const workerExitCode = await workers.stop(workerPid, signal);
  await pollUntil(`the stage process ${stagePid} to exit`, async () => (processAlive(stagePid) ? null : true), 30_000);
  await workers.start();
  await pollUntil(
    `a new attempt of ${activity} to finish a step`,
    async () => {
      const b = await beat();
      return b && b.attempt > running.attempt && b.details.metrics?.[metric] !== undefined ? b : null;
    },
    timeoutMs,
  ).catch(withLastSeen);
  return { seconds: (performance.now() - started) / 1000, step: running.details.step ?? 0, workerExitCode, stagePid };
}
