// The harness for the workflow tests with mock activities (test/pipeline-workflow.test.ts,
// test/experiment-workflow.test.ts): the real workflow bundle on the suite's Temporal dev server, a
// worker whose activities return canned results shaped like the real ones (typed against
// `Activities`), and a log of every call. No training, no store: seconds per run.
import { Context } from '@temporalio/activity';
import type { WorkflowFailedError, Client } from '@temporalio/client';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { afterAll, beforeAll } from 'vitest';
import type { Activities } from '../../activities/index.js';
import { quietTemporalRuntime } from '../../cli/local-temporal.js';
import { ensureSearchAttributes } from '../../worker/temporal.js';
import { workflowBundle } from '../../worker/worker.js';
import type { RetoolConfigInput } from '../../workflows/config.js';
import { retoolExperiment } from '../../workflows/experiment.js';
import { retoolPipeline } from '../../workflows/pipeline.js';

export type Name = keyof Activities;
export interface Call {
  workflowId: string;
  activity: Name;
  input: any;
  attempt: number;
}
export type Overrides = { [K in Name]?: Activities[K] };

/** Every call of the mock activities, in order (one log per test file: Vitest isolates each file's modules). */
export const calls: Call[] = [];
/** Per-test behaviour, keyed by the test's workflow id (its child workflows' ids extend it). */
const scenarios = new Map<string, Overrides>();
const belongs = (workflowId: string, id: string) => workflowId === id || workflowId.startsWith(`${id}-`);
export const callsOf = (id: string, activity?: Name) =>
  calls.filter((c) => belongs(c.workflowId, id) && (!activity || c.activity === activity));
export const inputsOf = (workflowId: string, activity: Name) =>
  calls.filter((c) => c.workflowId === workflowId && c.activity === activity).map((c) => c.input);

let runs = 0;
export function scenario(name: string, overrides: Overrides = {}): string {
  const id = `mock-${name}-${Date.now().toString(36)}${++runs}`;
  scenarios.set(id, overrides);
  return id;
}

/** Logs the call, then runs the test's override or the canned behaviour. */
export function mock<K extends Name>(name: K, body: Activities[K]): Activities[K] {
  const run = async (...args: unknown[]) => {
    const info = Context.current().info;
    const workflowId = info.workflowExecution?.workflowId ?? info.activityId;
    calls.push({ workflowId, activity: name, input: args[0], attempt: info.attempt });
    const key = [...scenarios.keys()].find((id) => belongs(workflowId, id));
    const override = key ? scenarios.get(key)![name] : undefined;
    return ((override ?? body) as (...a: unknown[]) => Promise<unknown>)(...args);
  };
  return run as unknown as Activities[K];
}

/** A training activity that runs until the workflow cancels it (pause, stop, cancel). */
export async function heldUntilCancelled(): Promise<never> {
  const ctx = Context.current();
  const beat = setInterval(() => ctx.heartbeat({ held: true }), 50);
  try {
    await ctx.cancelled;
  } finally {
    clearInterval(beat);
  }
  throw new Error('not reached');
}

const accuracyOf = (name: string) => (name.endsWith('-sft-eval') ? 0.25 : 0.5);
export const rlAccuracy = (step: number) => step / 10;

