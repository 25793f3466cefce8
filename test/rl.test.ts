import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { importProblems } from '../datasets/problems-io.js';
import { readMetrics } from '../datasets/runs.js';
import { withStore } from '../datasets/store.js';
import { loadModel, saveAdapter, saveModel } from '../engine/model/checkpoint.js';
import { LoraConfigSchema } from '../engine/model/lora-config.js';
import { DecoderConfigSchema } from '../engine/model/config.js';
import { DecoderModel } from '../engine/model/decoder.js';
import { gae, groupAdvantages, whiten } from '../engine/rl/advantages.js';
import type { RlOptions } from '../stages/options.js';
import { runRl } from '../stages/rl.js';
import {
  policyLossAndGrads,
  tokenLogprobs,
  tokenValues,
  valueLossAndGrads,
  type PolicyInputs,
  type ValueInputs,
} from '../engine/rl/losses.js';
import { hasVoidTurn, outcomeReward } from '../engine/rl/reward.js';
import { balancedChunks, type RlStepMetrics } from '../engine/rl/trainer.js';
import { generate } from '../engine/model/generate.js';
import { buildExamples, padBatch } from '../engine/sft/data.js';
import { initBackend, tf } from '../engine/tensor/backend.js';
import { builtinTokenizer } from '../engine/tokenizer/builtin.js';
import { AdamW, OptimizerConfigSchema } from '../engine/train/optim.js';
import { trainStep } from '../engine/train/step.js';
import { describeOnEachBackend } from './helpers/backends.js';
import { json, retool, tempHome } from './helpers/cli.js';
import { maxAbsDiff } from './helpers/reference.js';

const tokenizer = builtinTokenizer();
const code = (src: string) => `<code>\n\`\`\`python\n${src}\n\`\`\`\n</code>`;
const out = (text: string) => `\n<interpreter>\n${text}\n</interpreter>\n`;
const answer = (a: string) => `<answer>\\boxed{${a}}</answer>`;
const config = DecoderConfigSchema.parse({
  vocab_size: tokenizer.vocabSize,
  hidden_size: 32,
  intermediate_size: 64,
  num_hidden_layers: 1,
  num_attention_heads: 2,
  num_key_value_heads: 1,
  max_position_embeddings: 128,
  tie_word_embeddings: true,
  rope_theta: 10_000,
});

beforeAll(async () => {
  await initBackend();
});

