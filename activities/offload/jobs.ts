// What an activity's child process runs: the stage runners (store in, engine call, store out),
// reporting progress and checkpoints through `report` instead of Temporal's context, which lives in
// the worker. Paths arrive absolute; `home` names the store.
import { briefStore } from '../../datasets/store.js';
import type { ModelInit } from '../../engine/model/config.js';
import { resolvePretrained } from '../../engine/model/fetch.js';
import { initModelDir } from '../../engine/model/init.js';
import { Sandbox } from '../../engine/sandbox/index.js';
import { backendInfo, backendLabel, initBackend } from '../../engine/tensor/backend.js';
import { coldStart } from '../../stages/coldstart.js';
import { runEval } from '../../stages/eval.js';
import type { ColdStartOptions, EvalOptions, RlOptions, SftOptions } from '../../stages/options.js';
import { runRl } from '../../stages/rl.js';
import { runSft } from '../../stages/sft.js';
import type { JobName } from './protocol.js';

export interface JobReport {
  progress(step: number, total?: number, metrics?: Record<string, number | null>): void;
  checkpoint(step: number, path: string): void;
  /** Fires when the activity is cancelled (or its worker shuts down): stop at a step boundary. */
  signal: AbortSignal;
}

export type BaseModelInput = ({ out: string } & ModelInit) | { from: string; home: string };
type SynthInput = Pick<ColdStartOptions, 'dataset' | 'out' | 'mode' | 'seed' | 'limit' | 'concurrency' | 'teacher' | 'style' | 'openai'> & {
  home?: string;
};

export const JOBS = {
  /** Which backend a child computes on: the worker asks once before it polls. */
  async probe(_input: Record<string, never>) {
    await initBackend();
    return { info: backendInfo(), label: backendLabel() };
  },

  /** The run's base model: a built-in one made from its seed, or a pretrained one found (or fetched) and hashed. */
  async initModel(input: BaseModelInput) {
    if ('from' in input) return resolvePretrained(input.from, input.home);
    await initBackend();
    const made = await initModelDir(input.out, input);
    return { dir: input.out, sha256: null, parameters: made.parameters };
  },

  async synthTraces(input: SynthInput, report: JobReport) {
    const { home, ...options } = input;
    const sandbox = new Sandbox();
    try {
      const summary = await coldStart(briefStore(home), sandbox, options, (done, total) => report.progress(done, total));
      return { dataset: summary.dataset, kept: summary.kept };
    } finally {
      await sandbox.close();
    }
  },

  sft(input: SftOptions, report: JobReport) {
    return runSft(input, {
      onStep: (m) => report.progress(m.step, undefined, { loss: m.loss, lr: m.lr }),
      onCheckpoint: (step, path) => report.checkpoint(step, path),
      signal: report.signal,
    });
  },

  async rl(input: RlOptions, report: JobReport) {
    let heldOut: number | null = null;
    let step = 0;
    const { history: _history, ...summary } = await runRl(input, {
      onStep: (m) =>
        report.progress((step = m.step), undefined, {
          reward: m.rewardMean,
          accuracy: m.accuracy,
          response_length: m.responseLength,
          held_out_accuracy: heldOut,
        }),
      // An evaluation may finish after later steps (it overlaps training): it never moves progress back.
      onEval: (p) => report.progress(Math.max(step, p.step), undefined, { held_out_accuracy: (heldOut = p.accuracy) }),
      onCheckpoint: (step, path) => report.checkpoint(step, path),
      signal: report.signal,
    });
    // The per-step history is in the store; the workflow's payload stays small.
    return summary;
  },

  async evaluate(input: EvalOptions, report: JobReport) {
    const summary = await runEval(input, (done, total) => report.progress(done, total));
    return {
      runId: summary.runId,
      evaluation: summary.evaluation,
      tools: summary.tools,
      accuracy: summary.metrics.avgAtK,
      byLevel: Object.fromEntries(Object.entries(summary.metrics.byLevel).map(([l, a]) => [l, a.avgAtK])),
    };
  },
} satisfies Record<JobName, (input: never, report: JobReport) => Promise<unknown>>;

export type Jobs = typeof JOBS;
