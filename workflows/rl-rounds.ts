// RL as rounds: each round runs `evalEvery` steps (rollout -> reward -> update per step) and ends
// with a held-out evaluation, all inside one activity that resumes the same run from its last
// checkpoint. A child workflow of the pipeline; it continues as new every `roundsPerRun` rounds,
// so its history stays short however many steps the run takes.
import { continueAsNew, defineQuery, setHandler, upsertMemo } from '@temporalio/workflow';
import type { RetoolConfig } from './config.js';
import { STOPPED, TrainingControl } from './control.js';
import { activitiesFor } from './proxies.js';

export interface RlRoundsInput {
  runId: string;
  model: string;
  out: string;
  dataset: string;
  tools: boolean;
  rl: RetoolConfig['rl'] & RetoolConfig['budget'];
  evalLevels?: number[];
  heartbeatTimeout: string;
  roundsPerRun: number;
  /** Carried across continue-as-new. */
  done?: number;
  evals?: { step: number; accuracy: number }[];
}

export interface RlRoundsResult {
  model: string;
  steps: number;
  stopped: boolean;
  evals: { step: number; accuracy: number }[];
}

export interface RlProgress {
  step: number;
  total: number;
  round: number;
  paused: boolean;
  evals: { step: number; accuracy: number }[];
}

export const rlProgress = defineQuery<RlProgress>('progress');

export async function retoolRl(input: RlRoundsInput): Promise<RlRoundsResult> {
  const { long, brief } = activitiesFor(input.heartbeatTimeout);
  const control = new TrainingControl().install();
  const total = input.rl.steps;
  const every = input.rl.evalEvery;
  let done = input.done ?? 0;
  const evals = [...(input.evals ?? [])];
  setHandler(rlProgress, () => ({ step: done, total, round: Math.ceil(done / every), paused: control.paused, evals }));

  let stopped = false;
  for (let rounds = 0; done < total; rounds++) {
    if (rounds === input.roundsPerRun) return continueAsNew<typeof retoolRl>({ ...input, done, evals });
    const target = Math.min(total, (Math.floor(done / every) + 1) * every);
    const round = await control.train(() =>
      long.rl.executeWithOptions(
        { summary: `RL round ${Math.ceil(target / every)}: steps ${done + 1}-${target} of ${total}, then held-out evaluation` },
        [
          {
            ...input.rl,
            steps: target,
            model: input.model,
            out: input.out,
            dataset: input.dataset,
            runId: input.runId,
            tools: input.tools,
            evalLevels: input.evalLevels,
          },
        ],
      ),
    );
    if (round === STOPPED) {
      stopped = true;
      break;
    }
    done = target;
    for (const e of round.evals) if (!evals.some((x) => x.step === e.step)) evals.push({ step: e.step, accuracy: e.accuracy });
    upsertMemo({ rlStep: done, rlSteps: total, bestAccuracy: Math.max(...evals.map((e) => e.accuracy)) });
  }
  if (!stopped) return { model: input.out, steps: done, stopped, evals };
  const last = await brief.lastCheckpoint({ runId: input.runId, stage: 'rl' });
  return { model: last?.path ?? input.model, steps: last?.step ?? done, stopped, evals };
}