describe('advantages', () => {
  // Tokens: 0 prompt, 1-2 model, 3-4 interpreter, 5 model. Values at non-actions are junk on purpose.
  const actions = [0, 1, 1, 0, 0, 1];
  const values = [9, 0.5, 0.2, 9, 9, -0.4];

  it('GAE with gamma = lambda = 1 is the reward minus the value, on actions only', () => {
    const { advantages, returns } = gae(values, actions, 1, 1, 1);
    expect(advantages.map((a) => +a.toFixed(12))).toEqual([0, 0.5, 0.8, 0, 0, 1.4]);
    expect(returns.map((r) => +r.toFixed(12))).toEqual([0, 1, 1, 0, 0, 1]);
  });

  it('GAE with gamma 0.9 and lambda 0.8 matches the hand computation, skipping interpreter tokens', () => {
    // delta5 = 1 - (-0.4) = 1.4                      A5 = 1.4
    // delta2 = 0.9 * -0.4 - 0.2 = -0.56              A2 = -0.56 + 0.72 * 1.4 = 0.448
    // delta1 = 0.9 * 0.2 - 0.5 = -0.32               A1 = -0.32 + 0.72 * 0.448 = 0.00256
    const { advantages, returns } = gae(values, actions, 1, 0.9, 0.8);
    const expected = [0, 0.00256, 0.448, 0, 0, 1.4];
    advantages.forEach((a, i) => expect(a).toBeCloseTo(expected[i]!, 12));
    [0, 0.50256, 0.648, 0, 0, 1].forEach((r, i) => expect(returns[i]).toBeCloseTo(r, 12));
  });

  it('whitening: mean 0 and unbiased std 1 over the action tokens, zero elsewhere', () => {
    const actions = [
      [0, 1, 1, 0],
      [0, 0, 1, 1],
    ];
    const raw = [
      [9, 1, 2, 9],
      [9, 9, 3, 6],
    ];
    const w = whiten(raw, actions);
    // Action values 1, 2, 3, 6: mean 3, unbiased variance (4 + 1 + 0 + 9) / 3.
    const sd = Math.sqrt(14 / 3);
    expect(w[0]).toEqual([0, -2 / sd, -1 / sd, 0].map((x) => expect.closeTo(x, 6)));
    expect(w[1]).toEqual([0, 0, 0, 3 / sd].map((x) => expect.closeTo(x, 6)));
  });

  it('mini-batches split evenly: 37 by 32 is 19 + 18, not 32 + 5', () => {
    const sizes = (n: number, size: number) => balancedChunks([...Array(n).keys()], size).map((c) => c.length);
    expect(sizes(37, 32)).toEqual([19, 18]);
    expect(sizes(64, 32)).toEqual([32, 32]);
    expect(sizes(65, 32)).toEqual([22, 22, 21]);
    expect(balancedChunks([...Array(37).keys()], 32).flat()).toEqual([...Array(37).keys()]);
  });

  it('group-normalised advantages: (r - mean) / std within each prompt; uniform groups dropped', () => {
    const rewards = [1, -1, -1, 1, -1, -1, -1, -1, 1, -1, -1];
    const groups = [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2];
    const { advantages, kept } = groupAdvantages(rewards, groups);
    // Group 0: mean 0, unbiased std sqrt(4/3). Group 2: mean -1/3, deviations 4/3, -2/3, -2/3, std sqrt(4/3).
    const s = Math.sqrt(4 / 3);
    const expected = [1 / s, -1 / s, -1 / s, 1 / s, 0, 0, 0, 0, 4 / 3 / s, -2 / 3 / s, -2 / 3 / s];
    advantages.forEach((a, i) => expect(a).toBeCloseTo(expected[i]!, 5));
    expect(kept).toEqual([true, true, true, true, false, false, false, false, true, true, true]);
    expect(groupAdvantages(rewards, groups, { dropUniform: false }).kept.every(Boolean)).toBe(true);
  });
});

describe('reward', () => {
  const call = { code: '', status: 'ok' as const, output: '', atToken: 0, ms: 0 };
  it('is +1 for an equivalent boxed answer and -1 otherwise, whatever the code did', () => {
    expect(
      outcomeReward({ response: `${code('print(6*7)')}${out('42')}${answer('42.0')}`, toolCalls: [call] }, '42', { toolCallBonus: false }),
    ).toEqual({ reward: 1, correct: true, answer: '42.0' });
    expect(
      outcomeReward({ response: `${code('print(6*7)')}${out('42')}${answer('41')}`, toolCalls: [call] }, '42', { toolCallBonus: false })
        .reward,
    ).toBe(-1);
    expect(outcomeReward({ response: 'no answer at all', toolCalls: [] }, '42', { toolCallBonus: false })).toEqual({
      reward: -1,
      correct: false,
      answer: null,
    });
  });

  it('the optional tool-call bonus lifts only wrong answers, and never above -0.6', () => {
    const wrong = (n: number) =>
      outcomeReward({ response: answer('1'), toolCalls: Array(n).fill(call) }, '2', { toolCallBonus: true }).reward;
    expect(wrong(0)).toBe(-1);
    expect(wrong(3)).toBeCloseTo(-0.7, 12);
    expect(wrong(6)).toBe(-0.6);
    expect(outcomeReward({ response: answer('2'), toolCalls: [call, call] }, '2', { toolCallBonus: true }).reward).toBe(1);
  });

  it("grades the model's own answer only: code that prints a boxed answer earns nothing by itself", () => {
    const printed = `${code("print('\\\\boxed{42}')")}${out('\\boxed{42}')}`;
    expect(outcomeReward({ response: printed, toolCalls: [call] }, '42', { toolCallBonus: false })).toEqual({
      reward: -1,
      correct: false,
      answer: null,
    });
    expect(outcomeReward({ response: `${printed}${answer('42')}`, toolCalls: [call] }, '42', { toolCallBonus: false }).reward).toBe(1);
  });

  it('a void turn is a last turn with neither code nor an answer', () => {
    const base = { stop: 'eos' as const };
    expect(hasVoidTurn({ ...base, response: `${code('print(1)')}${out('1')}${answer('1')}` })).toBe(false);
    expect(hasVoidTurn({ ...base, response: `${code('print(1)')}${out('1')}I am not sure.` })).toBe(true);
    expect(hasVoidTurn({ ...base, response: 'Thinking, but never finishing' })).toBe(true);
    expect(hasVoidTurn({ ...base, response: `${code('print(1)')}${out('1')}${code('print(2)')}`, stop: 'tool_limit' })).toBe(false);
  });
});

