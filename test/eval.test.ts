import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gradeResponse } from '../domain/grading.js';
import { evaluateModel, sampleFacts, shardRanges } from '../engine/eval/evaluate.js';
import { evalMetrics } from '../engine/eval/metrics.js';
import { DecoderConfigSchema } from '../engine/model/config.js';
import { DecoderModel } from '../engine/model/decoder.js';
import { rollout, type Trajectory } from '../engine/rollout/rollout.js';
import { Sandbox } from '../engine/sandbox/index.js';
import { buildExamples, padBatch } from '../engine/sft/data.js';
import { initBackend } from '../engine/tensor/backend.js';
import { builtinTokenizer } from '../engine/tokenizer/builtin.js';
import { promptText } from '../engine/trace/prompt.js';
import { AdamW, OptimizerConfigSchema } from '../engine/train/optim.js';
import { trainStep } from '../engine/train/step.js';

const tokenizer = builtinTokenizer();
const code = (src: string) => `<code>\n\`\`\`python\n${src}\n\`\`\`\n</code>`;
const out = (text: string) => `\n<interpreter>\n${text}\n</interpreter>\n`;
const answer = (a: string) => `<answer>\\boxed{${a}}</answer>`;
/** Tokens under the built-in tokenizer, counted independently: each tag is one token, every other character one. */
const count = (s: string) => s.replace(/<\/?(?:code|interpreter|answer)>/g, '#').length;

// Five problems, two samples each. `blocks` is whether each code block ran without error.
const CASES = [
  {
    problem: 'p1',
    family: 'a',
    level: 1,
    gold: '5',
    correct: true,
    blocks: [true],
    response: `Add.\n${code('print(2+3)')}${out('5')}${answer('5')}`,
  },
  { problem: 'p1', family: 'a', level: 1, gold: '5', correct: false, blocks: [], response: `Two and three make four.\n${answer('4')}` },
  {
    problem: 'p2',
    family: 'a',
    level: 3,
    gold: '12',
    correct: true,
    blocks: [false, true],
    response: `${code('print(x*4)')}${out("NameError: name 'x' is not defined")}Define x.\n${code('print(3*4)')}${out('12')}${answer('12')}`,
  },
  {
    problem: 'p2',
    family: 'a',
    level: 3,
    gold: '12',
    correct: false,
    blocks: [false],
    response: `Try.\n${code('print(1/0)')}${out('ZeroDivisionError: division by zero')}${answer('7')}`,
  },
  {
    problem: 'p3',
    family: 'b',
    level: 3,
    gold: '9',
    correct: false,
    blocks: [true],
    response: `${code('print(8)')}${out('8')}${answer('8')}`,
  },
  {
    problem: 'p3',
    family: 'b',
    level: 3,
    gold: '9',
    correct: true,
    blocks: [true],
    response: `Square root of 81.\n${code('print(9)')}${out('9')}${answer('9')}`,
  },
  { problem: 'p4', family: 'b', level: 4, gold: '100', correct: true, blocks: [], response: `Ten times ten.\n${answer('100')}` },
  {
    problem: 'p4',
    family: 'b',
    level: 4,
    gold: '100',
    correct: false,
    blocks: [false],
    response: `${code('print(y)')}${out("NameError: name 'y' is not defined")}I give up.`,
  },
  {
    problem: 'p5',
    family: 'b',
    level: 4,
    gold: '3',
    correct: false,
    blocks: [true, true],
    response: `Two steps.\n${code('a=1\nprint(a)')}${out('1')}${code('print(4)')}${out('4')}${answer('4')}`,
  },
  {
    problem: 'p5',
    family: 'b',
    level: 4,
    gold: '3',
    correct: false,
    blocks: [true, false],
    response: `${code('print(2)')}${out('2')}${code('print(z)')}${out("NameError: name 'z' is not defined")}${answer('2')}`,
  },
];

function trajectoryOf(c: (typeof CASES)[number]): Trajectory {
  const tokens = tokenizer.encode(c.response);
  return {
    promptIds: [9],
    tokens,
    roles: tokens.map(() => 'model'),
    logprobs: tokens.map(() => null),
    toolCalls: c.blocks.map((ok) => ({ code: '', status: ok ? 'ok' : 'error', output: '', atToken: 0, ms: 0 })),
    response: c.response,
    stop: 'eos',
  };
}

