// Durability as a user meets it, with the production defaults (the config's heartbeat timeout, no
// shortened timers): two `retool worker` processes poll one queue; the one running SFT is killed
// with SIGKILL, later the one running SFT again gets SIGTERM, and the one running RL is killed
// with SIGKILL. The other worker must take each stage over and resume it from its checkpoint, the
// SIGKILLs within 90 s, and the store must end with every step's rows exactly once.
import { Client, Connection } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { interruptStage, pollUntil, WorkerProcesses } from '../bench/worker-faults.js';
import { withStore } from '../datasets/store.js';
import { ensureSearchAttributes } from '../worker/temporal.js';
import { resolveConfig } from '../workflows/config.js';
import { retoolPipeline } from '../workflows/pipeline.js';
import { ROOT, tempHome } from './helpers/cli.js';

const address = inject('temporalAddress');
const queue = 'retool-fault-recovery-test';
const RECOVERY_GOAL_S = 90;
const RL_STEPS = 40;

describe('recovery from killed and stopped workers, production timeouts', () => {
  const home = tempHome('retool-fault-');
  const workers = new WorkerProcesses({ root: ROOT, queue, home: home.dir, env: { TEMPORAL_ADDRESS: address } });
  let connection: Connection;
  let client: Client;

  beforeAll(async () => {
    connection = await Connection.connect({ address });
    client = new Client({ connection });
    await ensureSearchAttributes(connection, 'default');
    await Promise.all([workers.start(), workers.start()]);
  });
  afterAll(async () => {
    await workers.stopAll();
    await connection?.close();
    home.cleanup();
  });

  it('resumes SFT and RL on the other worker within 90 s of a SIGKILL, and right after a SIGTERM, with every row once', async () => {
    const config = resolveConfig('quick', {
      data: { source: 'synth', name: 'fault', count: 300, seed: 4 },
      traces: { limit: 60, seed: 0 },
      sft: { steps: 300, checkpointEvery: 20 },
      eval: { limit: 4 },
      // Long enough (tens of seconds) that a heartbeat with a checkpoint is seen before RL ends.
      rl: {
        steps: RL_STEPS,
        evalEvery: RL_STEPS,
        evalLimit: 4,
        checkpointEvery: 2,
        promptsPerStep: 2,
        samplesPerPrompt: 2,
      },
      budget: { maxResponseTokens: 32 },
    });
    const workflowId = `test-fault-${Date.now()}`;
    const handle = await client.workflow.start(retoolPipeline, { taskQueue: queue, workflowId, args: [config] });

    const sftKill = await interruptStage(handle, 'sft', 'loss', 'SIGKILL', workers, (_step, checkpoint) => checkpoint !== null);
    // Between two periodic checkpoints: a clean stop saves one of its own there.
    const sftStop = await interruptStage(handle, 'sft', 'loss', 'SIGTERM', workers, (step) => step > 60 && step % 20 >= 2);
    const rlHandle = client.workflow.getHandle(`${workflowId}-rl`);
    await pollUntil('the RL child workflow', () => rlHandle.describe(), 300_000);
    const rlKill = await interruptStage(rlHandle, 'rl', 'reward', 'SIGKILL', workers, (_step, checkpoint) => checkpoint !== null);
    // The measured recovery times, in the test log.
    console.log(
      `recovery: ${JSON.stringify({ heartbeatTimeout: config.heartbeatTimeout, sftSigkillS: sftKill.seconds, sftSigtermS: sftStop.seconds, rlSigkillS: rlKill.seconds })}`,
    );
    expect(sftKill.seconds).toBeLessThanOrEqual(RECOVERY_GOAL_S);
    expect(rlKill.seconds).toBeLessThanOrEqual(RECOVERY_GOAL_S);
    // A stopped worker hands its stage back at once (a failed attempt), no heartbeat timeout.
    expect(sftStop.workerExitCode).toBe(0);
    expect(sftStop.seconds).toBeLessThan(30);

    const result = await handle.result();
    expect(result).toMatchObject({ status: 'completed', dataset: 'fault@1', rlSteps: RL_STEPS });
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
        ['rl', 'reward_mean', RL_STEPS],
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
        Array.from({ length: RL_STEPS }, (_, i) => [i + 1, 4, 4]),
      );
    });
  }, 600_000);
});