/** prompt | model | interpreter | model, or ending in the interpreter's output. */
function sequence(parts: [role: 'prompt' | 'model' | 'interpreter', text: string][]) {
  const ids: number[] = [];
  const actions: number[] = [];
  for (const [role, text] of parts) {
    const t = tokenizer.encode(text);
    ids.push(...t);
    actions.push(...t.map(() => (role === 'model' ? 1 : 0)));
  }
  return { ids, actions };
}

function gradsArray(grads: Map<string, tf.Tensor>): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  for (const [name, g] of grads) {
    out.set(name, g.dataSync() as Float32Array);
    g.dispose();
  }
  return out;
}

function sameGrads(a: Map<string, Float32Array>, b: Map<string, Float32Array>): boolean {
  return [...a].every(([name, g]) => {
    const h = b.get(name)!;
    return g.length === h.length && g.every((x, i) => Object.is(x, h[i]));
  });
}

describeOnEachBackend('interpreter and prompt tokens carry zero weight in every loss term', () => {
  let model: DecoderModel;
  let critic: DecoderModel;
  const middle = sequence([
    ['prompt', 'user: 6*7?\nassistant: '],
    ['model', code('print(6*7)')],
    ['interpreter', out('42')],
    ['model', answer('42')],
  ]);
  const tail = sequence([
    ['prompt', 'user: 5*7?\nassistant: '],
    ['model', code('print(5*7)')],
    ['interpreter', out('35')],
  ]);
  const lossConfig = { clipLow: 0.2, clipHigh: 0.28, clipRatioC: 3, entropyCoef: 0.01, klCoef: 0.1, temperature: 1 };

  beforeAll(() => {
    model = DecoderModel.init(config, 3);
    critic = DecoderModel.init(config, 4, true);
  });
  afterAll(() => {
    model.dispose();
    critic.dispose();
  });

  function policyInputs(seq: { ids: number[]; actions: number[] }, junk: number): PolicyInputs {
    const old = tokenLogprobs(model, [seq], tokenizer.padId)[0]!.map((l, i) => (seq.actions[i] ? l - 0.05 * Math.sin(i) : junk));
    return {
      ...seq,
      advantages: seq.actions.map((a, i) => (a ? Math.cos(i) : junk)),
      oldLogprobs: old,
      refLogprobs: seq.actions.map((a, i) => (a ? old[i]! + 0.1 : junk)),
    };
  }
  function valueInputs(seq: { ids: number[]; actions: number[] }, junk: number): ValueInputs {
    // Old values as the critic saw them, so that the unclipped branch carries gradient.
    const values = tokenValues(critic, [seq], tokenizer.padId)[0]!;
    return {
      ...seq,
      returns: seq.actions.map((a, i) => (a ? Math.sin(i) : junk)),
      oldValues: seq.actions.map((a, i) => (a ? values[i]! + 0.01 * Math.cos(i) : junk)),
    };
  }

  it('policy loss: junk advantages, old and reference log-probs at masked positions change nothing', () => {
    const clean = gradsArray(
      policyLossAndGrads(model, [policyInputs(middle, 0), policyInputs(tail, 0)], tokenizer.padId, lossConfig).grads,
    );
    const junk = gradsArray(
      policyLossAndGrads(model, [policyInputs(middle, 1e6), policyInputs(tail, -37)], tokenizer.padId, lossConfig).grads,
    );
    expect(sameGrads(clean, junk)).toBe(true);
    expect([...clean.values()].some((g) => g.some((x) => x !== 0))).toBe(true);
    // The control: the same change at one model token does move the gradient.
    const moved = policyInputs(middle, 0);
    moved.advantages[middle.actions.indexOf(1) + 2] = 5;
    const other = gradsArray(policyLossAndGrads(model, [moved, policyInputs(tail, 0)], tokenizer.padId, lossConfig).grads);
    expect(sameGrads(clean, other)).toBe(false);
  });

  it('policy and value losses: perturbing trailing interpreter tokens leaves the gradients unchanged', () => {
    const perturbed = {
      ids: tail.ids.map((id, i) => (tail.actions[i] || i < tail.ids.length - 10 ? id : tokenizer.encode('9')[0]!)),
      actions: tail.actions,
    };
    expect(perturbed.ids).not.toEqual(tail.ids);
    const p = policyInputs(tail, 0);
    const a = gradsArray(policyLossAndGrads(model, [p, policyInputs(middle, 0)], tokenizer.padId, lossConfig).grads);
    const b = gradsArray(
      policyLossAndGrads(model, [{ ...p, ids: perturbed.ids }, policyInputs(middle, 0)], tokenizer.padId, lossConfig).grads,
    );
    expect(sameGrads(a, b)).toBe(true);
    const v = valueInputs(tail, 0);
    const va = gradsArray(valueLossAndGrads(critic, [v, valueInputs(middle, 0)], tokenizer.padId, 0.2).grads);
    const vb = gradsArray(valueLossAndGrads(critic, [{ ...v, ids: perturbed.ids }, valueInputs(middle, 0)], tokenizer.padId, 0.2).grads);
    expect(sameGrads(va, vb)).toBe(true);
  });

  it('value loss: junk returns and old values at masked positions change nothing', () => {
    const clean = gradsArray(valueLossAndGrads(critic, [valueInputs(middle, 0), valueInputs(tail, 0)], tokenizer.padId, 0.2).grads);
    const junk = gradsArray(valueLossAndGrads(critic, [valueInputs(middle, 123), valueInputs(tail, -1e5)], tokenizer.padId, 0.2).grads);
    expect(sameGrads(clean, junk)).toBe(true);
    expect([...clean.values()].some((g) => g.some((x) => x !== 0))).toBe(true);
  });

  it('clipping is asymmetric: a ratio above 1 + clipHigh with a positive advantage gives no policy gradient; with a negative one it does', () => {
    const current = tokenLogprobs(model, [middle], tokenizer.padId)[0]!;
    // ratio = e^0.3 = 1.35: above 1.28 (clipHigh), while 1.2 < e^0.2 = 1.22 < 1.28 stays inside.
    const inputs = (shift: number, adv: number): PolicyInputs => ({
      ...middle,
      oldLogprobs: current.map((l) => l - shift),
      advantages: middle.actions.map(() => adv),
    });
    const noEntropy = { ...lossConfig, entropyCoef: 0, klCoef: 0 };
    const clippedUp = policyLossAndGrads(model, [inputs(0.3, 1)], tokenizer.padId, noEntropy);
    expect(clippedUp.stats.clipFrac).toBe(1);
    expect([...gradsArray(clippedUp.grads).values()].every((g) => g.every((x) => x === 0))).toBe(true);
    const inside = policyLossAndGrads(model, [inputs(0.2, 1)], tokenizer.padId, noEntropy);
    expect(inside.stats.clipFrac).toBe(0);
    expect(inside.stats.pgLoss).toBeCloseTo(-Math.exp(0.2), 4);
    expect([...gradsArray(inside.grads).values()].some((g) => g.some((x) => x !== 0))).toBe(true);
    const negative = policyLossAndGrads(model, [inputs(0.3, -1)], tokenizer.padId, noEntropy);
    expect(negative.stats.clipFrac).toBe(0);
    expect(negative.stats.pgLoss).toBeCloseTo(Math.exp(0.3), 4);
    expect([...gradsArray(negative.grads).values()].some((g) => g.some((x) => x !== 0))).toBe(true);
    // Dual clip: a ratio of e^5 with a negative advantage weighs clipRatioC (3), not 148, and is constant.
    const runaway = policyLossAndGrads(model, [inputs(5, -1)], tokenizer.padId, noEntropy);
    expect(runaway.stats.pgLoss).toBeCloseTo(3, 4);
    expect([...gradsArray(runaway.grads).values()].every((g) => g.every((x) => x === 0))).toBe(true);
  });

  it('a reference far from the policy gives a bounded, finite KL term', () => {
    const current = tokenLogprobs(model, [middle], tokenizer.padId)[0]!;
    const far: PolicyInputs = {
      ...middle,
      oldLogprobs: current,
      advantages: middle.actions.map(() => 0),
      refLogprobs: current.map((l) => l + 30),
    };
    const { stats, grads } = policyLossAndGrads(model, [far], tokenizer.padId, { ...lossConfig, entropyCoef: 0 });
    expect(stats.refKl).toBeCloseTo(10, 4);
    expect(Number.isFinite(stats.loss)).toBe(true);
    expect([...gradsArray(grads).values()].every((g) => g.every(Number.isFinite))).toBe(true);
  });
});

