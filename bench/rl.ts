// `retool bench rl`: what an RL step costs and where its time goes. Rollout tokens/s with the
// interpreter in the loop, with tool calls overlapped with decoding against the baseline where
// the batch waits for every call, and the share of rollout time the sampler sits idle on the
// sandbox (goal: under 10%); then a few PPO steps, each split into rollout, scoring (reward, old
// log-probs, values, advantages) and update. Medians over repeats; the machine is shared and noisy.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { problemsForStage } from '../datasets/problems-io.js';
import { withStore } from '../datasets/store.js';
import { openModel } from '../engine/model/checkpoint.js';
import type { PresetName } from '../engine/model/config.js';
import { RlConfigSchema } from '../engine/rl/config.js';
import { trainRl } from '../engine/rl/trainer.js';
import { rollout } from '../engine/rollout/rollout.js';
import { Sandbox } from '../engine/sandbox/index.js';
import { backendInfo, initBackend } from '../engine/tensor/backend.js';
import { promptText } from '../engine/trace/prompt.js';
import { sftFixture } from './fixture.js';
import { median } from './stats.js';

export interface BenchRlOptions {
  preset: PresetName;
  sftSteps: number;
  /** An existing SFT model and problems dataset (with `home`) instead of the built-in fixture. */
  model?: string;
  dataset?: string;
  home?: string;
  prompts: number;
  samples: number;
  steps: number;
  repeats: number;
  onProgress?: (what: string) => void;
}

const round = (x: number, d = 2) => Math.round(x * 10 ** d) / 10 ** d;

export async function benchRl(o: BenchRlOptions) {
  await initBackend();
  const backend = backendInfo();
  const scratch = mkdtempSync(join(tmpdir(), 'retool-bench-rl-'));
  const sandbox = new Sandbox();
  const say = o.onProgress ?? (() => {});
  try {
    const fixture = o.model ? null : await sftFixture(scratch, sandbox, { preset: o.preset, sftSteps: o.sftSteps, say });
    const home = o.model ? o.home : scratch;
    const modelDir = o.model ?? fixture!.modelDir;
    const dataset = o.dataset ?? fixture?.dataset ?? 'bench';
    const problems = (await withStore(home, (store) => problemsForStage(store, dataset, 'train'))).rows;
    const { model, tokenizer } = openModel(modelDir);
    if (!tokenizer) throw new Error(`${modelDir} has no tokenizer`);

    const config = RlConfigSchema.parse({
      algo: 'ppo',
      promptsPerStep: o.prompts,
      samplesPerPrompt: o.samples,
      steps: o.steps,
      evalEvery: 0,
      checkpointEvery: 0,
    });
    type Mode = 'overlapped' | 'waiting' | 'padded';
    const runs: Record<Mode, { tokensPerSecond: number; waitShare: number; toolCalls: number; seconds: number; positions: number }[]> = {
      overlapped: [],
      waiting: [],
      padded: [],
    };
    for (let r = 0; r < o.repeats; r++) {
      const prompts = problems
        .slice(r * o.prompts, (r + 1) * o.prompts)
        .flatMap((p) => Array.from({ length: o.samples }, () => tokenizer.encode(promptText(tokenizer, p.problem))));
      for (const mode of ['overlapped', 'waiting', 'padded'] as const) {
        say(`rollout ${mode} ${r + 1}/${o.repeats}`);
        const { stats } = await rollout(model, tokenizer, sandbox, prompts, {
          tools: true,
          temperature: config.temperature,
          seed: r,
          batchSize: config.rolloutBatchSize,
          maxResponseTokens: config.maxResponseTokens,
          overlapTools: mode !== 'waiting',
          raggedPrefill: mode !== 'padded',
        });
        runs[mode].push({
          tokensPerSecond: stats.sampledTokens / stats.seconds,
          waitShare: stats.waitSeconds / stats.seconds,
          toolCalls: stats.toolCalls,
          seconds: stats.seconds,
          positions: stats.fedPositions,
        });
      }
    }
    const summary = (xs: (typeof runs)['overlapped']) => ({
      sampled_tokens_per_s: Math.round(median(xs.map((x) => x.tokensPerSecond))),
      sandbox_wait_share: round(median(xs.map((x) => x.waitShare)), 3),
      tool_calls: median(xs.map((x) => x.toolCalls)),
      positions_computed: median(xs.map((x) => x.positions)),
      runs_tokens_per_s: xs.map((x) => Math.round(x.tokensPerSecond)),
    });

    say(`ppo ${o.steps} steps`);
    const critic = openModel(modelDir).model;
    critic.addValueHead(1);
    const result = await trainRl({
      policy: model,
      critic,
      reference: null,
      tokenizer,
      tokenizerDir: modelDir,
      sandbox,
      problems,
      config,
      checkpointDir: (step) => join(scratch, 'rl', `step-${step}`),
      onStep: (m) => say(`step ${m.step}: ${m.seconds.total.toFixed(1)} s`),
    });
    critic.dispose();
    model.dispose();
    const part = (key: 'rollout' | 'scoring' | 'update' | 'total') => round(median(result.history.map((m) => m.seconds[key])));
    const total = part('total');
    const overlapped = summary(runs.overlapped);
    const waiting = summary(runs.waiting);
    const padded = summary(runs.padded);
    return {
      backend,
      model: o.model ?? `${o.preset} after ${o.sftSteps} SFT steps on built-in traces`,
      rollout: {
        sequences: o.prompts * o.samples,
        batch_size: config.rolloutBatchSize,
        temperature: config.temperature,
        repeats: o.repeats,
        overlapped,
        waiting,
        padded,
        overlapped_vs_waiting: round(overlapped.sampled_tokens_per_s / waiting.sampled_tokens_per_s),
        ragged_vs_padded: round(overlapped.sampled_tokens_per_s / padded.sampled_tokens_per_s),
      },
      ppo_step: {
        steps: o.steps,
        sequences: o.prompts * o.samples,
        epochs: config.epochs,
        mini_batch: config.miniBatchSize,
        median_seconds: { rollout: part('rollout'), scoring: part('scoring'), update: part('update'), total },
        share: {
          rollout: round(part('rollout') / total, 3),
          scoring: round(part('scoring') / total, 3),
          update: round(part('update') / total, 3),
        },
        sandbox_wait_share: round(median(result.history.map((m) => m.sandboxWaitShare)), 3),
        rollout_tokens_per_s: Math.round(median(result.history.map((m) => m.tokensPerSecond))),
      },
    };
  } finally {
    await sandbox.close();
    rmSync(scratch, { recursive: true, force: true });
  }
}
