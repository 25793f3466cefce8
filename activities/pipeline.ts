// Bookkeeping activities of the pipeline workflows: the problem set, the run's row in the store,
// the model a retraining run starts from, the last checkpoint of a stopped stage, and the report.
import { resolve } from 'node:path';
import { Context } from '@temporalio/activity';
import {
  ensureBenchmark,
  ensureProblems,
  latestGoodModel,
  storedColdStart,
  type BenchmarkName,
  type ProblemSource,
} from '../datasets/pipeline-runs.js';
import { collectReport } from '../datasets/report-data.js';
import { finishRun, latestCheckpoint, startRun } from '../datasets/runs.js';
import { resolveHome, withStore } from '../datasets/store.js';
import { writeReport } from '../engine/report/index.js';
import { guarded } from './failures.js';

function workflowId(): string {
  const info = Context.current().info;
  return info.workflowExecution?.workflowId ?? info.activityId;
}

export function createPipelineActivities({ home }: { home?: string } = {}) {
  return {
    async prepareProblems(data: ProblemSource) {
      return guarded(async () => {
        const d = await withStore(home, (store) => ensureProblems(store, data, workflowId()));
        return { dataset: `${d.name}@${d.version}`, name: d.name, version: d.version, rows: d.rowCount, splits: d.splits };
      });
    },

    /** A shipped benchmark (AIME 2024/2025) as a stored problem set. */
    async prepareBenchmark(input: { name: BenchmarkName }) {
      return guarded(async () => {
        const d = await withStore(home, (store) => ensureBenchmark(store, input.name, workflowId()));
        return { dataset: `${d.name}@${d.version}:test`, name: input.name, rows: d.rowCount };
      });
    },

    /** An arm's cold-start traces taken from the store instead of a teacher. */
    async useStoredTraces(input: { traces: string; mode: 'code' | 'text' }) {
      return guarded(async () => {
        const { dataset, kept } = await withStore(home, (store) => storedColdStart(store, input.traces, input.mode));
        return { dataset: `${dataset.name}@${dataset.version}`, kept, reused: true };
      });
    },

    async findLatestGoodModel(input: { datasetName: string; arm: 'code' | 'text' }) {
      return guarded(() => withStore(home, (store) => latestGoodModel(store, input.datasetName, input.arm)));
    },

    async recordRunStart(input: { kind: 'pipeline' | 'experiment'; preset: string; config: unknown }) {
      return guarded(() => withStore(home, (store) => startRun(store, { runId: workflowId(), workflowId: workflowId(), ...input })));
    },

    async recordRunEnd(input: { status: 'completed' | 'stopped' | 'failed'; summary: Record<string, unknown> }) {
      return guarded(() => withStore(home, (store) => finishRun(store, workflowId(), input.status, input.summary)));
    },

    /** The last good checkpoint of a stage that was stopped early (its model is the stage's output). */
    async lastCheckpoint(input: { runId: string; stage: 'sft' | 'rl' }) {
      return guarded(() => withStore(home, (store) => latestCheckpoint(store, input.runId, input.stage)));
    },

    /** Writes `<out>` (HTML) with SVG and PNG plots beside it; `out` is relative to the store's folder. */
    async report(input: { runId: string; out: string }) {
      return guarded(async () => {
        const data = await withStore(home, (store) => collectReport(store, input.runId));
        const written = await writeReport(data, resolve(resolveHome(home), input.out));
        return { html: written.html, pngs: written.pngs };
      });
    },
  };
}

export type PipelineActivities = ReturnType<typeof createPipelineActivities>;