describeOnEachBackend('sampler and optimizer', () => {
  it('the sampler records log-probs under the temperature it sampled at, as the losses compute them', () => {
    const model = DecoderModel.init(config, 3);
    const prompt = tokenizer.encode('user: 6*7?\nassistant: ');
    const [sampled] = generate(model, [prompt], { maxNewTokens: 12, temperature: 0.6, seed: 5 });
    const seq = { ids: [...prompt, ...sampled!.tokens], actions: [...prompt.map(() => 0), ...sampled!.tokens.map(() => 1)] };
    const at = (temperature: number) => tokenLogprobs(model, [seq], tokenizer.padId, temperature)[0]!.slice(prompt.length);
    expect(maxAbsDiff(sampled!.logprobs, at(0.6))).toBeLessThan(1e-4);
    expect(maxAbsDiff(sampled!.logprobs, at(1))).toBeGreaterThan(1e-2);
    model.dispose();
  });

  it('an optimizer step on non-finite gradients changes nothing and says so', () => {
    const w = tf.variable(tf.tensor1d([1, 2, 3]));
    const opt = new AdamW(new Map([['w', w]]), OptimizerConfigSchema.parse({ lr: 0.1, warmupSteps: 0, totalSteps: 10 }));
    expect(opt.update(new Map([['w', tf.tensor1d([0.1, 0.2, 0.3])]])).applied).toBe(true);
    const state = () => [w, opt.m.get('w')!, opt.v.get('w')!].map((t) => Array.from(t.dataSync()));
    const before = state();
    for (const bad of [NaN, Infinity]) {
      const result = opt.update(new Map([['w', tf.tensor1d([bad, 0, 1])]]));
      expect(result.applied).toBe(false);
      expect(Number.isFinite(result.norm)).toBe(false);
      expect(state()).toEqual(before);
      expect(opt.step).toBe(1);
    }
    opt.dispose();
    w.dispose();
  });
});

