// The pipeline workflow's branches with mock activities (test/helpers/mock-activities.ts): from
// scratch or from an earlier model, bad input, retries, and pause, resume, stop and cancel reaching
// SFT and the RL rounds' child workflow.
import { Context } from '@temporalio/activity';
import { WorkflowFailedError, type Client } from '@temporalio/client';
import { ActivityFailure, ApplicationFailure, CancelledFailure } from '@temporalio/common';
import { Worker } from '@temporalio/worker';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { workflowBundle } from '../worker/worker.js';
import { BAD_INPUT } from '../domain/errors.js';
import { resolveConfig, type RetoolConfigInput } from '../workflows/config.js';
import { pauseSignal, resumeSignal, stopSignal } from '../workflows/control.js';
import { pipelineProgress, type PipelineProgress } from '../workflows/pipeline.js';
import { rlProgress } from '../workflows/rl-rounds.js';
import { RetoolBestAccuracy, RetoolStage } from '../workflows/search-attributes.js';
import {
  calls,
  callsOf,
  canned,
  failureOf,
  heartbeatTimeout,
  heldUntilCancelled,
  inputsOf,
  mockActivitiesWorker,
  rlAccuracy,
  scenario,
} from './helpers/mock-activities.js';
import { until } from './helpers/wait.js';

const address = inject('temporalAddress');

const stages = (p: PipelineProgress) => p.stages.map((s) => `${s.name}:${s.status}`);

