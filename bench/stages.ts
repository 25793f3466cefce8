// `retool bench stages`: SFT tokens/s and evaluation problems/s with tools on, in one run on a
// throwaway store: synthetic problems -> built-in teacher traces -> SFT of the tiny model ->
// rollouts with the sandbox in the loop, once with tool calls overlapped with decoding (a batch's
// other sequences keep decoding while one waits for its code) and once with the batch waiting
// for every call (the baseline). Medians over repeats; the machine is shared and noisy.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readProblems } from '../datasets/problems-io.js';
import { withStore } from '../datasets/store.js';
import { evaluateModel } from '../engine/eval/evaluate.js';
import { loadModel } from '../engine/model/checkpoint.js';
import type { PresetName } from '../engine/model/config.js';
import { Sandbox } from '../engine/sandbox/index.js';
import { backendInfo, initBackend } from '../engine/tensor/backend.js';
import { sftFixture } from './fixture.js';
import { median } from './stats.js';

export interface BenchStagesOptions {
  preset: PresetName;
  sftSteps: number;
  problems: number;
  repeats: number;
  onProgress?: (what: string) => void;
}

const round = (x: number, d = 2) => Math.round(x * 10 ** d) / 10 ** d;

export async function benchStages(o: BenchStagesOptions) {
  await initBackend();
  const backend = backendInfo();
  const home = mkdtempSync(join(tmpdir(), 'retool-bench-stages-'));
  const sandbox = new Sandbox();
  const say = o.onProgress ?? (() => {});
  try {
    const { cold, sft } = await sftFixture(home, sandbox, { preset: o.preset, sftSteps: o.sftSteps, say });

    const { model, tokenizer: tok } = loadModel(join(home, 'sft'));
    const problems = (await withStore(home, (store) => readProblems(store, 'bench:test', o.problems))).rows;
    const runs: Record<
      'overlapped' | 'waiting',
      { problemsPerSecond: number; tokensPerSecond: number; waitShare: number; toolCalls: number; accuracy: number }[]
    > = { overlapped: [], waiting: [] };
    for (let r = 0; r < o.repeats; r++) {
      for (const mode of ['overlapped', 'waiting'] as const) {
        say(`eval ${mode} ${r + 1}/${o.repeats}`);
        const { stats, metrics } = await evaluateModel(model, tok!, sandbox, problems, {
          tools: true,
          batchSize: 32,
          overlapTools: mode === 'overlapped',
        });
        runs[mode].push({
          problemsPerSecond: problems.length / stats.seconds,
          tokensPerSecond: stats.sampledTokens / stats.seconds,
          waitShare: stats.waitSeconds / stats.seconds,
          toolCalls: stats.toolCalls,
          accuracy: metrics.avgAtK,
        });
      }
    }
    const summary = (xs: (typeof runs)['overlapped']) => ({
      problems_per_s: round(median(xs.map((x) => x.problemsPerSecond))),
      sampled_tokens_per_s: Math.round(median(xs.map((x) => x.tokensPerSecond))),
      sandbox_wait_share: round(median(xs.map((x) => x.waitShare)), 3),
      tool_calls: xs[0]!.toolCalls,
      accuracy: round(xs[0]!.accuracy, 3),
      runs_problems_per_s: xs.map((x) => round(x.problemsPerSecond)),
    });
    const overlapped = summary(runs.overlapped);
    const waiting = summary(runs.waiting);
    return {
      backend,
      preset: o.preset,
      cold_start: { problems: cold.problems, kept: cold.kept, traces_per_s: round(cold.problems / cold.seconds, 1) },
      sft: {
        steps: sft.steps,
        batch_size: 32,
        examples: sft.examples,
        tokens_per_s: Math.round(sft.tokensPerSecond),
        loss: [round(sft.firstLoss ?? NaN, 3), round(sft.finalLoss ?? NaN, 3)],
      },
      eval: {
        problems: problems.length,
        batch_size: 32,
        repeats: o.repeats,
        overlapped,
        waiting,
        overlapped_vs_waiting: round(overlapped.problems_per_s / waiting.problems_per_s),
      },
    };
  } finally {
    await sandbox.close();
    rmSync(home, { recursive: true, force: true });
  }
}