describe('evaluation metrics on ten hand-written responses', () => {
  it('the grader agrees with the hand-marked correctness', () => {
    for (const c of CASES) expect(gradeResponse(c.response, c.gold).correct).toBe(c.correct);
  });

  it('equal the hand-computed values', () => {
    const m = evalMetrics(
      CASES.map((c) => sampleFacts(trajectoryOf(c), tokenizer, { id: c.problem, family: c.family, level: c.level }, c.correct)),
    );
    // Correct: p1#1, p2#1, p3#2, p4#1 -> 4 of 10; problems with a correct sample: p1..p4 -> 4 of 5.
    expect(m).toMatchObject({ problems: 5, samples: 10, k: 2, avgAtK: 0.4, passAtK: 0.8 });
    // Code in 8 of 10 responses; lines 1+2+1+1+1+1+3+2 = 12 over 8.
    expect(m.codeRatio).toBeCloseTo(0.8, 12);
    expect(m.codeLines).toBeCloseTo(1.5, 12);
    // Last block ran: p1#1, p2#1, p3#1, p3#2, p5#1 of the 8 -> 5/8; among correct ones (p1#1, p2#1, p3#2) 3/3;
    // among incorrect ones (p2#2, p3#1, p4#2, p5#1, p5#2) 2/5.
    expect(m.codePassRate.all).toBeCloseTo(5 / 8, 12);
    expect(m.codePassRate.correct).toBe(1);
    expect(m.codePassRate.incorrect).toBeCloseTo(0.4, 12);
    // Only p2#1 fails then passes: 1 of 8 with code; of the 4 with a failing block (p2#1, p2#2, p4#2, p5#2) 1.
    expect(m.selfCorrectionRate).toBeCloseTo(1 / 8, 12);
    expect(m.recoveryRate).toBeCloseTo(1 / 4, 12);
    // Every block of these responses prints a number or a name: arithmetic, nothing searched or solved.
    const blocks = CASES.flatMap((c) => c.blocks);
    expect([m.codeBlocks, m.passingCodeBlocks]).toEqual([blocks.length, blocks.filter(Boolean).length]);
    expect(m.codePurposes).toEqual({ calculation: blocks.length });
    const lengths = CASES.map((c) => count(c.response));
    expect(m.responseLength).toBeCloseTo(lengths.reduce((a, b) => a + b) / 10, 9);
    const positions = CASES.filter((c) => c.blocks.length > 0).map(
      (c) => count(c.response.slice(0, c.response.indexOf('<code>'))) / count(c.response),
    );
    expect(m.codeInvocationPosition).toBeCloseTo(positions.reduce((a, b) => a + b) / positions.length, 9);
    // p1: 1 of 2, p2: 1 of 2 / p3: 1 of 2 / p4: 1 of 2, p5: 0 of 2.
    expect(m.byLevel).toEqual({
      '1': { problems: 1, samples: 2, k: 2, avgAtK: 0.5, passAtK: 1 },
      '3': { problems: 2, samples: 4, k: 2, avgAtK: 0.5, passAtK: 1 },
      '4': { problems: 2, samples: 4, k: 2, avgAtK: 0.25, passAtK: 0.5 },
    });
    expect(m.byFamily.a).toEqual({ problems: 2, samples: 4, k: 2, avgAtK: 0.5, passAtK: 1 });
    expect(m.byFamily.b!.avgAtK).toBeCloseTo(2 / 6, 12);
    expect(m.byFamily.b!.passAtK).toBeCloseTo(2 / 3, 12);
  });
});