describe('the workflows with mock activities', () => {
  const mocks = mockActivitiesWorker(address, 'pipeline');
  const { start, historyOf, scheduled } = mocks;
  let client: Client;
  beforeAll(() => {
    client = mocks.client;
  });

  describe('retoolPipeline', () => {
    it('from scratch: data, base model beside cold-start traces, SFT, the SFT evaluation beside RL rounds (a child that continues as new), final evaluation, report', async () => {
      const id = scenario('scratch', {
        // Returns only once RL has started: the two run side by side.
        evaluate: async (input) => {
          if (input.name?.endsWith('-sft-eval')) {
            await until(
              'RL beside the SFT evaluation',
              () => calls.some((c) => c.workflowId === `${id}-rl` && c.activity === 'rl'),
              30_000,
            ).catch((err: Error) => {
              throw ApplicationFailure.nonRetryable(err.message);
            });
          }
          return canned.evaluate(input);
        },
      });
      // Rounds of 2 steps up to 5 (2, 4, 5); the child continues as new after 2 rounds.
      const config = resolveConfig('quick', { heartbeatTimeout, roundsPerRun: 2, rl: { steps: 5, evalEvery: 2 } });
      const handle = await start(id, config);
      const result = await handle.result();
      const dir = `artifacts/${id}`;
      const dataset = `${config.data.name}@1`;

      expect(scheduled(await historyOf(id))).toEqual([
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
      expect(inputsOf(id, 'recordRunStart')).toEqual([{ kind: 'pipeline', preset: 'quick', config }]);
      expect(inputsOf(id, 'prepareProblems')).toEqual([config.data]);
      expect(inputsOf(id, 'initModel')).toEqual([{ out: `${dir}/base`, ...config.model }]);
      expect(inputsOf(id, 'synthTraces')).toEqual([
        { dataset, out: `${id}-code`, mode: 'code', ...config.traces, teacher: 'builtin', style: 'terse' },
      ]);
      expect(inputsOf(id, 'sft')).toEqual([
        { traces: `${id}-code@1`, model: `${dir}/base`, out: `${dir}/sft`, runId: `${id}-sft`, ...config.sft, loraRank: 0 },
      ]);
      const rlInput = {
        ...config.rl,
        ...config.budget,
        model: `${dir}/sft`,
        out: `${dir}/rl`,
        dataset,
        runId: `${id}-rl`,
        tools: true,
        evalLevels: config.eval.levels,
      };
      expect(inputsOf(`${id}-rl`, 'rl')).toEqual([2, 4, 5].map((steps) => ({ ...rlInput, steps })));
      const { baseEval: _b, benchmarks: _bs, benchmark: _k, ...heldOut } = config.eval;
      const evalInput = { ...heldOut, ...config.budget, dataset: `${dataset}:test`, tools: true };
      expect(inputsOf(id, 'evaluate')).toEqual([
        { ...evalInput, model: `${dir}/sft`, name: `${id}-sft-eval` },
        { ...evalInput, model: `${dir}/rl`, name: `${id}-final-eval` },
      ]);

      const rlEvals = [2, 4, 5].map((step) => ({ step, accuracy: rlAccuracy(step) }));
      expect(result).toEqual({
        workflowId: id,
        arm: 'code',
        status: 'completed',
        dataset,
        traces: `${id}-code@1`,
        startedFrom: null,
        sftModel: `${dir}/sft`,
        finalModel: `${dir}/rl`,
        baseEval: null,
        sftEval: { evaluation: `${id}-sft-eval@1`, accuracy: 0.25, byLevel: { '1': 0.25 } },
        rlEvals,
        rlSteps: 5,
        finalEval: { evaluation: `${id}-final-eval@1`, accuracy: 0.5, byLevel: { '1': 0.5 } },
        report: `/mock-home/${dir}/report.html`,
        stageSeconds: expect.any(Object),
      });
      expect(Object.keys(result.stageSeconds)).toEqual(['data', 'cold-start', 'sft', 'sft-eval', 'rl', 'final-eval']);
      expect(inputsOf(id, 'recordRunEnd')).toEqual([
        {
          status: 'completed',
          summary: {
            datasetName: config.data.name,
            dataset,
            arm: 'code',
            traces: `${id}-code@1`,
            baseModel: `${dir}/base`,
            sftModel: `${dir}/sft`,
            finalModel: `${dir}/rl`,
            startedFrom: null,
            sftRunId: `${id}-sft`,
            rlRunId: `${id}-rl`,
            baseAccuracy: null,
            sftAccuracy: 0.25,
            accuracy: 0.5,
            byLevel: { '1': 0.5 },
            rlSteps: 5,
            stageSeconds: result.stageSeconds,
          },
        },
      ]);
      expect(inputsOf(id, 'report')).toEqual([{ runId: id, out: `${dir}/report.html` }]);

      const progress = await handle.query(pipelineProgress);
      expect(stages(progress)).toEqual([
        'data:done',
        'cold-start:done',
        'base-eval:skipped',
        'sft:done',
        'sft-eval:done',
        'rl:done',
        'final-eval:done',
        'report:done',
      ]);
      expect(progress).toMatchObject({
        stage: 'done',
        preset: 'quick',
        arm: 'code',
        dataset,
        rlWorkflowId: `${id}-rl`,
        sftAccuracy: 0.25,
        bestAccuracy: 0.5,
        finalAccuracy: 0.5,
        paused: false,
        stopRequested: false,
      });
      expect(progress.stages.find((s) => s.name === 'cold-start')!.detail).toBe('42 verified traces');
      const described = await handle.describe();
      expect(described.typedSearchAttributes.get(RetoolStage)).toBe('done');
      expect(described.typedSearchAttributes.get(RetoolBestAccuracy)).toBe(0.5);
      expect(described.memo).toMatchObject({
        preset: 'quick',
        arm: 'code',
        dataset,
        bestAccuracy: 0.5,
        finalAccuracy: 0.5,
        report: result.report,
      });

      // The child's first run did two rounds and continued as new; the second did the last.
      const events = await historyOf(id);
      const firstChildRun = events.find((e) => e.childWorkflowExecutionStartedEventAttributes)!
        .childWorkflowExecutionStartedEventAttributes!.workflowExecution!.runId!;
      const childRuns = [await historyOf(`${id}-rl`, firstChildRun), await historyOf(`${id}-rl`)];
      expect(childRuns[0]!.at(-1)!.workflowExecutionContinuedAsNewEventAttributes).toBeTruthy();
      expect(childRuns.map(scheduled)).toEqual([['rl', 'rl'], ['rl']]);
      expect(await client.workflow.getHandle(`${id}-rl`).query(rlProgress)).toMatchObject({ step: 5, total: 5, round: 3, evals: rlEvals });
      // Deterministic: the histories replay against today's workflow code.
      await Worker.runReplayHistory({ workflowBundle: await workflowBundle() }, await client.workflow.getHandle(id).fetchHistory(), id);
    });

    it('startFrom latest with an earlier good model (input parsed in the workflow, the text arm): no cold start or SFT, RL and evaluations from that model, tools off', async () => {
      const earlier = { workflowId: 'mock-earlier-run', model: 'artifacts/mock-earlier-run/rl', accuracy: 0.4 };
      const id = scenario('latest', { findLatestGoodModel: async () => earlier });
      const input: RetoolConfigInput = {
        preset: 'quick',
        arm: 'text',
        startFrom: 'latest',
        heartbeatTimeout,
        rl: { steps: 2, evalEvery: 2 },
      };
      const config = resolveConfig('quick', input);
      const handle = await start(id, input);
      const result = await handle.result();
      const dataset = `${config.data.name}@1`;

      expect(scheduled(await historyOf(id))).toEqual([
        'recordRunStart',
        'prepareProblems',
        'findLatestGoodModel',
        'evaluate',
        'evaluate',
        'recordRunEnd',
        'report',
      ]);
      expect(inputsOf(id, 'findLatestGoodModel')).toEqual([{ datasetName: config.data.name, arm: 'text' }]);
      expect(inputsOf(`${id}-rl`, 'rl')).toEqual([
        {
          ...config.rl,
          ...config.budget,
          steps: 2,
          model: earlier.model,
          out: `artifacts/${id}/rl`,
          dataset,
          runId: `${id}-rl`,
          tools: false,
          evalLevels: config.eval.levels,
        },
      ]);
      expect(inputsOf(id, 'evaluate').map((e) => [e.model, e.tools])).toEqual([
        [earlier.model, false],
        [`artifacts/${id}/rl`, false],
      ]);
      expect(result).toMatchObject({
        arm: 'text',
        status: 'completed',
        startedFrom: earlier.workflowId,
        traces: null,
        sftModel: earlier.model,
        finalModel: `artifacts/${id}/rl`,
        rlSteps: 2,
      });
      expect(inputsOf(id, 'recordRunEnd')[0].summary).toMatchObject({
        arm: 'text',
        baseModel: null,
        sftRunId: null,
        startedFrom: earlier.workflowId,
        sftModel: earlier.model,
      });
      const progress = await handle.query(pipelineProgress);
      expect(stages(progress)).toEqual([
        'data:done',
        'cold-start:skipped',
        'base-eval:skipped',
        'sft:skipped',
        'sft-eval:done',
        'rl:done',
        'final-eval:done',
        'report:done',
      ]);
      expect(progress.stages.filter((s) => s.status === 'skipped').map((s) => s.detail)).toEqual([
        `starting from ${earlier.workflowId}`,
        `starting from ${earlier.workflowId}`,
        `starting from ${earlier.workflowId}`,
      ]);
    });

    it('a pretrained base with a LoRA adapter, a budget and an OpenAI-compatible teacher: SFT trains the adapter on the base, every stage gets the budget, the cold start the teacher (its key by name only)', async () => {
      const id = scenario('pretrained');
      const input: RetoolConfigInput = {
        preset: 'quick',
        heartbeatTimeout,
        model: { from: 'smollm2-135m-instruct' },
        adapter: { kind: 'lora', rank: 8, targetModules: ['q_proj', 'v_proj'] },
        teacher: { kind: 'openai', baseUrl: 'http://127.0.0.1:9/v1', model: 'teacher-model', apiKeyEnv: 'TEACHER_KEY' },
        budget: { contextTokens: 1024, maxResponseTokens: 300, maxToolCalls: 2, maxInterpreterTokens: 80 },
        rl: { steps: 2, evalEvery: 2 },
        eval: { baseEval: true, levels: [3, 4], limit: 50, benchmarks: ['aime24', 'held-out-sampled'], benchmark: { samples: 3 } },
      };
      const handle = await start(id, input);
      const result = await handle.result();
      const budget = { contextTokens: 1024, maxResponseTokens: 300, maxToolCalls: 2, maxInterpreterTokens: 80 };
      expect(inputsOf(id, 'initModel')).toEqual([{ from: 'smollm2-135m-instruct' }]);
      expect(inputsOf(id, 'synthTraces')).toEqual([
        expect.objectContaining({
          teacher: 'openai',
          openai: expect.objectContaining({ baseUrl: 'http://127.0.0.1:9/v1', model: 'teacher-model', apiKeyEnv: 'TEACHER_KEY' }),
        }),
      ]);
      expect(inputsOf(id, 'sft')).toEqual([
        expect.objectContaining({
          model: '/models/smollm2-135m-instruct',
          loraRank: 8,
          loraAlpha: 32,
          loraDropout: 0,
          loraTargets: ['q_proj', 'v_proj'],
          contextTokens: 1024,
        }),
      ]);
      expect(inputsOf(`${id}-rl`, 'rl')).toEqual([expect.objectContaining(budget)]);
      // Each model (base, SFT, final) on the held-out set, greedy, then on AIME 2024 and on the
      // same held-out problems (levels, limit), sampled.
      const evals = inputsOf(id, 'evaluate');
      const sets = (model: string, label: string) => [
        [`${id}-${label}-eval`, model, 'quick-world@1:test', 1, 0, [3, 4], 50],
        [`${id}-${label}-eval-aime24`, model, 'bench-aime24@1:test', 3, 0.6, undefined, undefined],
        [`${id}-${label}-eval-held-out-sampled`, model, 'quick-world@1:test', 3, 0.6, [3, 4], 50],
      ];
      expect(evals.map((e) => [e.name, e.model, e.dataset, e.samples, e.temperature, e.levels, e.limit])).toEqual([
        ...sets('/models/smollm2-135m-instruct', 'base'),
        ...sets(`artifacts/${id}/sft`, 'sft'),
        ...sets(`artifacts/${id}/rl`, 'final'),
      ]);
      for (const e of evals) expect(e).toMatchObject({ ...budget, tools: true });
      expect(inputsOf(id, 'prepareBenchmark')).toEqual([{ name: 'aime24' }]);
      expect(result.baseEval).toMatchObject({ evaluation: `${id}-base-eval@1` });
      expect(stages(await handle.query(pipelineProgress))).toContain('base-eval:done');
      expect(inputsOf(id, 'recordRunEnd')[0].summary).toMatchObject({ baseModel: '/models/smollm2-135m-instruct' });
      expect(result.status).toBe('completed');
    });

    it('a stored-traces teacher: the stored set is the arm cold start (no teacher runs) and SFT trains on it; an arm without one fails for good', async () => {
      const id = scenario('stored-teacher');
      const teacher = { kind: 'stored', code: 'retool-sft@3' } as const;
      const result = await (await start(id, { preset: 'quick', heartbeatTimeout, teacher, rl: { steps: 2, evalEvery: 2 } })).result();
      expect(inputsOf(id, 'useStoredTraces')).toEqual([{ traces: 'retool-sft@3', mode: 'code' }]);
      expect(callsOf(id, 'synthTraces')).toEqual([]);
      expect(inputsOf(id, 'sft')).toEqual([expect.objectContaining({ traces: 'retool-sft@1' })]);
      expect(result).toMatchObject({ status: 'completed', traces: 'retool-sft@1' });

      const textArm = scenario('stored-teacher-text');
      const err = await failureOf((await start(textArm, { preset: 'quick', arm: 'text', teacher })).result());
      expect(err.cause).toMatchObject({ type: BAD_INPUT, nonRetryable: true });
      expect((err.cause as ApplicationFailure).message).toMatch(/^bad config: teacher\.text: the text arm needs a stored trace dataset/);
      expect(callsOf(textArm)).toEqual([]);
    });

    it('startFrom latest with no earlier model trains from scratch', async () => {
      const id = scenario('latest-none');
      const config = resolveConfig('quick', { startFrom: 'latest', heartbeatTimeout, rl: { steps: 2, evalEvery: 2 } });
      const result = await (await start(id, config)).result();
      expect(scheduled(await historyOf(id))).toEqual([
        'recordRunStart',
        'prepareProblems',
        'findLatestGoodModel',
        'initModel',
        'synthTraces',
        'sft',
        'evaluate',
        'evaluate',
        'recordRunEnd',
        'report',
      ]);
      expect(result).toMatchObject({ status: 'completed', startedFrom: null, traces: `${id}-code@1`, sftModel: `artifacts/${id}/sft` });
    });

    it('bad config fails the run for good before any activity', async () => {
      const id = scenario('bad-config');
      const err = await failureOf((await start(id, { preset: 'quick', rl: { steps: 0 } })).result());
      expect(err).toBeInstanceOf(WorkflowFailedError);
      const cause = err.cause as ApplicationFailure;
      expect(cause).toBeInstanceOf(ApplicationFailure);
      expect(cause).toMatchObject({ type: BAD_INPUT, nonRetryable: true });
      expect(cause.message).toMatch(/^bad config: .*rl\.steps/);
      expect(callsOf(id)).toEqual([]);
    });

    it('bad input from an activity is not retried: the run fails, recorded as failed, the stage marked failed', async () => {
      // Retryable as thrown: the workflow's retry policy names the type as non-retryable.
      const id = scenario('bad-input', {
        sft: async () => {
          throw ApplicationFailure.retryable('traces hold no verified examples', BAD_INPUT);
        },
      });
      const handle = await start(id, resolveConfig('quick', { heartbeatTimeout }));
      const err = await failureOf(handle.result());
      expect(err.cause).toBeInstanceOf(ActivityFailure);
      expect((err.cause as ActivityFailure).cause).toMatchObject({ type: BAD_INPUT, message: 'traces hold no verified examples' });
      expect(callsOf(id, 'sft').map((c) => c.attempt)).toEqual([1]);
      expect(callsOf(id, 'evaluate')).toEqual([]);
      expect(inputsOf(id, 'recordRunEnd')).toEqual([
        { status: 'failed', summary: { error: expect.stringContaining('Activity task failed') } },
      ]);
      const progress = await handle.query(pipelineProgress);
      expect(progress.stage).toBe('failed');
      expect(stages(progress).slice(0, 4)).toEqual(['data:done', 'cold-start:done', 'base-eval:skipped', 'sft:failed']);
      expect((await handle.describe()).typedSearchAttributes.get(RetoolStage)).toBe('failed');
    });

    it('any other activity error is retried, and the run goes on', async () => {
      const id = scenario('retry', {
        synthTraces: async (input) => {
          if (Context.current().info.attempt === 1) throw new Error('sandbox pool crashed');
          return canned.synthTraces(input);
        },
      });
      const result = await (await start(id, resolveConfig('quick', { heartbeatTimeout, rl: { steps: 2, evalEvery: 2 } }))).result();
      expect(result.status).toBe('completed');
      expect(callsOf(id, 'synthTraces').map((c) => c.attempt)).toEqual([1, 2]);
    });

    it('pause cancels SFT and nothing trains while paused; resume runs SFT again with the same input', async () => {
      const id = scenario('pause', { sft: async (input) => (callsOf(id, 'sft').length === 1 ? heldUntilCancelled() : canned.sft(input)) });
      const handle = await start(id, resolveConfig('quick', { heartbeatTimeout, rl: { steps: 2, evalEvery: 2 } }));
      await until('SFT to start', () => callsOf(id, 'sft').length === 1, 30_000);
      await handle.signal(pauseSignal);
      await until(
        'the SFT activity to stop',
        async () => (await handle.query(pipelineProgress)).paused && ((await handle.describe()).raw.pendingActivities ?? []).length === 0,
        30_000,
      );
      const paused = await handle.query(pipelineProgress);
      expect(paused).toMatchObject({ stage: 'sft', paused: true, stopRequested: false });
      await new Promise((r) => setTimeout(r, 500));
      expect(callsOf(id, 'sft')).toHaveLength(1);
      await handle.signal(resumeSignal);
      const result = await handle.result();
      expect(result.status).toBe('completed');
      const [first, second] = inputsOf(id, 'sft');
      expect(second).toEqual(first);
      expect(stages(await handle.query(pipelineProgress))).toEqual([
        'data:done',
        'cold-start:done',
        'base-eval:skipped',
        'sft:done',
        'sft-eval:done',
        'rl:done',
        'final-eval:done',
        'report:done',
      ]);
    });

    it('stop during SFT: its last checkpoint is the model, RL is skipped, both evaluations use the checkpoint, the run is stopped', async () => {
      const checkpoint = { step: 7, path: '/mock-home/checkpoints/sft/step-7' };
      const id = scenario('stop-sft', { sft: heldUntilCancelled, lastCheckpoint: async () => checkpoint });
      const handle = await start(id, resolveConfig('quick', { heartbeatTimeout }));
      await until('SFT to start', () => callsOf(id, 'sft').length === 1, 30_000);
      await handle.signal(stopSignal);
      const result = await handle.result();
      expect(inputsOf(id, 'lastCheckpoint')).toEqual([{ runId: `${id}-sft`, stage: 'sft' }]);
      expect(result).toMatchObject({ status: 'stopped', sftModel: checkpoint.path, finalModel: checkpoint.path, rlSteps: 0, rlEvals: [] });
      expect(callsOf(id, 'rl')).toEqual([]);
      expect(inputsOf(id, 'evaluate').map((e) => e.model)).toEqual([checkpoint.path, checkpoint.path]);
      expect(inputsOf(id, 'recordRunEnd')[0]).toMatchObject({ status: 'stopped', summary: { rlRunId: null, sftModel: checkpoint.path } });
      const progress = await handle.query(pipelineProgress);
      expect(stages(progress)).toEqual([
        'data:done',
        'cold-start:done',
        'base-eval:skipped',
        'sft:stopped',
        'sft-eval:done',
        'rl:skipped',
        'final-eval:done',
        'report:done',
      ]);
      expect(progress).toMatchObject({ stage: 'stopped', stopRequested: true, rlWorkflowId: null });
      expect(progress.stages.find((s) => s.name === 'rl')!.detail).toBe('stopped early');
    });

    it('stop during SFT before its first checkpoint: no model, no evaluation, still a report', async () => {
      const id = scenario('stop-early', { sft: heldUntilCancelled });
      const handle = await start(id, resolveConfig('quick', { heartbeatTimeout }));
      await until('SFT to start', () => callsOf(id, 'sft').length === 1, 30_000);
      await handle.signal(stopSignal);
      const result = await handle.result();
      expect(result).toMatchObject({ status: 'stopped', sftModel: null, finalModel: null, sftEval: null, finalEval: null, rlSteps: 0 });
      expect(scheduled(await historyOf(id))).toEqual([
        'recordRunStart',
        'prepareProblems',
        'initModel',
        'synthTraces',
        'sft',
        'lastCheckpoint',
        'recordRunEnd',
        'report',
      ]);
      const progress = await handle.query(pipelineProgress);
      expect(stages(progress)).toEqual([
        'data:done',
        'cold-start:done',
        'base-eval:skipped',
        'sft:stopped',
        'sft-eval:pending',
        'rl:pending',
        'final-eval:skipped',
        'report:done',
      ]);
      expect(progress.stages.find((s) => s.name === 'final-eval')!.detail).toMatch(/^no model/);
    });

    it('pause and resume reach the RL child (the round runs again); stop ends RL at its last checkpoint, which the final evaluation uses', async () => {
      const checkpoint = { step: 3, path: '/mock-home/checkpoints/rl/step-3' };
      const id = scenario('rl-control', { rl: heldUntilCancelled, lastCheckpoint: async () => checkpoint });
      const handle = await start(id, resolveConfig('quick', { heartbeatTimeout, rl: { steps: 8, evalEvery: 4 } }));
      const child = client.workflow.getHandle(`${id}-rl`);
      await until('RL to start', () => callsOf(id, 'rl').length === 1, 30_000);
      await handle.signal(pauseSignal);
      await until(
        'the RL round to stop',
        async () => (await child.query(rlProgress)).paused && ((await child.describe()).raw.pendingActivities ?? []).length === 0,
        30_000,
      );
      expect((await handle.query(pipelineProgress)).paused).toBe(true);
      await handle.signal(resumeSignal);
      await until('the RL round to run again', () => callsOf(id, 'rl').length === 2, 30_000);
      await handle.signal(stopSignal);
      const result = await handle.result();
      const [first, second] = inputsOf(`${id}-rl`, 'rl');
      expect(first.steps).toBe(4);
      expect(second).toEqual(first);
      expect(inputsOf(`${id}-rl`, 'lastCheckpoint')).toEqual([{ runId: `${id}-rl`, stage: 'rl' }]);
      expect(result).toMatchObject({ status: 'stopped', finalModel: checkpoint.path, rlSteps: checkpoint.step, rlEvals: [] });
      expect(inputsOf(id, 'evaluate').at(-1)).toMatchObject({ model: checkpoint.path, name: `${id}-final-eval` });
      expect(inputsOf(id, 'recordRunEnd')[0]).toMatchObject({
        status: 'stopped',
        summary: { rlRunId: `${id}-rl`, rlSteps: checkpoint.step, finalModel: checkpoint.path },
      });
      const stages = (await handle.query(pipelineProgress)).stages;
      expect(stages.find((s) => s.name === 'rl')?.status).toBe('stopped');
      expect(stages.find((s) => s.name === 'final-eval')?.status).toBe('done');
    });

    it('cancelling the run cancels SFT and records the run as stopped', async () => {
      const id = scenario('cancel', { sft: heldUntilCancelled });
      const handle = await start(id, resolveConfig('quick', { heartbeatTimeout }));
      await until('SFT to start', () => callsOf(id, 'sft').length === 1, 30_000);
      await handle.cancel();
      const err = await failureOf(handle.result());
      expect(err.cause).toBeInstanceOf(CancelledFailure);
      expect(inputsOf(id, 'recordRunEnd')).toEqual([{ status: 'stopped', summary: { error: expect.any(String) } }]);
      expect(callsOf(id, 'evaluate')).toEqual([]);
    });
  });
});
