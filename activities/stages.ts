// The pipeline's stages as activities: thin adapters over the engine functions. Long ones
// heartbeat with their step; a retried attempt continues the same run from its latest checkpoint
// instead of starting over; a cancelled one stops at a step boundary with a checkpoint.
import { resolve } from 'node:path';
import { CancelledFailure, Context } from '@temporalio/activity';
import { latestCheckpoint } from '../datasets/runs.js';
import { resolveHome, withStore } from '../datasets/store.js';
import { resolveTraceDataset } from '../datasets/traces.js';
import { coldStart } from '../stages/coldstart.js';
import { runEval, type EvalSummary } from '../stages/eval.js';
import type { ColdStartOptions, EvalOptions, RlOptions, SftOptions } from '../stages/options.js';
import type { PresetName } from '../engine/model/config.js';
import { initModelDir } from '../engine/model/init.js';
import { runRl, type RlSummary } from '../stages/rl.js';
import { Sandbox } from '../engine/sandbox/index.js';
import { runSft, type SftSummary } from '../stages/sft.js';
import { initBackend } from '../engine/tensor/backend.js';
import { guarded } from './failures.js';

export interface StageActivityOptions {
  home?: string;
}

/**
 * What a training activity heartbeats: where it is, how far it has to go, its latest metrics and
 * its last checkpoint. `retool status` reads it for progress and ETA; a retry reads `checkpoint`.
 */
export interface TrainingHeartbeat {
  stage: string;
  step: number;
  total: number;
  checkpoint: string | null;
  metrics: Record<string, number>;
  /** Pace of this attempt (from its first step on, so loading and resuming do not count). */
  secondsPerStep?: number | null;
}

/** Heartbeats progress, remembering the last checkpoint so every heartbeat carries it. */
function trainingHeartbeat(stage: string, total: number) {
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
  return {
    /** The checkpoint a previous attempt reported: this attempt resumes from it. */
    previousCheckpoint: previous?.checkpoint ?? null,
    step(step: number, metrics: Record<string, number | null>) {
      first ??= { step, at: performance.now() };
      if (step > first.step) state.secondsPerStep = (performance.now() - first.at) / 1000 / (step - first.step);
      state.step = step;
      state.metrics = Object.fromEntries(
        Object.entries(metrics).filter((e): e is [string, number] => typeof e[1] === 'number' && Number.isFinite(e[1])),
      );
      ctx.heartbeat(state);
    },
    checkpoint(path: string) {
      state.checkpoint = path;
      ctx.heartbeat(state);
    },
  };
}

/** An AbortSignal that fires when Temporal cancels the activity. */
function cancellation(): AbortSignal {
  const stop = new AbortController();
  Context.current().cancelled.catch(() => stop.abort());
  return stop.signal;
}

export function createStageActivities({ home }: StageActivityOptions = {}) {
  /** Paths the workflow names are relative to the store's folder (checkpoint paths are absolute). */
  const inHome = (path: string) => resolve(resolveHome(home), path);
  const hasCheckpoint = (runId: string, stage: string) =>
    withStore(home, (store) => latestCheckpoint(store, runId, stage)).then((c) => c !== null);

  return {
    async initModel(input: { out: string; preset: PresetName; seed: number }) {
      return guarded(async () => {
        await initBackend();
        const made = await initModelDir(inHome(input.out), input.preset, input.seed);
        return { dir: input.out, parameters: made.parameters };
      });
    },

    /** Cold-start traces. A retry that finds the dataset its first attempt committed returns it. */
    async synthTraces(input: Pick<ColdStartOptions, 'dataset' | 'out' | 'mode' | 'seed' | 'limit' | 'concurrency'>) {
      return guarded(async () => {
        const existing = await withStore(home, (store) => resolveTraceDataset(store, input.out)).catch(() => null);
        if (existing) return { dataset: `${existing.name}@${existing.version}`, kept: existing.rowCount, reused: true };
        const sandbox = new Sandbox();
        try {
          const ctx = Context.current();
          const summary = await withStore(home, (store) =>
            coldStart(store, sandbox, { ...input }, (done, total) =>
              ctx.heartbeat({ stage: 'cold-start', step: done, total, checkpoint: null, metrics: {} }),
            ),
          );
          return { dataset: summary.dataset, kept: summary.kept, reused: false };
        } finally {
          await sandbox.close();
        }
      });
    },

    async sft(input: Omit<SftOptions, 'home' | 'resume'> & { runId: string }): Promise<SftSummary> {
      return guarded(async () => {
        const beat = trainingHeartbeat('sft', input.steps ?? 0);
        const resume = beat.previousCheckpoint !== null || (await hasCheckpoint(input.runId, 'sft'));
        const summary = await runSft(
          { ...input, model: inHome(input.model), out: inHome(input.out), home, resume },
          {
            onStep: (m) => beat.step(m.step, { loss: m.loss, lr: m.lr }),
            onCheckpoint: (_step, path) => beat.checkpoint(path),
            signal: cancellation(),
          },
        );
        if (summary.stopped) throw new CancelledFailure(`SFT stopped at step ${summary.steps}; checkpoint ${summary.lastCheckpoint}`);
        return summary;
      });
    },

    async rl(input: Omit<RlOptions, 'home' | 'resume'> & { runId: string }): Promise<Omit<RlSummary, 'history'>> {
      return guarded(async () => {
        const beat = trainingHeartbeat('rl', input.steps ?? 0);
        const resume = beat.previousCheckpoint !== null || (await hasCheckpoint(input.runId, 'rl'));
        let heldOut: number | null = null;
        const summary = await runRl(
          { ...input, model: inHome(input.model), out: inHome(input.out), home, resume },
          {
            onStep: (m) =>
              beat.step(m.step, {
                reward: m.rewardMean,
                accuracy: m.accuracy,
                response_length: m.responseLength,
                held_out_accuracy: heldOut,
              }),
            onEval: (p) => beat.step(p.step, { held_out_accuracy: (heldOut = p.accuracy) }),
            onCheckpoint: (_step, path) => beat.checkpoint(path),
            signal: cancellation(),
          },
        );
        if (summary.stopped) throw new CancelledFailure(`RL stopped at step ${summary.steps}; checkpoint ${summary.lastCheckpoint}`);
        // The per-step history is in the store; the workflow's payload stays small.
        const { history: _history, ...rest } = summary;
        return rest;
      });
    },

    async evaluate(
      input: Omit<EvalOptions, 'home'>,
    ): Promise<Pick<EvalSummary, 'runId' | 'evaluation' | 'tools'> & { accuracy: number; byLevel: Record<string, number> }> {
      return guarded(async () => {
        const ctx = Context.current();
        const summary = await runEval({ ...input, model: inHome(input.model), home }, (done, total) =>
          ctx.heartbeat({ stage: 'eval', step: done, total, checkpoint: null, metrics: {} }),
        );
        return {
          runId: summary.runId,
          evaluation: summary.evaluation,
          tools: summary.tools,
          accuracy: summary.metrics.avgAtK,
          byLevel: Object.fromEntries(Object.entries(summary.metrics.byLevel).map(([l, a]) => [l, a.avgAtK])),
        };
      });
    },
  };
}

export type StageActivities = ReturnType<typeof createStageActivities>;
