import type { ChildProcess } from 'node:child_process';
import { Client, Connection } from '@temporalio/client';
import { afterAll, describe, expect, it } from 'vitest';
import { withStore } from '../datasets/store.js';
import { quietTemporalRuntime } from '../cli/local-temporal.js';
import { runStatus } from '../cli/status.js';
import { startDevServer } from '../worker/temporal.js';
import { startWorkers, type RunningWorkers } from '../worker/worker.js';
import { resolveConfig } from '../workflows/config.js';
import { retoolPipeline } from '../workflows/pipeline.js';
import { tempHome } from './helpers/cli.js';
import { startServerOnFreePorts } from './helpers/net.js';
import { until } from './helpers/wait.js';

async function stopServer(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await exited;
}

describe('the Temporal dev server stopped and restarted mid-run', () => {
  const home = tempHome('retool-restart-');
  let server: ChildProcess | null = null;
  let workers: RunningWorkers | null = null;
  afterAll(async () => {
    await workers?.shutdown();
    if (server) await stopServer(server);
    home.cleanup();
  });

  it('the run finishes: the worker reconnects, the run goes on from its persisted history', async () => {
    quietTemporalRuntime();
    // A server of its own with its state in a file (the shared test server keeps none).
    const first = await startServerOnFreePorts({ home: home.dir });
    const ports = first.ports;
    server = first.child;
    const target = first.target;
    const taskQueue = 'retool-restart-test';
    workers = await startWorkers({ target, home: home.dir, taskQueues: [taskQueue] });
    let connection = await Connection.connect({ address: target.address });
    let client = new Client({ connection });
    const config = resolveConfig('quick', {
      data: { source: 'synth', name: 'restart', count: 300, seed: 6 },
      traces: { limit: 60, seed: 0 },
      sft: { steps: 200, checkpointEvery: 50 },
      eval: { limit: 4 },
      rl: { steps: 2, evalEvery: 2, evalLimit: 4, promptsPerStep: 2, samplesPerPrompt: 2 },
      budget: { maxResponseTokens: 32 },
    });
    const workflowId = `test-restart-${Date.now()}`;
    await client.workflow.start(retoolPipeline, { taskQueue, workflowId, args: [config] });
    await until('SFT step 20', async () => {
      const current = (await runStatus(client, workflowId)).arms[0]!.current;
      return current?.stage === 'sft' && current.step >= 20;
    });

    await connection.close();
    await stopServer(server);
    await new Promise((r) => setTimeout(r, 3000));
    server = (await startDevServer({ home: home.dir, ...ports })).child;
    connection = await Connection.connect({ address: target.address });
    client = new Client({ connection });
    try {
      const result = await client.workflow.getHandle<typeof retoolPipeline>(workflowId).result();
      expect(result).toMatchObject({ status: 'completed', dataset: 'restart@1', rlSteps: 2 });
      await withStore(home.dir, async (store) => {
        const losses = await store.query<{ step: number; n: bigint }>(
          "SELECT step, count(*) AS n FROM metrics WHERE run_id = $1 AND stage = 'sft' AND name = 'loss' GROUP BY step ORDER BY step",
          [`${workflowId}-sft`],
        );
        expect(losses.map((r) => Number(r.step))).toEqual(Array.from({ length: 200 }, (_, i) => i + 1));
        expect(losses.every((r) => Number(r.n) === 1)).toBe(true);
        const runs = await store.query<{ status: string }>('SELECT status FROM runs WHERE run_id = $1', [workflowId]);
        expect(runs[0]!.status).toBe('completed');
      });
    } finally {
      await connection.close();
    }
  }, 300_000);
});
