// The experiment and prepare-data workflows with mock activities (test/helpers/mock-activities.ts):
// an experiment's arms as child pipelines on one stored problem set, stop reaching both arms, a
// failure before the arms; a prepared set, or bad input not retried.
import type { Client } from '@temporalio/client';
import { ActivityFailure, ApplicationFailure } from '@temporalio/common';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { BAD_INPUT } from '../domain/errors.js';
import { resolveConfig, type RetoolConfig } from '../workflows/config.js';
import { stopSignal } from '../workflows/control.js';
import { experimentProgress } from '../workflows/experiment.js';
import { prepareDataProgress, prepareDataWorkflow } from '../workflows/prepare-data.js';
import { RetoolBestAccuracy, RetoolStage } from '../workflows/search-attributes.js';
import {
  calls,
  callsOf,
  failureOf,
  heartbeatTimeout,
  heldUntilCancelled,
  inputsOf,
  mockActivitiesWorker,
  scenario,
} from './helpers/mock-activities.js';
import { until } from './helpers/wait.js';

const address = inject('temporalAddress');

describe('the workflows with mock activities', () => {
  const mocks = mockActivitiesWorker(address, 'experiment');
  const { taskQueue, startExperiment, historyOf, scheduled } = mocks;
  let client: Client;
  beforeAll(() => {
    client = mocks.client;
  });

  describe('retoolExperiment', () => {
    const experimentConfig = (): RetoolConfig =>
      resolveConfig('quick', { arms: ['code', 'text'], heartbeatTimeout, rl: { steps: 2, evalEvery: 2 } });

    it('makes the problem set once, trains both arms as child pipelines on that stored version, records both and reports', async () => {
      const id = scenario('experiment');
      const config = experimentConfig();
      const handle = await startExperiment(id, config);
      const result = await handle.result();
      const stored = { source: 'stored', name: config.data.name, version: 1 };
      expect(scheduled(await historyOf(id))).toEqual(['recordRunStart', 'prepareProblems', 'recordRunEnd', 'report']);
      expect(inputsOf(id, 'recordRunStart')).toEqual([{ kind: 'experiment', preset: 'quick', config }]);
      expect(inputsOf(id, 'prepareProblems')).toEqual([config.data]);
      for (const arm of ['code', 'text'] as const) {
        const child = `${id}-${arm}`;
        expect(inputsOf(child, 'prepareProblems')).toEqual([stored]);
        expect(inputsOf(child, 'synthTraces')).toMatchObject([{ mode: arm }]);
        expect(inputsOf(child, 'evaluate').map((e) => e.tools)).toEqual([arm === 'code', arm === 'code']);
        expect(inputsOf(`${child}-rl`, 'rl').map((r) => r.tools)).toEqual([arm === 'code']);
      }
      expect(result).toMatchObject({ workflowId: id, dataset: `${config.data.name}@1`, report: `/mock-home/artifacts/${id}/report.html` });
      expect(result.arms.map((a) => [a.arm, a.workflowId, a.status])).toEqual([
        ['code', `${id}-code`, 'completed'],
        ['text', `${id}-text`, 'completed'],
      ]);
      expect(inputsOf(id, 'recordRunEnd')).toEqual([
        {
          status: 'completed',
          summary: {
            dataset: `${config.data.name}@1`,
            arms: result.arms.map((a) => ({ arm: a.arm, workflowId: a.workflowId, sftAccuracy: 0.25, accuracy: 0.5, rlSteps: 2 })),
          },
        },
      ]);
      expect(await handle.query(experimentProgress)).toEqual({
        preset: 'quick',
        stage: 'done',
        dataset: `${config.data.name}@1`,
        arms: [
          { arm: 'code', workflowId: `${id}-code` },
          { arm: 'text', workflowId: `${id}-text` },
        ],
      });
      expect((await handle.describe()).typedSearchAttributes.get(RetoolBestAccuracy)).toBe(0.5);
    });

    it('arms one after the other (parallelArms off) on a pretrained base found once for both', async () => {
      const id = scenario('sequential');
      const config = resolveConfig('quick', {
        arms: ['code', 'text'],
        parallelArms: false,
        model: { from: 'smollm2-135m-instruct' },
        heartbeatTimeout,
        rl: { steps: 2, evalEvery: 2 },
        eval: { baseEval: true },
      });
      const result = await (await startExperiment(id, config)).result();
      expect(result.arms.map((a) => [a.arm, a.status])).toEqual([
        ['code', 'completed'],
        ['text', 'completed'],
      ]);
      expect(inputsOf(id, 'initModel')).toEqual([{ from: 'smollm2-135m-instruct' }]);
      for (const arm of ['code', 'text'])
        expect(inputsOf(`${id}-${arm}`, 'initModel')).toEqual([{ from: '/models/smollm2-135m-instruct' }]);
      // The shared base is evaluated once, in the first arm.
      const evaluations = (arm: string) => inputsOf(`${id}-${arm}`, 'evaluate').map((e) => e.name);
      expect(evaluations('code')).toEqual([`${id}-code-base-eval`, `${id}-code-sft-eval`, `${id}-code-final-eval`]);
      expect(evaluations('text')).toEqual([`${id}-text-sft-eval`, `${id}-text-final-eval`]);
      // Every activity of the code arm (its RL child included) ran before the text arm's first.
      const order = calls
        .filter((c) => c.workflowId.startsWith(`${id}-`))
        .map((c) => (c.workflowId.startsWith(`${id}-code`) ? 'code' : 'text'));
      expect(order.indexOf('text')).toBe(order.lastIndexOf('code') + 1);
    });

    it('stop reaches both arms: each ends stopped and the experiment is recorded as stopped', async () => {
      const id = scenario('experiment-stop', { sft: heldUntilCancelled });
      const handle = await startExperiment(id, experimentConfig());
      await until('SFT in both arms', () => callsOf(id, 'sft').length === 2, 30_000);
      await handle.signal(stopSignal);
      const result = await handle.result();
      expect(result.arms.map((a) => a.status)).toEqual(['stopped', 'stopped']);
      expect(inputsOf(id, 'recordRunEnd')[0].status).toBe('stopped');
    });

    it('a failure before the arms fails the experiment, recorded as failed, with no child started', async () => {
      const id = scenario('experiment-fail', {
        prepareProblems: async () => {
          throw ApplicationFailure.nonRetryable('data.name: nope holds traces, not problems', BAD_INPUT);
        },
      });
      const handle = await startExperiment(id, experimentConfig());
      const err = await failureOf(handle.result());
      expect((err.cause as ActivityFailure).cause).toMatchObject({ type: BAD_INPUT });
      expect(inputsOf(id, 'recordRunEnd')).toEqual([{ status: 'failed', summary: { error: expect.any(String) } }]);
      expect(await handle.query(experimentProgress)).toMatchObject({ stage: 'failed', arms: [] });
      expect(calls.filter((c) => c.workflowId.startsWith(`${id}-`))).toEqual([]);
    });
  });

  describe('prepareDataWorkflow', () => {
    it('reports the prepared set, or a failure not retried for bad input', async () => {
      const ok = scenario('prepare');
      const handle = await client.workflow.start(prepareDataWorkflow, {
        taskQueue,
        workflowId: ok,
        args: [{ source: 'synth', name: 'mock-set', count: 100, seed: 1 }],
        workflowExecutionTimeout: '1 minute',
      });
      expect((await handle.result()).dataset).toMatchObject({ name: 'mock-set', version: 1 });
      expect(await handle.query(prepareDataProgress)).toMatchObject({
        stage: 'done',
        dataset: 'mock-set',
        result: { created: [{ name: 'mock-set', version: 1 }] },
      });

      const bad = scenario('prepare-bad', {
        prepareData: async () => {
          throw ApplicationFailure.retryable('line 2: malformed JSON', BAD_INPUT);
        },
      });
      const failing = await client.workflow.start(prepareDataWorkflow, {
        taskQueue,
        workflowId: bad,
        args: [{ source: 'synth', name: 'mock-bad', count: 100, seed: 1 }],
        workflowExecutionTimeout: '1 minute',
      });
      const err = await failureOf(failing.result());
      expect((err.cause as ActivityFailure).cause).toMatchObject({ type: BAD_INPUT });
      expect(callsOf(bad, 'prepareData').map((c) => c.attempt)).toEqual([1]);
      expect(await failing.query(prepareDataProgress)).toMatchObject({ stage: 'failed' });
      expect((await failing.describe()).typedSearchAttributes.get(RetoolStage)).toBe('failed');
    });
  });
});