describe('the RL loop', () => {
  const home = tempHome('retool-rl-');
  const modelDir = join(home.dir, 'sft-model');
  afterAll(() => home.cleanup());

  beforeAll(async () => {
    // A model that learned one code trace (6*7 -> 42): it answers every problem with that code,
    // so problems whose answer is 42 earn +1 and the others -1.
    const model = DecoderModel.init(config, 0);
    const { examples } = buildExamples(
      tokenizer,
      [{ problem: 'What is 6*7?', response: `${code('print(6*7)')}${out('42')}${answer('42')}` }],
      128,
    );
    const optimizer = new AdamW(model.params, OptimizerConfigSchema.parse({ lr: 2e-2, schedule: 'constant', weightDecay: 0 }));
    for (let i = 0; i < 120; i++) trainStep(model, optimizer, padBatch(examples, tokenizer.padId));
    optimizer.dispose();
    await saveModel(modelDir, model, { tokenizer });
    model.dispose();
    const rows = [
      ...['6*7', '7*6', '42*1', '5*7', '6*8', '2*21', '9*9', '40+2'].map((q, i) => ({
        id: `t${i}`,
        problem: `What is ${q}?`,
        answer: String(eval(q)),
        split: 'train',
      })),
      ...['6*7', '3*3', '84/2'].map((q, i) => ({ id: `h${i}`, problem: `What is ${q}?`, answer: String(eval(q)), split: 'test' })),
    ];
    const file = join(home.dir, 'problems.jsonl');
    writeFileSync(file, rows.map((r) => JSON.stringify(r)).join('\n'));
    await withStore(home.dir, (store) => importProblems(store, { file, name: 'mul' }));
  }, 120_000);

  const base = (runId: string, extra: Partial<RlOptions> = {}): RlOptions => ({
    model: modelDir,
    dataset: 'mul',
    out: join(home.dir, `out-${runId}`),
    runId,
    home: home.dir,
    algo: 'ppo',
    steps: 3,
    promptsPerStep: 2,
    samplesPerPrompt: 2,
    maxResponseTokens: 40,
    rolloutBatchSize: 4,
    miniBatchSize: 2,
    epochs: 2,
    lr: 1e-3,
    temperature: 0.5,
    checkpointEvery: 1,
    evalEvery: 2,
    evalLimit: 3,
    ...extra,
  });
  const comparable = (m: RlStepMetrics) => ({ ...m, seconds: undefined, tokensPerSecond: undefined, sandboxWaitShare: undefined });

  describeOnEachBackend('PPO', (backend) => {
    const wholeId = `whole-${backend}`;
    const splitId = `split-${backend}`;
    it('resumed after a stop, PPO follows the uninterrupted run exactly: metrics, rollouts, evaluations, weights', async () => {
      const tensorsBefore = tf.memory().numTensors;
      const whole = await runRl(base(wholeId));
      // Models, optimizers, caches and per-step tensors are all released.
      expect(tf.memory().numTensors).toBe(tensorsBefore);
      expect(whole.steps).toBe(3);
      expect(whole.history.map((m) => m.step)).toEqual([1, 2, 3]);
      expect(whole.evals.map((e) => e.step)).toEqual([0, 2, 3]);

      const stop = new AbortController();
      const first = await runRl(base(splitId), { onStep: (m) => m.step === 2 && stop.abort(), signal: stop.signal });
      expect(first).toMatchObject({ stopped: true, steps: 2, out: null });
      const second = await runRl(base(splitId, { resume: true }));
      expect(second).toMatchObject({ stopped: false, steps: 3, resumedFrom: 2 });

      // The value-clip fraction counts tokens whose new value sits exactly 0.2 from the old one: on
      // some CPUs the resumed critic's float sums put one such token on the other side of the
      // boundary (weights and every other metric stay identical), so it may differ by a token or two.
      const resumed = [...first.history, ...second.history];
      const exact = (m: RlStepMetrics) => ({ ...comparable(m), valueClipFrac: undefined });
      expect(resumed.map(exact)).toEqual(whole.history.map(exact));
      resumed.forEach((m, i) =>
        expect(Math.abs((m.valueClipFrac ?? 0) - (whole.history[i]!.valueClipFrac ?? 0))).toBeLessThanOrEqual(0.01),
      );
      expect([...first.evals, ...second.evals].map((e) => ({ ...e, evaluation: undefined }))).toEqual(
        whole.evals.map((e) => ({ ...e, evaluation: undefined })),
      );
      const weights = (dir: string) => readFileSync(join(dir, 'model.safetensors'));
      expect(weights(join(home.dir, `out-${splitId}`)).equals(weights(join(home.dir, `out-${wholeId}`)))).toBe(true);
      expect(weights(join(home.dir, `out-${wholeId}`)).equals(weights(modelDir))).toBe(false);

      await withStore(home.dir, async (store) => {
        const rollouts = (run: string) =>
          store.query<Record<string, unknown>>(
            'SELECT step, sample_idx, problem_id, response, CAST(turns AS VARCHAR) AS turns, reward, correct, tool_calls FROM rollouts WHERE run_id = $1 ORDER BY step, problem_id, sample_idx',
            [run],
          );
        const a = await rollouts(wholeId);
        expect(a).toHaveLength(3 * 2 * 2);
        // Mixed rewards: the problems whose answer is 42 are right, the others wrong.
        expect(new Set(a.map((r) => Number(r.reward)))).toEqual(new Set([1, -1]));
        expect(await rollouts(splitId)).toEqual(a);
        // The held-out samples are stored like retool eval's, with the interpreter's calls.
        const held = await store.query<{ metrics: string }>(
          'SELECT CAST(metrics AS VARCHAR) AS metrics FROM evaluations WHERE run_id = $1',
          [wholeId],
        );
        expect(held.length).toBeGreaterThan(0);
        const calls = held.flatMap((r) => (JSON.parse(r.metrics) as { toolCalls: { status: string; output: string }[] }).toolCalls);
        expect(calls).toContainEqual({ status: 'ok', output: '42' });
        // Turns carry roles: the interpreter's output is its own turn, with the sandbox's text.
        const turns = JSON.parse(String(a.find((r) => Number(r.reward) === 1 && Number(r.tool_calls) === 1)!.turns)) as {
          role: string;
          text: string;
        }[];
        expect(turns.map((t) => t.role)).toEqual(['model', 'interpreter', 'model']);
        expect(turns[1]!.text).toBe(out('42'));
        expect(await readMetrics(store, splitId, 'rl', 'reward_mean')).toEqual(await readMetrics(store, wholeId, 'rl', 'reward_mean'));
        expect((await readMetrics(store, wholeId, 'rl-eval', 'accuracy')).map((p) => p.step)).toEqual([0, 2, 3]);
        // The paper's Fig. 3 panels at every held-out point (code blocks that ran, whatever their number).
        const passing = await readMetrics(store, wholeId, 'rl-eval', 'passing_code_blocks');
        expect(passing.map((p) => p.step)).toEqual([0, 2, 3]);
        expect(passing.every((p) => Number.isInteger(p.value) && p.value! >= 0)).toBe(true);
      });
    }, 240_000);
  });

  it('a LoRA policy trains its adapter only and resumes from the adapter checkpoint exactly as if never stopped', async () => {
    // The SFT model with a fresh adapter: what a LoRA cold start hands to RL.
    const adapterDir = join(home.dir, 'sft-adapter');
    const { model } = loadModel(modelDir);
    model.attachLora(LoraConfigSchema.parse({ rank: 4, alpha: 8 }), { seed: 2 });
    await saveAdapter(adapterDir, model, modelDir, { tokenizer });
    model.dispose();
    const lora = (runId: string, extra: Partial<RlOptions> = {}) => base(runId, { model: adapterDir, lr: 5e-3, evalEvery: 0, ...extra });
    await runRl(lora('lora-whole'));
    const stop = new AbortController();
    await runRl(lora('lora-split'), { onStep: (m) => m.step === 2 && stop.abort(), signal: stop.signal });
    const second = await runRl(lora('lora-split', { resume: true }));
    expect(second).toMatchObject({ stopped: false, steps: 3, resumedFrom: 2 });
    const out = (runId: string) => join(home.dir, `out-${runId}`);
    const adapter = (dir: string) => readFileSync(join(dir, 'adapter_model.safetensors'));
    // Adapters only: no full weights written, the base named by path and hash, and the resumed
    // run's adapter the uninterrupted run's to the byte.
    for (const dir of [out('lora-whole'), join(home.dir, 'artifacts', 'lora-split', 'rl', 'step-2')]) {
      expect(existsSync(join(dir, 'model.safetensors'))).toBe(false);
      expect(JSON.parse(readFileSync(join(dir, 'retool-base.json'), 'utf8'))).toMatchObject({ path: modelDir });
    }
    expect(adapter(out('lora-split')).equals(adapter(out('lora-whole')))).toBe(true);
    expect(adapter(out('lora-whole')).equals(adapter(adapterDir))).toBe(false);
  }, 240_000);

  it('GRPO drops groups whose samples all scored the same: nothing to learn, weights unchanged', async () => {
    // Near-greedy sampling: every sample of a problem is the same response, so every group is uniform.
    const r = await runRl(base('grpo', { algo: 'grpo', steps: 1, promptsPerStep: 8, temperature: 0.02, evalEvery: 0, checkpointEvery: 0 }));
    expect(r.history[0]).toMatchObject({ kept: 0, pgLoss: null, valueLoss: null });
    expect(r.history[0]!.accuracy).toBeGreaterThan(0);
    const weights = (dir: string) => readFileSync(join(dir, 'model.safetensors'));
    expect(weights(join(home.dir, 'out-grpo')).equals(weights(modelDir))).toBe(true);
  }, 120_000);

  it('refuses to resume with different settings, and GRPO with one sample per problem', async () => {
    await expect(runRl(base('whole-wasm', { resume: true, lr: 5e-3 }))).rejects.toThrow(/lr/);
    await expect(runRl(base('g1', { algo: 'grpo', samplesPerPrompt: 1 }))).rejects.toThrow(/at least 2 samples/);
  });

  it('retool rl runs from the command line and reports bad input with exit 2', async () => {
    const args = [
      'rl',
      '--model',
      modelDir,
      '--dataset',
      'mul',
      '--out',
      join(home.dir, 'cli-out'),
      '--steps',
      '1',
      '--prompts',
      '2',
      '--samples',
      '2',
      '--max-tokens',
      '40',
      '--eval-every',
      '0',
    ];
    const summary = json(await retool([...args, '--algo', 'grpo', '--json'], { home: home.dir }));
    expect(summary).toMatchObject({ algo: 'grpo', tools: true, steps: 1, stopped: false, out: join(home.dir, 'cli-out') });
    expect(summary.history).toHaveLength(1);
    expect(readFileSync(join(home.dir, 'cli-out', 'config.json'), 'utf8')).toContain('qwen2');
    const oneSample = await retool([...args.slice(0, -6), '--samples', '1', '--algo', 'grpo'], { home: home.dir });
    expect(oneSample.exitCode).toBe(2);
    expect(oneSample.stderr).toMatch(/GRPO needs at least 2 samples/);
    const noData = await retool(['rl', '--model', modelDir, '--dataset', 'nope', '--out', join(home.dir, 'x')], { home: home.dir });
    expect(noData.exitCode).toBe(2);
    expect(noData.stderr).toMatch(/nope/);
    const noModel = await retool(['rl', '--model', join(home.dir, 'missing'), '--dataset', 'mul', '--out', join(home.dir, 'x')], {
      home: home.dir,
    });
    expect(noModel.exitCode).toBe(2);
    expect(noModel.stderr).toMatch(/config\.json/);
  }, 120_000);
});
