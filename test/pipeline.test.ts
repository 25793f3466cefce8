import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { execa, type ResultPromise } from 'execa';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { withStore } from '../datasets/store.js';
import { quietTemporalRuntime } from '../worker/run-prepare.js';
import { ensureSearchAttributes, type TemporalTarget } from '../worker/temporal.js';
import { startWorkers, type RunningWorkers } from '../worker/worker.js';
import { pipelineProgress, PRESETS, retoolPipeline, type PipelineConfig } from '../workflows/pipeline.js';
import { RetoolStage } from '../workflows/search-attributes.js';
import { ROOT, tempHome } from './helpers/cli.js';

const address = inject('temporalAddress');
const target: TemporalTarget = { address, namespace: 'default', uiUrl: null };
// A queue of its own: other test files' workers poll retool-train with other stores.
const taskQueue = 'retool-pipeline-test';

describe('retoolPipeline on a real Temporal dev server', () => {
  const home = tempHome('retool-pipeline-');
  let connection: Connection;
  let client: Client;
  let workers: RunningWorkers;

  beforeAll(async () => {
    connection = await Connection.connect({ address });
    client = new Client({ connection });
    await ensureSearchAttributes(connection, 'default');
    quietTemporalRuntime();
    workers = await startWorkers({ target, home: home.dir, taskQueues: [taskQueue] });
  });
  afterAll(async () => {
    await workers?.shutdown();
    await connection?.close();
    home.cleanup();
  });

  it('chains data, cold start, SFT, evaluation and RL as activities, and everything lands in the store', async () => {
    // The quick preset, smaller still: the test checks the wiring, not what the model learns.
    const config: PipelineConfig = { ...PRESETS.quick, data: { name: 'pipe', count: 300, seed: 3 }, traces: { limit: 60, seed: 0 }, sft: { ...PRESETS.quick.sft, steps: 12, checkpointEvery: 6 }, eval: { limit: 8 }, rl: { ...PRESETS.quick.rl, promptsPerStep: 2, samplesPerPrompt: 2, evalLimit: 4, maxResponseTokens: 48 } };
    const workflowId = `test-pipeline-${Date.now()}`;
    const handle = await client.workflow.start(retoolPipeline, { taskQueue, workflowId, args: [config] });
    const result = await handle.result();
    expect(result.dataset).toBe('pipe@1');
    expect(result.traces).toBe(`${workflowId}-code@1`);
    for (const accuracy of [result.sftEval.accuracy, result.finalEval.accuracy, ...result.rlEvals.map((e) => e.accuracy)]) {
      expect(accuracy).toBeGreaterThanOrEqual(0);
      expect(accuracy).toBeLessThanOrEqual(1);
    }
    expect(result.rlEvals.map((e) => e.step)).toEqual([0, 2]);
    expect(await handle.query(pipelineProgress)).toMatchObject({ stage: 'done', preset: 'quick', dataset: 'pipe@1' });
    expect((await handle.describe()).typedSearchAttributes.get(RetoolStage)).toBe('done');

    await withStore(home.dir, async (store) => {
      const checkpoints = await store.query<{ stage: string; step: number }>('SELECT stage, step FROM checkpoints WHERE run_id LIKE $1 ORDER BY stage, step', [`${workflowId}-%`]);
      expect(checkpoints.map((c) => `${c.stage}:${Number(c.step)}`)).toEqual(['rl:1', 'rl:2', 'sft:6', 'sft:12']);
      const rollouts = await store.query<{ n: bigint }>('SELECT count(*) AS n FROM rollouts WHERE run_id = $1', [`${workflowId}-rl`]);
      expect(Number(rollouts[0]!.n)).toBe(2 * 2 * 2);
      const evals = await store.query<{ eval_id: string }>("SELECT DISTINCT eval_id FROM evaluations WHERE eval_id LIKE $1 ORDER BY eval_id", [`${workflowId}%`]);
      // The SFT model's and the final evaluation, and RL's own before its first step and after its last.
      expect(evals.map((e) => e.eval_id)).toEqual([`${workflowId}-final-eval@1`, `${workflowId}-rl-step-0@1`, `${workflowId}-rl-step-2@1`, `${workflowId}-sft-eval@1`]);
    });
    // The activities ran in the order the stages depend on each other.
    const history = await handle.fetchHistory();
    const scheduled = history.events!.flatMap((e) => (e.activityTaskScheduledEventAttributes ? [e.activityTaskScheduledEventAttributes.activityType!.name] : []));
    expect(scheduled).toEqual(['prepareData', 'initModel', 'synthTraces', 'sft', 'evaluate', 'rl', 'evaluate']);
  }, 300_000);

  it('a worker killed (SIGKILL) in the middle of SFT: a new worker resumes from the last checkpoint, no row lost or doubled', async () => {
    const killHome = tempHome('retool-pipeline-kill-');
    const queue = 'retool-pipeline-kill-test';
    // Wrapped: an async function returning the subprocess itself would wait for it to exit.
    const startWorker = async (): Promise<{ child: ResultPromise }> => {
      const child = execa('node', [join(ROOT, 'bin', 'retool.js'), 'worker', '--task-queue', queue, '--home', killHome.dir], { env: { TEMPORAL_ADDRESS: address } }) as ResultPromise;
      await new Promise<void>((resolve, reject) => {
        child.stdout!.on('data', (d: Buffer) => String(d).includes('worker polling') && resolve());
        child.once('exit', (code) => reject(new Error(`worker exited ${code}`)));
      });
      return { child };
    };
    let worker: { child: ResultPromise } | null = null;
    try {
      worker = await startWorker();
      const config: PipelineConfig = { ...PRESETS.quick, heartbeatTimeout: '3s', data: { name: 'kill', count: 300, seed: 4 }, traces: { limit: 60, seed: 0 }, sft: { ...PRESETS.quick.sft, steps: 120, checkpointEvery: 20 }, eval: { limit: 4 }, rl: { ...PRESETS.quick.rl, steps: 1, promptsPerStep: 2, samplesPerPrompt: 2, evalEvery: 0, maxResponseTokens: 32 } };
      const workflowId = `test-kill-${Date.now()}`;
      const handle = await client.workflow.start(retoolPipeline, { taskQueue: queue, workflowId, args: [config] });
      // Step 40 on disk: step 20's checkpoint is registered in the store by then.
      const firstCheckpoint = join(killHome.dir, 'artifacts', `${workflowId}-sft`, 'sft', 'step-40');
      for (let i = 0; i < 1200 && !existsSync(firstCheckpoint); i++) await new Promise((r) => setTimeout(r, 100));
      expect(existsSync(firstCheckpoint)).toBe(true);
      worker.child.kill('SIGKILL');
      await worker.child.catch(() => undefined);
      worker = await startWorker();
      const result = await handle.result();
      expect(result.dataset).toBe('kill@1');

      const history = await handle.fetchHistory();
      const sftAttempts = history.events!.flatMap((e) => (e.activityTaskStartedEventAttributes && history.events!.find((s) => s.eventId?.toString() === e.activityTaskStartedEventAttributes!.scheduledEventId?.toString())?.activityTaskScheduledEventAttributes?.activityType?.name === 'sft' ? [e.activityTaskStartedEventAttributes.attempt] : []));
      expect(sftAttempts).toEqual([2]);
      await withStore(killHome.dir, async (store) => {
        const runs = await store.query<{ status: string; summary: string }>('SELECT status, CAST(summary AS VARCHAR) AS summary FROM runs WHERE run_id = $1', [`${workflowId}-sft`]);
        expect(runs[0]!.status).toBe('completed');
        // The second attempt continued from a checkpoint instead of starting over.
        expect(JSON.parse(runs[0]!.summary).resumedFrom).toBeGreaterThanOrEqual(20);
        const losses = await store.query<{ step: number; n: bigint }>("SELECT step, count(*) AS n FROM metrics WHERE run_id = $1 AND stage = 'sft' AND name = 'loss' GROUP BY step ORDER BY step", [`${workflowId}-sft`]);
        expect(losses.map((r) => Number(r.step))).toEqual(Array.from({ length: 120 }, (_, i) => i + 1));
        expect(losses.every((r) => Number(r.n) === 1)).toBe(true);
      });
    } finally {
      worker?.child.kill('SIGKILL');
      await worker?.child.catch(() => undefined);
      killHome.cleanup();
    }
  }, 300_000);
});
