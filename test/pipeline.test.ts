import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client, Connection, WorkflowFailedError } from '@temporalio/client';
import { CancelledFailure, defaultPayloadConverter } from '@temporalio/common';
import { Worker } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { withStore } from '../datasets/store.js';
import { quietTemporalRuntime } from '../cli/local-temporal.js';
import { ensureSearchAttributes, type TemporalTarget } from '../worker/temporal.js';
import { startWorkers, workflowBundle, type RunningWorkers } from '../worker/worker.js';
import { resolveConfig } from '../workflows/config.js';
import { pauseSignal, resumeSignal, stopSignal } from '../workflows/control.js';
import { runStatus } from '../cli/status.js';
import { pipelineProgress, retoolPipeline } from '../workflows/pipeline.js';
import { RetoolBestAccuracy, RetoolPreset, RetoolStage } from '../workflows/search-attributes.js';
import { createRetrainSchedule, triggerSchedule } from '../cli/schedules.js';
import { tempHome } from './helpers/cli.js';
import { TEST_BACKENDS } from './helpers/backends.js';
import { expectedSandboxMode } from './helpers/sandbox-mode.js';
import { until } from './helpers/wait.js';

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

  it('chains data, cold start, SFT, evaluation, RL rounds (child workflow), final evaluation and report; a schedule retrains from its model', async () => {
    // The quick preset, smaller still: the test checks the wiring, not what the model learns.
    // One round per child run: the RL child continues as new after each round.
    const config = resolveConfig('quick', {
      roundsPerRun: 1,
      data: { source: 'synth', name: 'pipe', count: 300, seed: 3 },
      traces: { limit: 60, seed: 0 },
      sft: { steps: 12, checkpointEvery: 6 },
      eval: { limit: 8 },
      rl: { steps: 4, evalEvery: 2, checkpointEvery: 1, promptsPerStep: 2, samplesPerPrompt: 2, evalLimit: 4 },
      budget: { maxResponseTokens: 48 },
    });
    const workflowId = `test-pipeline-${Date.now()}`;
    const handle = await client.workflow.start(retoolPipeline, { taskQueue, workflowId, args: [config] });
    const result = await handle.result();
    expect(result).toMatchObject({ status: 'completed', dataset: 'pipe@1', traces: `${workflowId}-code@1`, rlSteps: 4, startedFrom: null });
    for (const accuracy of [result.sftEval!.accuracy, result.finalEval!.accuracy, ...result.rlEvals.map((e) => e.accuracy)]) {
      expect(accuracy).toBeGreaterThanOrEqual(0);
      expect(accuracy).toBeLessThanOrEqual(1);
    }
    // Two rounds of two steps, each ending with a held-out evaluation, after the one before step 1.
    expect(result.rlEvals.map((e) => e.step)).toEqual([0, 2, 4]);
    const progress = await handle.query(pipelineProgress);
    expect(progress).toMatchObject({ stage: 'done', preset: 'quick', dataset: 'pipe@1', rlWorkflowId: `${workflowId}-rl` });
    expect(progress.stages.map((s) => `${s.name}:${s.status}`)).toEqual([
      'data:done',
      'cold-start:done',
      'base-eval:skipped',
      'sft:done',
      'sft-eval:done',
      'rl:done',
      'final-eval:done',
      'report:done',
    ]);
    const described = await handle.describe();
    expect(described.typedSearchAttributes.get(RetoolStage)).toBe('done');
    expect(described.typedSearchAttributes.get(RetoolPreset)).toBe('quick');
    const best = Math.max(result.sftEval!.accuracy, result.finalEval!.accuracy, ...result.rlEvals.map((e) => e.accuracy));
    expect(described.typedSearchAttributes.get(RetoolBestAccuracy)).toBe(best);
    expect(described.memo).toMatchObject({ preset: 'quick', bestAccuracy: best, report: result.report });
    expect(existsSync(result.report!)).toBe(true);
    expect(existsSync(result.report!.replace(/\.html$/, '-accuracy.png'))).toBe(true);
    // report.md: the SFT and final models' held-out evaluations from the store, and RL against SFT paired.
    const markdown = readFileSync(result.report!.replace(/\.html$/, '.md'), 'utf8');
    expect(markdown).toMatch(/\| ReTool \(code\) \| cold-start SFT \| held-out \(8\) \| on \| 1 \(greedy\) \|/);
    expect(markdown).toMatch(/\| ReTool \(code\) \| after RL \(4 steps\) \| held-out \(8\) \| on \|/);
    expect(markdown).toMatch(/\| ReTool \(code\) \| held-out \| 8 \| \d+ \| \d+ \|/);
    // The report records the isolation the model's code ran under.
    expect(readFileSync(result.report!, 'utf8')).toContain(`code sandbox ${expectedSandboxMode()}`);
    // ... and the backend it computed on: the native one by default, wherever it was built.
    expect(readFileSync(result.report!, 'utf8')).toMatch(
      TEST_BACKENDS[0] === 'wasm'
        ? /computed on wasm \(tfjs /
        : /computed on node(-gpu)? \(TensorFlow \d+\.\d+\.\d+, (cpu|gpu), \d+ threads?\)/,
    );

    await withStore(home.dir, async (store) => {
      const checkpoints = await store.query<{ stage: string; step: number }>(
        'SELECT stage, step FROM checkpoints WHERE run_id LIKE $1 ORDER BY stage, step',
        [`${workflowId}-%`],
      );
      expect(checkpoints.map((c) => `${c.stage}:${Number(c.step)}`)).toEqual(['rl:1', 'rl:2', 'rl:3', 'rl:4', 'sft:6', 'sft:12']);
      const rollouts = await store.query<{ n: bigint }>('SELECT count(*) AS n FROM rollouts WHERE run_id = $1', [`${workflowId}-rl`]);
      expect(Number(rollouts[0]!.n)).toBe(4 * 2 * 2);
      const evals = await store.query<{ eval_id: string }>(
        'SELECT DISTINCT eval_id FROM evaluations WHERE eval_id LIKE $1 ORDER BY eval_id',
        [`${workflowId}%`],
      );
      expect(evals.map((e) => e.eval_id)).toEqual([
        `${workflowId}-final-eval@1`,
        `${workflowId}-rl-step-0@1`,
        `${workflowId}-rl-step-2@1`,
        `${workflowId}-rl-step-4@1`,
        `${workflowId}-sft-eval@1`,
      ]);
      const runs = await store.query<{ status: string }>('SELECT status FROM runs WHERE run_id = $1', [workflowId]);
      expect(runs[0]!.status).toBe('completed');
    });
    // The parent's activities in dependency order; RL's rounds are in the child's history, each with a summary.
    const history = await handle.fetchHistory();
    const scheduled = (h: typeof history) =>
      h.events!.flatMap((e) => (e.activityTaskScheduledEventAttributes ? [e.activityTaskScheduledEventAttributes.activityType!.name] : []));
    expect(scheduled(history)).toEqual([
      'recordRunStart',
      'prepareProblems',
      'initModel',
      'synthTraces',
      'sft',
      'evaluate',
      'evaluate',
      'recordRunEnd',
      'report',
    ]);
    // The child's first run did round 1 and continued as new; the second did round 2.
    const firstChildRun = history.events!.find((e) => e.childWorkflowExecutionStartedEventAttributes)!
      .childWorkflowExecutionStartedEventAttributes!.workflowExecution!.runId!;
    const childRuns = [
      await client.workflow.getHandle(`${workflowId}-rl`, firstChildRun).fetchHistory(),
      await client.workflow.getHandle(`${workflowId}-rl`).fetchHistory(),
    ];
    expect(childRuns[0]!.events!.at(-1)!.workflowExecutionContinuedAsNewEventAttributes).toBeTruthy();
    const summaries = childRuns.map((h) =>
      h
        .events!.filter((e) => e.activityTaskScheduledEventAttributes)
        .map((e) => defaultPayloadConverter.fromPayload<string>(e.userMetadata!.summary!)),
    );
    expect(summaries).toEqual([
      ['RL round 1: steps 1-2 of 4, then held-out evaluation'],
      ['RL round 2: steps 3-4 of 4, then held-out evaluation'],
    ]);
    // Deterministic: the histories replay against today's workflow code.
    await Worker.runReplayHistory({ workflowBundle: await workflowBundle() }, history, workflowId);
    for (const h of childRuns) await Worker.runReplayHistory({ workflowBundle: await workflowBundle() }, h, `${workflowId}-rl`);

    // Scheduled retraining: a firing trains from this run's final model on the dataset's current version.
    const scheduleId = `test-retrain-${Date.now()}`;
    await createRetrainSchedule(client, {
      id: scheduleId,
      config: { ...config, rl: { ...config.rl, steps: 2 } },
      every: '1d',
      catchupWindow: '1m',
      taskQueue,
      paused: true,
    });
    try {
      const retrainId = await triggerSchedule(client, scheduleId);
      expect(retrainId).toMatch(new RegExp(`^${scheduleId}-run`));
      const retrain = await client.workflow.getHandle<typeof retoolPipeline>(retrainId!).result();
      expect(retrain).toMatchObject({
        status: 'completed',
        dataset: 'pipe@1',
        startedFrom: workflowId,
        sftModel: result.finalModel,
        traces: null,
        rlSteps: 2,
      });
      const retrainProgress = await client.workflow.getHandle(retrainId!).query(pipelineProgress);
      expect(retrainProgress.stages.filter((s) => s.status === 'skipped').map((s) => s.name)).toEqual(['cold-start', 'base-eval', 'sft']);
      const rlInput = (await client.workflow.getHandle(retrainProgress.rlWorkflowId!).fetchHistory()).events![0]!
        .workflowExecutionStartedEventAttributes!.input!.payloads![0]!;
      expect(defaultPayloadConverter.fromPayload<{ model: string }>(rlInput).model).toBe(result.finalModel);
    } finally {
      await client.schedule.getHandle(scheduleId).delete();
    }
  }, 300_000);

  it('pause stops SFT at a step boundary with a checkpoint, resume continues from it, stop ends RL early and the run still evaluates and reports', async () => {
    const config = resolveConfig('quick', {
      data: { source: 'synth', name: 'ctl', count: 300, seed: 5 },
      traces: { limit: 60, seed: 0 },
      sft: { steps: 300, checkpointEvery: 1000 },
      eval: { limit: 4 },
      rl: { steps: 400, evalEvery: 200, evalLimit: 4, checkpointEvery: 1, promptsPerStep: 2, samplesPerPrompt: 2 },
      budget: { maxResponseTokens: 32 },
    });
    const workflowId = `test-control-${Date.now()}`;
    const handle = await client.workflow.start(retoolPipeline, { taskQueue, workflowId, args: [config] });
    const current = async () => (await runStatus(client, workflowId)).arms[0]!.current;
    await until('SFT step 15', async () => (await current())?.stage === 'sft' && (await current())!.step >= 15);
    await handle.signal(pauseSignal);
    await until(
      'the SFT activity to stop',
      async () => (await handle.query(pipelineProgress)).paused && ((await handle.describe()).raw.pendingActivities ?? []).length === 0,
    );
    // Nothing trains while paused.
    const status = await runStatus(client, workflowId);
    expect(status.arms[0]!.paused).toBe(true);
    expect(status.arms[0]!.stage).toBe('sft');
    await handle.signal(resumeSignal);
    await until('RL step 2', async () => (await current())?.stage === 'rl' && (await current())!.step >= 2);
    await handle.signal(stopSignal);
    const result = await handle.result();
    expect(result.status).toBe('stopped');
    expect(result.rlSteps).toBeGreaterThanOrEqual(2);
    expect(result.rlSteps).toBeLessThan(400);
    expect(result.finalModel).toBe(join(home.dir, 'artifacts', `${workflowId}-rl`, 'rl', `step-${result.rlSteps}`));
    expect(result.finalEval).not.toBeNull();
    expect(existsSync(result.report!)).toBe(true);
    await withStore(home.dir, async (store) => {
      const sft = await store.query<{ summary: string }>('SELECT CAST(summary AS VARCHAR) AS summary FROM runs WHERE run_id = $1', [
        `${workflowId}-sft`,
      ]);
      // No periodic checkpoint before the end (every 1000 of 300 steps): the pause itself saved the
      // checkpoint the run resumed from.
      const resumedFrom = JSON.parse(sft[0]!.summary).resumedFrom as number;
      expect(resumedFrom).toBeGreaterThanOrEqual(15);
      expect(resumedFrom).toBeLessThan(300);
      const losses = await store.query<{ step: number; n: bigint }>(
        "SELECT step, count(*) AS n FROM metrics WHERE run_id = $1 AND stage = 'sft' AND name = 'loss' GROUP BY step ORDER BY step",
        [`${workflowId}-sft`],
      );
      expect(losses.map((r) => Number(r.step))).toEqual(Array.from({ length: 300 }, (_, i) => i + 1));
      expect(losses.every((r) => Number(r.n) === 1)).toBe(true);
      const runs = await store.query<{ status: string }>('SELECT status FROM runs WHERE run_id = $1', [workflowId]);
      expect(runs[0]!.status).toBe('stopped');
    });
  }, 300_000);

  it('cancelling the run stops SFT at a step boundary and keeps its checkpoint; the run is recorded as stopped', async () => {
    const config = resolveConfig('quick', {
      data: { source: 'synth', name: 'cancel', count: 300, seed: 9 },
      traces: { limit: 60, seed: 0 },
      sft: { steps: 400, checkpointEvery: 100 },
      eval: { limit: 4 },
    });
    const workflowId = `test-cancel-${Date.now()}`;
    const handle = await client.workflow.start(retoolPipeline, { taskQueue, workflowId, args: [config] });
    await until('SFT step 15', async () => {
      const current = (await runStatus(client, workflowId)).arms[0]!.current;
      return current?.stage === 'sft' && current.step >= 15;
    });
    await handle.cancel();
    const failure = await handle.result().then(
      () => null,
      (err: Error) => err,
    );
    expect(failure).toBeInstanceOf(WorkflowFailedError);
    expect((failure as WorkflowFailedError).cause).toBeInstanceOf(CancelledFailure);
    await withStore(home.dir, async (store) => {
      const runs = await store.query<{ run_id: string; status: string }>(
        'SELECT run_id, status FROM runs WHERE run_id IN ($1, $2) ORDER BY run_id',
        [workflowId, `${workflowId}-sft`],
      );
      expect(runs.map((r) => `${r.run_id}:${r.status}`)).toEqual([`${workflowId}:stopped`, `${workflowId}-sft:stopped`]);
      const last = await store.query<{ step: number }>("SELECT max(step) AS step FROM checkpoints WHERE run_id = $1 AND stage = 'sft'", [
        `${workflowId}-sft`,
      ]);
      // The stop saved a checkpoint at the step it stopped on: the last step with metrics.
      const step = Number(last[0]!.step);
      expect(step).toBeGreaterThanOrEqual(15);
      expect(step).toBeLessThan(400);
      const metrics = await store.query<{ step: number }>("SELECT max(step) AS step FROM metrics WHERE run_id = $1 AND stage = 'sft'", [
        `${workflowId}-sft`,
      ]);
      expect(Number(metrics[0]!.step)).toBe(step);
      expect(existsSync(join(home.dir, 'artifacts', `${workflowId}-sft`, 'sft', `step-${step}`))).toBe(true);
    });
  }, 120_000);
});
