// The pipeline's stages as activities: thin adapters that run each stage in a child process
// (offload/) and heartbeat from the worker's free thread on a timer, carrying the child's latest
// step. A retried attempt continues the same run from its latest checkpoint instead of starting
// over; a cancelled one (or one whose worker shuts down) stops at a step boundary with a checkpoint.
import { resolve } from 'node:path';
import { CancelledFailure, Context } from '@temporalio/activity';
import { latestCheckpoint } from '../datasets/runs.js';
import { resolveHome, withStore } from '../datasets/store.js';
import { resolveTraceDataset } from '../datasets/traces.js';
import type { ColdStartOptions, EvalOptions, RlOptions, SftOptions } from '../stages/options.js';
import type { ModelInit } from '../engine/model/config.js';
import type { SftSummary } from '../stages/sft.js';
import { guarded } from './failures.js';
import { runOffloaded, type JobInput, type JobResult } from './offload/parent.js';
import type { JobName } from './offload/protocol.js';
import { HEARTBEAT_INTERVAL_MS } from './offload/timing.js';

/** What the workflow passes a training stage: paths relative to the store's folder, no resume flag. */
type TrainingInput<J extends 'sft' | 'rl'> = Omit<J extends 'sft' ? SftOptions : RlOptions, 'home' | 'resume'> & { runId: string };

export interface StageActivityOptions {
  home?: string;
  /** Silence of a stage's process that counts as stuck before its steps show their pace (default 5 min). */
  stallFloorMs?: number;
}

/**
 * What a stage activity heartbeats: where it is, how far it has to go, its latest metrics and its
 * last checkpoint. `retool status` reads it for progress and ETA; a retry reads `checkpoint`.
 */
export interface TrainingHeartbeat {
  stage: string;
  step: number;
  total: number;
  checkpoint: string | null;
  metrics: Record<string, number>;
  /** Pace of this attempt (from its first step on, so loading and resuming do not count). */
  secondsPerStep?: number | null;
  /** The process doing the work (a child of the worker). */
  pid?: number;
}

/** Heartbeats a stage's progress on a timer while `work` runs, and returns what it returns. */
async function withHeartbeat<T>(
  stage: string,
  total: number,
  work: (beat: { previousCheckpoint: string | null; options: Parameters<typeof runOffloaded>[2] }) => Promise<T>,
): Promise<T> {
  const ctx = Context.current();
  const previous = ctx.info.heartbeatDetails as Partial<TrainingHeartbeat> | undefined;
  const state: TrainingHeartbeat = {
    stage,
    step: previous?.step ?? 0,
    total,
    checkpoint: previous?.checkpoint ?? null,
    metrics: {},
    secondsPerStep: null,
  };
  let first: { step: number; at: number } | null = null;
  const stop = new AbortController();
  ctx.cancelled.catch(() => stop.abort());
  const timer = setInterval(() => ctx.heartbeat(state), HEARTBEAT_INTERVAL_MS);
  ctx.heartbeat(state);
  try {
    return await work({
      previousCheckpoint: previous?.checkpoint ?? null,
      options: {
        signal: stop.signal,
        onSpawn: (pid) => (state.pid = pid),
        onProgress(step, stepTotal, metrics) {
          first ??= { step, at: performance.now() };
          if (step > first.step) state.secondsPerStep = (performance.now() - first.at) / 1000 / (step - first.step);
          state.step = step;
          if (stepTotal !== undefined) state.total = stepTotal;
          state.metrics = Object.fromEntries(
            Object.entries(metrics).filter((e): e is [string, number] => typeof e[1] === 'number' && Number.isFinite(e[1])),
          );
          ctx.heartbeat(state);
        },
        onCheckpoint(_step, path) {
          state.checkpoint = path;
          ctx.heartbeat(state);
        },
      },
    });
  } finally {
    clearInterval(timer);
  }
}

export function createStageActivities({ home, stallFloorMs }: StageActivityOptions = {}) {
  /** Paths the workflow names are relative to the store's folder (checkpoint paths are absolute). */
  const inHome = (path: string) => resolve(resolveHome(home), path);
  const hasCheckpoint = (runId: string, stage: string) =>
    withStore(home, (store) => latestCheckpoint(store, runId, stage)).then((c) => c !== null);
  const offload = <J extends JobName>(stage: string, total: number, job: J, input: JobInput<J>): Promise<JobResult<J>> =>
    withHeartbeat(stage, total, ({ options }) => runOffloaded(job, input, { ...options, stallFloorMs }));
  /** SFT or RL: resumes the run's latest checkpoint when an earlier attempt left one; a stop ends it cancelled. */
  const train = <J extends 'sft' | 'rl'>(job: J, input: TrainingInput<J>): Promise<JobResult<J>> =>
    guarded(() =>
      withHeartbeat(job, input.steps ?? 0, async ({ previousCheckpoint, options }): Promise<JobResult<J>> => {
        const resume = previousCheckpoint !== null || (await hasCheckpoint(input.runId, job));
        const full = { ...input, model: inHome(input.model), out: inHome(input.out), home, resume } as JobInput<J>;
        const summary: JobResult<J> = await runOffloaded(job, full, { ...options, stallFloorMs });
        const { stopped, steps, lastCheckpoint } = summary as { stopped: boolean; steps: number; lastCheckpoint: string | null };
        if (stopped) throw new CancelledFailure(`${job.toUpperCase()} stopped at step ${steps}; checkpoint ${lastCheckpoint}`);
        return summary;
      }),
    );

  return {
    /**
     * The base model: `{ from }` finds (or fetches) a pretrained one and answers its absolute
     * directory and content hash; a built-in preset is made at `out` (relative to the store's folder).
     */
    async initModel(input: ({ out: string } & ModelInit) | { from: string }) {
      return guarded(async () => {
        const job = 'from' in input ? { from: input.from, home: resolveHome(home) } : { ...input, out: inHome(input.out) };
        const made = await offload('init-model', 0, 'initModel', job);
        return { dir: 'from' in input ? made.dir : input.out, sha256: made.sha256, parameters: made.parameters };
      });
    },

    /** Cold-start traces. A retry that finds the dataset its first attempt committed returns it. */
    async synthTraces(
      input: Pick<ColdStartOptions, 'dataset' | 'out' | 'mode' | 'seed' | 'limit' | 'concurrency' | 'teacher' | 'style' | 'openai'>,
    ) {
      return guarded(async () => {
        const existing = await withStore(home, (store) => resolveTraceDataset(store, input.out)).catch(() => null);
        if (existing) return { dataset: `${existing.name}@${existing.version}`, kept: existing.rowCount, reused: true };
        const made = await offload('cold-start', 0, 'synthTraces', { ...input, home });
        return { ...made, reused: false };
      });
    },

    sft(input: TrainingInput<'sft'>): Promise<SftSummary> {
      return train('sft', input);
    },

    rl(input: TrainingInput<'rl'>): Promise<JobResult<'rl'>> {
      return train('rl', input);
    },

    async evaluate(input: Omit<EvalOptions, 'home'>): Promise<JobResult<'evaluate'>> {
      return guarded(() => offload('eval', 0, 'evaluate', { ...input, model: inHome(input.model), home }));
    },
  };
}

export type StageActivities = ReturnType<typeof createStageActivities>;