describe('multi-turn rollout with the sandbox in the loop', () => {
  const sandbox = new Sandbox({ poolSize: 2 });
  afterAll(() => sandbox.close());
  const problem = 'Compute 6*7.';
  const response = `${code('print(6*7)')}${out('42')}${answer('42')}`;
  let model: DecoderModel;

  beforeAll(async () => {
    await initBackend();
    // A model that has learned one trace with the interpreter span masked out, as SFT trains it:
    // it never learned to write "42" inside <interpreter>, so any 42 there came from the sandbox.
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
    model = DecoderModel.init(config, 0);
    const { examples } = buildExamples(tokenizer, [{ problem, response }], 128);
    const optimizer = new AdamW(model.params, OptimizerConfigSchema.parse({ lr: 2e-2, schedule: 'constant', weightDecay: 0 }));
    const batch = padBatch(examples, tokenizer.padId);
    for (let i = 0; i < 150; i++) trainStep(model, optimizer, batch);
    optimizer.dispose();
  }, 120_000);

  it('pauses at </code>, appends the real output as interpreter tokens and resumes to the answer', async () => {
    const prompt = tokenizer.encode(promptText(tokenizer, problem));
    const { trajectories, stats } = await rollout(model, tokenizer, sandbox, [prompt, prompt], { tools: true, maxResponseTokens: 100 });
    for (const t of trajectories) {
      expect(t.response).toBe(response);
      expect(t.stop).toBe('eos');
      expect(t.toolCalls).toMatchObject([{ code: 'print(6*7)', status: 'ok', output: '42' }]);
      const interpreter = t.tokens.filter((_, i) => t.roles[i] === 'interpreter');
      expect(tokenizer.decode(interpreter)).toBe(out('42'));
      expect(t.logprobs.filter((_, i) => t.roles[i] === 'interpreter').every((l) => l === null)).toBe(true);
      expect(t.logprobs.filter((_, i) => t.roles[i] === 'model').every((l) => typeof l === 'number' && l <= 0)).toBe(true);
    }
    expect(stats).toMatchObject({ sequences: 2, toolCalls: 2 });
  });

  it("with tools off nothing runs and every token is the model's own", async () => {
    const prompt = tokenizer.encode(promptText(tokenizer, problem));
    const { trajectories, stats } = await rollout(model, tokenizer, sandbox, [prompt], { tools: false, maxResponseTokens: 100 });
    expect(stats.toolCalls).toBe(0);
    expect(trajectories[0]!.toolCalls).toEqual([]);
    expect(trajectories[0]!.roles.every((r) => r === 'model')).toBe(true);
    // It never learned the interpreter's text, so it cannot reproduce the output by itself.
    expect(trajectories[0]!.response).not.toBe(response);
  });

  it('cut into shards at batch boundaries, an evaluation decodes the same samples as in one run, whatever the number of shards', async () => {
    const problems = ['Compute 6*7.', 'Compute 2+3.', 'Compute 9-4.', 'Compute 8*8.', 'Compute 1+1.'].map((text, i) => ({
      id: `q${i}`,
      problem: text,
      answer: '42',
      family: null,
      level: null,
      split: 'test' as const,
      extra: null,
    }));
    const options = { tools: true, maxResponseTokens: 60, temperature: 1.3, samples: 3, batchSize: 4, seed: 11 };
    const whole = await evaluateModel(model, tokenizer, sandbox, problems, options);
    const seen = (r: typeof whole) => r.samples.map((s) => [s.problem.id, s.sampleIdx, s.trajectory.response]);
    // Sampling at temperature 1.3 draws different responses: the check below could fail.
    expect(new Set(whole.samples.map((s) => s.trajectory.response)).size).toBeGreaterThan(3);
    expect(whole.samples.some((s) => s.trajectory.toolCalls.length > 0)).toBe(true);
    for (const shards of [2, 3, 5]) {
      const ranges = shardRanges(15, 4, shards);
      expect(
        ranges
          .flatMap((r) => [r.from, r.to])
          .filter((x) => x !== 15)
          .every((x) => x % 4 === 0),
      ).toBe(true);
      expect(ranges.reduce((n, r) => n + r.to - r.from, 0)).toBe(15);
      const parts = [];
      for (const range of ranges) parts.push(...seen(await evaluateModel(model, tokenizer, sandbox, problems, options, undefined, range)));
      expect(parts).toEqual(seen(whole));
    }
    expect(shardRanges(15, 4, 9)).toHaveLength(4);
    await expect(evaluateModel(model, tokenizer, sandbox, problems, options, undefined, { from: 2, to: 8 })).rejects.toThrow(
      'a shard starts at sequence 2, not a multiple of the rollout batch (4)',
    );
  });

  it('stops a sequence at the tool-call limit', async () => {
    const prompt = tokenizer.encode(promptText(tokenizer, problem));
    const { trajectories } = await rollout(model, tokenizer, sandbox, [prompt], { tools: true, maxToolCalls: 0, maxResponseTokens: 100 });
    expect(trajectories[0]!.stop).toBe('tool_limit');
    expect(trajectories[0]!.response.endsWith('</code>')).toBe(true);
  });
});