/** Canned results shaped like the real activities' (typed against them). */
export const canned: Activities = {
  prepareData: async (input) => {
    const dataset = {
      id: 1,
      name: input.name,
      version: 1,
      kind: 'problems' as const,
      source: input.source,
      params: {},
      rowCount: 100,
      splits: { train: 80, test: 20 },
      parents: [],
      createdAt: '2025-01-01T00:00:00Z',
    };
    return { dataset, created: [{ name: input.name, version: 1, source: input.source }] };
  },
  prepareProblems: async (data) => {
    const version = data.source === 'stored' ? (data.version ?? 1) : 1;
    return { dataset: `${data.name}@${version}`, name: data.name, version, rows: 100, splits: { train: 80, test: 20 } };
  },
  prepareBenchmark: async (input) => ({ dataset: `bench-${input.name}@1:test`, name: input.name, rows: 30 }),
  findLatestGoodModel: async () => null,
  recordRunStart: async () => undefined,
  recordRunEnd: async () => undefined,
  lastCheckpoint: async () => null,
  report: async (input) => ({ html: `/mock-home/${input.out}`, pngs: [] }),
  initModel: async (input) =>
    'from' in input
      ? { dir: `/models/${input.from}`, sha256: 'ab'.repeat(32), parameters: 1234 }
      : { dir: input.out, sha256: null, parameters: 1234 },
  synthTraces: async (input) => ({ dataset: `${input.out}@1`, kept: 42, reused: false }),
  useStoredTraces: async (input) => ({ dataset: `${input.traces.split('@')[0]}@1`, kept: 17, reused: true }),
  sft: async (input) => ({
    runId: input.runId,
    traces: input.traces,
    examples: 42,
    tooLong: 0,
    steps: input.steps ?? 0,
    resumedFrom: null,
    stopped: false,
    firstLoss: 2,
    finalLoss: 1,
    tokensPerSecond: 1000,
    out: input.out,
    lastCheckpoint: `${input.out}/step-${input.steps}`,
    backend: 'mock',
    seconds: 0.01,
  }),
  // Every round reports the evaluations of the whole run so far (the workflow keeps each step once).
  rl: async (input) => {
    const every = input.evalEvery ?? 1;
    const steps = Array.from({ length: Math.floor(input.steps! / every) }, (_, i) => (i + 1) * every);
    if (steps.at(-1) !== input.steps) steps.push(input.steps!);
    const evals = steps.map((step) => ({
      step,
      evaluation: `${input.runId}-step-${step}@1`,
      accuracy: rlAccuracy(step),
      byLevel: {},
      responseLength: 40,
      codeRatio: 1,
      codeInvocationPosition: 0.3,
    }));
    return {
      runId: input.runId,
      algo: input.algo ?? 'grpo',
      tools: input.tools ?? true,
      model: input.model,
      dataset: input.dataset,
      steps: input.steps!,
      resumedFrom: null,
      stopped: false,
      evals,
      out: input.out,
      lastCheckpoint: null,
      backend: 'mock',
      sandbox: 'unsafe-none',
      seconds: 0.01,
    };
  },
  evaluate: async (input) => ({
    runId: input.name ?? 'eval',
    evaluation: `${input.name}@1`,
    tools: input.tools ?? true,
    accuracy: accuracyOf(input.name ?? ''),
    byLevel: { '1': accuracyOf(input.name ?? '') },
  }),
};
export const activities = Object.fromEntries(Object.entries(canned).map(([name, body]) => [name, mock(name as Name, body)])) as Activities;

/** Training activities heartbeat often in these runs, so a pause reaches them within a second. */
export const heartbeatTimeout = '10s';

export const failureOf = (p: Promise<unknown>) =>
  p.then(
    () => {
      throw new Error('expected the workflow to fail');
    },
    (err: unknown) => err as WorkflowFailedError,
  );

/**
 * A worker on its own task queue (one per test file: `name` tells them apart) running the real
 * workflow bundle with the mock activities, started before the file's tests and shut down after
 * them, and the helpers that start workflows on it and read their histories. `client` is set once
 * the set-up has run.
 */
export function mockActivitiesWorker(address: string, name: string) {
  const taskQueue = `retool-mock-activities-${name}-${process.pid}`;
  let env: TestWorkflowEnvironment;
  let client: Client;
  let worker: Worker;
  let running: Promise<void>;

  beforeAll(async () => {
    quietTemporalRuntime();
    env = await TestWorkflowEnvironment.createFromExistingServer({ address, namespace: 'default' });
    client = env.client;
    await ensureSearchAttributes(env.connection, 'default');
    worker = await Worker.create({
      connection: env.nativeConnection,
      namespace: 'default',
      taskQueue,
      workflowBundle: await workflowBundle(),
      activities,
      // Cancellation reaches an activity with a heartbeat's reply: let heartbeats through at once.
      defaultHeartbeatThrottleInterval: '50ms',
      maxHeartbeatThrottleInterval: '100ms',
    });
    running = worker.run();
  });
  afterAll(async () => {
    if (worker?.getState() === 'RUNNING') worker.shutdown();
    await running;
    await env?.teardown();
  });

  const options = (workflowId: string, input: RetoolConfigInput) => ({
    taskQueue,
    workflowId,
    args: [input] as [RetoolConfigInput],
    workflowExecutionTimeout: '2 minutes',
  });
  const start = (workflowId: string, input: RetoolConfigInput) => client.workflow.start(retoolPipeline, options(workflowId, input));
  const startExperiment = (workflowId: string, input: RetoolConfigInput) =>
    client.workflow.start(retoolExperiment, options(workflowId, input));
  const historyOf = async (workflowId: string, runId?: string) =>
    (await client.workflow.getHandle(workflowId, runId).fetchHistory()).events!;
  const scheduled = (events: Awaited<ReturnType<typeof historyOf>>) =>
    events.flatMap((e) => (e.activityTaskScheduledEventAttributes ? [e.activityTaskScheduledEventAttributes.activityType!.name] : []));

  return {
    taskQueue,
    get client() {
      return client;
    },
    start,
    startExperiment,
    historyOf,
    scheduled,
  };
}
