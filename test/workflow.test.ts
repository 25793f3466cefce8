import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client, Connection, WorkflowFailedError } from '@temporalio/client';
import { ActivityFailure, ApplicationFailure } from '@temporalio/common';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { prepareDataProgress, prepareDataWorkflow } from '../workflows/prepare-data.js';
import { RetoolDataset, RetoolStage } from '../workflows/search-attributes.js';
import { quietTemporalRuntime } from '../cli/local-temporal.js';
import { TASK_QUEUES, ensureSearchAttributes, type TemporalTarget } from '../worker/temporal.js';
import { startWorkers, type RunningWorkers } from '../worker/worker.js';
import { json, retool, tempHome } from './helpers/cli.js';

const address = inject('temporalAddress');
const target: TemporalTarget = { address, namespace: 'default', uiUrl: null };

describe('prepareData on a real Temporal dev server', () => {
  const home = tempHome();
  let connection: Connection;
  let client: Client;

  beforeAll(async () => {
    connection = await Connection.connect({ address });
    client = new Client({ connection });
    await ensureSearchAttributes(connection, 'default');
  });
  afterAll(async () => {
    await connection?.close();
    home.cleanup();
  });

  it('`retool data synth --via-temporal` runs the workflow, findable by its search attributes', async () => {
    const out = json(
      await retool(['data', 'synth', '--name', 'wf-synth', '--count', '300', '--seed', '3', '--via-temporal', '--json'], {
        home: home.dir,
        env: { TEMPORAL_ADDRESS: address },
      }),
    );
    expect(out.dataset).toMatchObject({ name: 'wf-synth', version: 1, rowCount: 300 });
    const handle = client.workflow.getHandle(out.workflowId);
    const described = await handle.describe();
    expect(described.status.name).toBe('COMPLETED');
    expect(described.typedSearchAttributes.get(RetoolStage)).toBe('done');
    expect(described.typedSearchAttributes.get(RetoolDataset)).toBe('wf-synth');

    // Visibility is eventually consistent: what the UI list view shows for this query.
    const found: string[] = [];
    for (let i = 0; i < 40 && found.length === 0; i++) {
      for await (const wf of client.workflow.list({ query: `RetoolDataset = "wf-synth" AND RetoolStage = "done"` }))
        found.push(wf.workflowId);
      if (found.length === 0) await new Promise((r) => setTimeout(r, 250));
    }
    expect(found).toEqual([out.workflowId]);

    // The data landed in the store the CLI reads.
    const shown = json(await retool(['data', 'show', 'wf-synth', '--limit', '1000', '--json'], { home: home.dir }));
    expect(shown.rows).toHaveLength(300);
  });

  describe('with a worker in this process', () => {
    let workers: RunningWorkers;
    beforeAll(async () => {
      quietTemporalRuntime();
      workers = await startWorkers({ target, home: home.dir, taskQueues: [TASK_QUEUES.train] });
    });
    afterAll(async () => workers?.shutdown());

    it('imports and splits an unsplit file, recording lineage', async () => {
      const file = join(home.dir, 'plain.jsonl');
      writeFileSync(
        file,
        Array.from({ length: 200 }, (_, i) => JSON.stringify({ q: `What is ${i} + ${i}?`, a: String(2 * i) })).join('\n'),
      );
      const handle = await client.workflow.start(prepareDataWorkflow, {
        taskQueue: TASK_QUEUES.train,
        workflowId: `test-import-${Date.now()}`,
        args: [{ source: 'import', file, name: 'plain', problemField: 'q', answerField: 'a', testFraction: 0.25 }],
      });
      const result = await handle.result();
      // The progress query a status command reads (answered by this worker after completion too).
      expect(await handle.query(prepareDataProgress)).toMatchObject({
        stage: 'done',
        dataset: 'plain',
        result: { dataset: { version: 2 } },
      });
      expect(result.created.map((c) => `${c.name}@${c.version}:${c.source.split(':')[0]}`)).toEqual(['plain@1:import', 'plain@2:split']);
      expect(result.dataset.parents).toEqual([{ name: 'plain', version: 1, relation: 'split' }]);
      expect(result.dataset.splits.train! + result.dataset.splits.test!).toBe(200);
    });

    it('fails a bad file once, as a non-retryable BadInputError naming the line', async () => {
      const file = join(home.dir, 'broken.jsonl');
      writeFileSync(file, '{"q": "1", "a": "1"}\n{"q": "2", "a": \n');
      const handle = await client.workflow.start(prepareDataWorkflow, {
        taskQueue: TASK_QUEUES.train,
        workflowId: `test-bad-${Date.now()}`,
        args: [{ source: 'import', file, name: 'broken', problemField: 'q', answerField: 'a' }],
      });
      const err = await handle.result().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(WorkflowFailedError);
      const activityFailure = (err as WorkflowFailedError).cause;
      expect(activityFailure).toBeInstanceOf(ActivityFailure);
      const cause = (activityFailure as ActivityFailure).cause as ApplicationFailure;
      expect(cause.type).toBe('BadInputError');
      expect(cause.nonRetryable).toBe(true);
      expect(cause.message).toContain('line 2: malformed JSON');
      const history = await handle.fetchHistory();
      const attempts = history
        .events!.filter((e) => e.activityTaskStartedEventAttributes)
        .map((e) => e.activityTaskStartedEventAttributes!.attempt);
      expect(attempts).toEqual([1]);
      expect((await handle.describe()).typedSearchAttributes.get(RetoolStage)).toBe('failed');
    });
  });
});
