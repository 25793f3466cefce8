// Durability as a user meets it, with the production defaults (the config's heartbeat timeout, no
// shortened timers): two `retool worker` processes poll one queue; the one running SFT is killed
// with SIGKILL, later the one running SFT again gets SIGTERM, and the one running RL is killed
// with SIGKILL. The other worker must take each stage over and resume it from its checkpoint, the
// SIGKILLs within 90 s, and the store must end with every step's rows exactly once.
import { join } from 'node:path';
import { Client, Connection, type WorkflowHandle } from '@temporalio/client';
import { execa, type ResultPromise } from 'execa';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { pendingHeartbeats } from '../cli/status.js';
import { withStore } from '../datasets/store.js';
import { ensureSearchAttributes } from '../worker/temporal.js';
import { resolveConfig } from '../workflows/config.js';
import { retoolPipeline } from '../workflows/pipeline.js';
import { ROOT, tempHome } from './helpers/cli.js';
import { until } from './helpers/wait.js';

const address = inject('temporalAddress');
const queue = 'retool-fault-recovery-test';
const RECOVERY_GOAL_S = 90;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('recovery from killed and stopped workers, production timeouts', () => {
  const home = tempHome('retool-fault-');
  const workers = new Map<number, ResultPromise>();
  let connection: Connection;
  let client: Client;

  async function startWorker(): Promise<void> {
    const child = execa('node', [join(ROOT, 'bin', 'retool.js'), 'worker', '--task-queue', queue, '--home', home.dir], {
      env: { TEMPORAL_ADDRESS: address },
      reject: false,
    }) as ResultPromise;
    await new Promise<void>((resolve, reject) => {
      child.stdout!.on('data', (d: Buffer) => String(d).includes('worker polling') && resolve());
      child.once('exit', (code) => reject(new Error(`worker exited ${code}`)));
    });
    workers.set(child.pid!, child);
  }

  beforeAll(async () => {
    connection = await Connection.connect({ address });
    client = new Client({ connection });
    await ensureSearchAttributes(connection, 'default');
    await Promise.all([startWorker(), startWorker()]);
  });
  afterAll(async () => {
    for (const child of workers.values()) child.kill('SIGKILL');
    await Promise.all([...workers.values()]);
    await connection?.close();
    home.cleanup();
  });

  /** The activity's latest heartbeat as the server holds it, with the worker running it. */
  async function beat(handle: WorkflowHandle, activity: string) {
    return pendingHeartbeats(await handle.describe()).find((p) => p.activity === activity) ?? null;
  }

  /**
   * Interrupts the worker running `activity` once `ready` holds for its heartbeat, starts a
   * replacement (so two poll again), and measures the time until the next attempt has finished a
   * step of its own (its heartbeat carries that step's `metric`).
   */
  async function interrupt(
    handle: WorkflowHandle,
    activity: string,
    metric: string,
    signal: 'SIGKILL' | 'SIGTERM',
    ready: (step: number, checkpoint: string | null) => boolean,
  ) {
    let current: NonNullable<Awaited<ReturnType<typeof beat>>> | null = null;
    await until(`${activity} running with a checkpoint`, async () => {
      current = await beat(handle, activity);
      return current !== null && ready(current.details.step ?? 0, current.details.checkpoint ?? null);
    });
    const running = current!;
    const workerPid = Number(running.worker!.split('@')[0]);
    const stagePid = running.details.pid!;
    expect(workers.has(workerPid)).toBe(true);
    expect(alive(stagePid)).toBe(true);
    const interruptedAt = performance.now();
    const worker = workers.get(workerPid)!;
    worker.kill(signal);
    const exited = await worker;
    workers.delete(workerPid);
    // A killed worker's stage process notices its parent is gone and exits, writing nothing more.
    await until(`the stage process ${stagePid} of the ${signal}ed worker to exit`, () => !alive(stagePid), 15_000);
    await startWorker();
    await until(
      `a new attempt of ${activity} to finish a step`,
      async () => {
        const next = await beat(handle, activity);
        return next !== null && next.attempt > running.attempt && next.details.metrics?.[metric] !== undefined;
      },
      300_000,
    );
    return { seconds: (performance.now() - interruptedAt) / 1000, step: running.details.step ?? 0, exitCode: exited.exitCode };
  }

  it('resumes SFT and RL on the other worker within 90 s of a SIGKILL, and right after a SIGTERM, with every row once', async () => {
    const config = resolveConfig('quick', {
      data: { source: 'synth', name: 'fault', count: 300, seed: 4 },
      traces: { limit: 60, seed: 0 },
      sft: { steps: 300, checkpointEvery: 20 },
      eval: { limit: 4 },
      rl: { steps: 8, evalEvery: 8, evalLimit: 4, checkpointEvery: 2, promptsPerStep: 2, samplesPerPrompt: 2, maxResponseTokens: 32 },
    });
    const workflowId = `test-fault-${Date.now()}`;
    const handle = await client.workflow.start(retoolPipeline, { taskQueue: queue, workflowId, args: [config] });

    const sftKill = await interrupt(handle, 'sft', 'loss', 'SIGKILL', (_step, checkpoint) => checkpoint !== null);
    // Between two periodic checkpoints: a clean stop saves one of its own there.
    const sftStop = await interrupt(handle, 'sft', 'loss', 'SIGTERM', (step) => step > 60 && step % 20 >= 2);
    const rlHandle = client.workflow.getHandle(`${workflowId}-rl`);
    await until('the RL child workflow', () => rlHandle.describe().then(() => true), 300_000);
    const rlKill = await interrupt(rlHandle, 'rl', 'reward', 'SIGKILL', (_step, checkpoint) => checkpoint !== null);
    // The measured recovery times, in the test log.
    console.log(
      `recovery: ${JSON.stringify({ heartbeatTimeout: config.heartbeatTimeout, sftSigkillS: sftKill.seconds, sftSigtermS: sftStop.seconds, rlSigkillS: rlKill.seconds })}`,
    );
    expect(sftKill.seconds).toBeLessThanOrEqual(RECOVERY_GOAL_S);
    expect(rlKill.seconds).toBeLessThanOrEqual(RECOVERY_GOAL_S);
    // A stopped worker hands its stage back at once (a failed attempt), no heartbeat timeout.
    expect(sftStop.exitCode).toBe(0);
    expect(sftStop.seconds).toBeLessThan(30);

    const result = await handle.result();
    expect(result).toMatchObject({ status: 'completed', dataset: 'fault@1', rlSteps: 8 });
    await withStore(home.dir, async (store) => {
      const summary = async (runId: string) =>
        JSON.parse(
          (await store.query<{ summary: string }>('SELECT CAST(summary AS VARCHAR) AS summary FROM runs WHERE run_id = $1', [runId]))[0]!
            .summary,
        ) as { resumedFrom: number };
      // The last SFT attempt resumed from the checkpoint the SIGTERM's clean stop saved, past the
      // step its heartbeat showed then, not from the periodic one before it.
      expect((await summary(`${workflowId}-sft`)).resumedFrom).toBeGreaterThanOrEqual(sftStop.step);
      expect((await summary(`${workflowId}-rl`)).resumedFrom).toBeGreaterThanOrEqual(2);
      for (const [stage, name, steps] of [
        ['sft', 'loss', 300],
        ['rl', 'reward_mean', 8],
      ] as const) {
        const rows = await store.query<{ step: number; n: bigint }>(
          'SELECT step, count(*) AS n FROM metrics WHERE run_id = $1 AND stage = $2 AND name = $3 GROUP BY step ORDER BY step',
          [`${workflowId}-${stage}`, stage, name],
        );
        expect(rows.map((r) => Number(r.step))).toEqual(Array.from({ length: steps }, (_, i) => i + 1));
        expect(rows.every((r) => Number(r.n) === 1)).toBe(true);
      }
      // Every RL step's trajectories exactly once: 2 prompts x 2 samples.
      const rollouts = await store.query<{ step: number; n: bigint; distinct_samples: bigint }>(
        'SELECT step, count(*) AS n, count(DISTINCT (problem_id, sample_idx)) AS distinct_samples FROM rollouts WHERE run_id = $1 GROUP BY step ORDER BY step',
        [`${workflowId}-rl`],
      );
      expect(rollouts.map((r) => [Number(r.step), Number(r.n), Number(r.distinct_samples)])).toEqual(
        Array.from({ length: 8 }, (_, i) => [i + 1, 4, 4]),
      );
    });
  }, 600_000);
});
