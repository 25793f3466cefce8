// Stage 4: evaluation. Rolls out k samples per problem (tools on: code runs in the sandbox and its
// output is appended; off: text only), grades the final \boxed{} answers, computes the paper's
// metrics, and stores every sample in the store for people to read.
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { BadInputError } from '../domain/errors.js';
import { writeEvaluation } from '../datasets/evaluations.js';
import { problemsForStage } from '../datasets/problems-io.js';
import { finishRun, recordMetrics, startRun } from '../datasets/runs.js';
import type { DatasetInfo, ProblemRow } from '../datasets/schemas.js';
import { withStore } from '../datasets/store.js';
import { evaluateModel } from '../engine/eval/evaluate.js';
import type { EvalMetrics } from '../engine/eval/metrics.js';
import { openModel, type LoadedModel } from '../engine/model/checkpoint.js';
import type { RolloutStats } from '../engine/rollout/rollout.js';
import { Sandbox, type IsolationMode } from '../engine/sandbox/index.js';
import { backendLabel, initBackend } from '../engine/tensor/backend.js';
import { EvalOptionsSchema, type EvalOptions } from './options.js';
import { evaluationRows } from './evaluation-rows.js';

export interface EvalSummary {
  runId: string;
  evaluation: string;
  model: string;
  dataset: string;
  tools: boolean;
  metrics: EvalMetrics;
  rollout: RolloutStats & { problemsPerSecond: number; sampledTokensPerSecond: number };
  backend: string;
  /** Isolation the model's code ran under (bubblewrap, unshare, unsafe-none). */
  sandbox: IsolationMode;
}

async function problemsFor(
  opts: z.output<typeof EvalOptionsSchema>,
): Promise<{ dataset: DatasetInfo; ref: string; problems: ProblemRow[] }> {
  const { dataset, source, rows } = await withStore(opts.home, (store) => problemsForStage(store, opts.dataset, 'test'));
  let problems = rows;
  if (opts.levels) problems = problems.filter((p) => p.level !== null && opts.levels!.includes(p.level));
  if (opts.families) problems = problems.filter((p) => p.family !== null && opts.families!.includes(p.family));
  if (opts.limit) problems = problems.slice(0, opts.limit);
  if (problems.length === 0)
    throw new BadInputError(`${source} holds no problems${opts.levels || opts.families ? ' at the chosen levels/families' : ''}`);
  return { dataset, ref: source, problems };
}

/** What the evaluation dataset keeps of its metrics (the report's table reads them back). */
function storedMetrics(m: EvalMetrics) {
  return {
    k: m.k,
    problems: m.problems,
    avgAtK: m.avgAtK,
    passAtK: m.passAtK,
    byLevel: Object.fromEntries(Object.entries(m.byLevel).map(([level, a]) => [level, { avgAtK: a.avgAtK, problems: a.problems }])),
    responseLength: m.responseLength,
    codeRatio: m.codeRatio,
    codeInvocationPosition: m.codeInvocationPosition,
    codePassRate: m.codePassRate.all,
    codeLines: m.codeLines,
    selfCorrectionRate: m.selfCorrectionRate,
    codeBlocks: m.codeBlocks,
    passingCodeBlocks: m.passingCodeBlocks,
    codePurposes: m.codePurposes,
  };
}

export async function runEval(options: EvalOptions, onProgress?: (done: number, total: number) => void): Promise<EvalSummary> {
  const opts = EvalOptionsSchema.parse(options);
  await initBackend();
  const backend = backendLabel();
  const runId = opts.runId ?? `eval-${new Date().toISOString().replace(/[-:T]/g, '').slice(0, 14)}-${randomBytes(3).toString('hex')}`;
  const { dataset, ref, problems } = await problemsFor(opts);
  const sandbox = new Sandbox();
  let loaded: LoadedModel;
  try {
    // The sandbox's servers start before the model loads: a process holding a real model's
    // gigabytes may no longer be allowed to fork (ENOMEM), and every code run would fail.
    if (opts.tools) await sandbox.warm();
    loaded = openModel(opts.model);
  } catch (err) {
    await sandbox.close();
    throw err;
  }
  const { model, tokenizer } = loaded;
  try {
    if (!tokenizer) throw new BadInputError(`${opts.model}: no tokenizer.json, so problems cannot be encoded`);
    await withStore(opts.home, (store) => startRun(store, { runId, kind: 'eval', config: opts, backend }));
    const { samples, stats, metrics } = await evaluateModel(model, tokenizer, sandbox, problems, opts, onProgress);
    const name = opts.name ?? runId;
    const stored = await withStore(opts.home, async (store) => {
      const out = await writeEvaluation(
        store,
        {
          name,
          runId,
          step: opts.step ?? null,
          problems: dataset,
          params: {
            model: opts.model,
            dataset: ref,
            tools: opts.tools,
            samples: opts.samples,
            temperature: opts.temperature,
            topP: opts.topP,
            ...storedMetrics(metrics),
          },
        },
        evaluationRows(samples, opts.tools),
      );
      const flat: Record<string, number> = {
        avg_at_k: metrics.avgAtK,
        pass_at_k: metrics.passAtK,
        response_length: metrics.responseLength,
        code_ratio: metrics.codeRatio,
      };
      await recordMetrics(store, runId, 'eval', [{ step: opts.step ?? 0, values: flat }]);
      return out;
    });
    const summary: EvalSummary = {
      runId,
      evaluation: `${stored.name}@${stored.version}`,
      model: opts.model,
      dataset: ref,
      tools: opts.tools,
      metrics,
      rollout: {
        ...stats,
        problemsPerSecond: problems.length / stats.seconds,
        sampledTokensPerSecond: stats.sampledTokens / stats.seconds,
      },
      backend,
      sandbox: sandbox.isolation.mode,
    };
    await withStore(opts.home, (store) => finishRun(store, runId, 'completed', summary));
    return summary;
  } finally {
    await sandbox.close();
    model.dispose();
  }
}
