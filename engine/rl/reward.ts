// The outcome reward (the paper's rule): +1 when the final \boxed{} answer grades equal to the
// ground truth, -1 otherwise. Running code earns nothing by itself. Two options from later work,
// off by default and recorded in the run's config when on: the verl ReTool recipe's small credit
// for tool calls in wrong answers, and SimpleTIR's exclusion of trajectories with a void turn.
import type { Trajectory } from '../rollout/rollout.js';
import { codeBlocks, gradeModelAnswer } from '../trace/format.js';

export interface RewardOptions {
  /** verl recipe: a wrong answer gets +0.1 per tool call, but never more than -0.6. */
  toolCallBonus: boolean;
}

export interface Scored {
  reward: number;
  correct: boolean;
  answer: string | null;
}

export function outcomeReward(t: Pick<Trajectory, 'response' | 'toolCalls'>, gold: string, opts: RewardOptions): Scored {
  const { correct, extracted } = gradeModelAnswer(t.response, gold);
  let reward = correct ? 1 : -1;
  if (!correct && opts.toolCallBonus) reward = Math.min(-0.6, reward + 0.1 * t.toolCalls.length);
  return { reward, correct, answer: extracted };
}

/**
 * SimpleTIR's void turn: a model turn that ends with neither a code block nor a final answer.
 * The turns of a trajectory are split by its interpreter outputs; each must close with `</code>`
 * (the call that produced the next output) except the last, which must hold `\boxed{`.
 */
export function hasVoidTurn(t: Pick<Trajectory, 'response' | 'stop'>): boolean {
  if (t.stop === 'tool_limit') return false;
  const lastTurn = t.response.split('</interpreter>').at(-1) ?? '';
  if (lastTurn.includes('\\boxed{')) return false;
  // A last turn that opened code but was cut before its output is still a tool turn, not void.
  return codeBlocks(lastTurn).length === 0;
}
