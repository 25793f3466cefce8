import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BadInputError } from '../domain/errors.js';
import { loadConfig } from '../cli/commands/run.js';
import { PRESETS, resolveConfig, RetoolConfigSchema } from '../workflows/config.js';
import { parseConfig } from '../workflows/pipeline.js';
import { tempHome } from './helpers/cli.js';

describe('the run configuration', () => {
  it('every preset is a valid config; paper trains both arms, quick and default one', () => {
    for (const name of Object.keys(PRESETS) as (keyof typeof PRESETS)[]) expect(() => resolveConfig(name)).not.toThrow();
    expect(resolveConfig('paper').arms).toEqual(['code', 'text']);
    expect(resolveConfig('default').arms).toEqual(['code']);
    expect(resolveConfig('quick').rl.steps).toBeLessThan(resolveConfig('default').rl.steps);
  });

  it("the paper preset is the paper's recipe; its earlier terse-teacher GRPO form stays one config file away", () => {
    const paper = resolveConfig('paper');
    expect(paper.teacher).toEqual({ kind: 'builtin', style: 'paper' });
    expect(paper.rl).toMatchObject({ algo: 'ppo', klCoef: 0 });
    expect(paper.model).toMatchObject({ preset: 'tiny', positions: 512 });
    expect(paper.eval).toMatchObject({ levels: [3, 4], benchmarks: ['held-out-sampled'], benchmark: { samples: 4, temperature: 0.6 } });
    // The README's earlier results (measured before 2026-11-30) came from this configuration.
    const earlier = loadConfig('paper', 'docs/results/paper-terse-config.json');
    expect(earlier.teacher).toEqual({ kind: 'builtin', style: 'terse' });
    expect(earlier.model).toEqual({ preset: 'tiny', seed: 0, positions: 256 });
    expect(earlier.rl).toMatchObject({ algo: 'grpo', lr: 3e-5, steps: 80, promptsPerStep: 16, samplesPerPrompt: 8 });
    expect(earlier.sft.steps).toBe(8000);
    expect(earlier.budget.maxResponseTokens).toBe(192);
    // The first run of the paper's recipe (2026-12-08): 10,000 SFT steps, greedy evaluations only.
    const longerSft = loadConfig('paper', 'docs/results/paper-sft10k-config.json');
    expect(longerSft).toEqual({ ...paper, sft: { ...paper.sft, steps: 10_000 }, eval: { ...paper.eval, benchmarks: [] } });
  });

  it('a section of the overrides is merged key by key; a data section of another source replaces', () => {
    const c = resolveConfig('default', { sft: { steps: 10 }, data: { source: 'stored', name: 'aime' } });
    expect(c.sft).toEqual({ ...resolveConfig('default').sft, steps: 10 });
    expect(c.data).toEqual({ source: 'stored', name: 'aime' });
    expect(resolveConfig('default', { data: { count: 50 } }).data).toEqual({ source: 'synth', name: 'world', count: 50, seed: 7 });
    // Any section of another kind replaces the preset's rather than mixing with it.
    expect(resolveConfig('real', { model: { preset: 'small' } }).model).toEqual({ preset: 'small', seed: 0 });
    expect(resolveConfig('paper', { model: { from: 'smollm2-135m-instruct' } }).model).toEqual({ from: 'smollm2-135m-instruct' });
    expect(resolveConfig('paper', { model: { seed: 3 } }).model).toEqual({ ...resolveConfig('paper').model, seed: 3 });
    expect(resolveConfig('real', { teacher: { kind: 'stored', code: 'a', text: 'b' } }).teacher).toEqual({
      kind: 'stored',
      code: 'a',
      text: 'b',
    });
    expect(resolveConfig('real', { adapter: { kind: 'full' } }).adapter).toEqual({ kind: 'full' });
  });

  it('an empty config gets defaults that work', () => {
    const c = RetoolConfigSchema.parse({});
    expect(c).toMatchObject({ arms: ['code'], arm: 'code', startFrom: 'scratch', heartbeatTimeout: '45 seconds' });
  });

  it('refuses unknown keys and bad values, naming where', () => {
    expect(() => resolveConfig('quick', { sft: { stepz: 3 } })).toThrow(/stepz/);
    const err = (() => {
      try {
        parseConfig({ preset: 'quick', rl: { steps: 0 }, heartbeatTimeout: 'soon' });
      } catch (e) {
        return e as Error;
      }
      return null;
    })();
    expect(err?.message).toMatch(/bad config: .*rl\.steps/);
    expect(err?.message).toContain('heartbeatTimeout');
    // Non-retryable: a workflow started from the UI with a bad config fails once.
    expect((err as unknown as { nonRetryable: boolean }).nonRetryable).toBe(true);
  });

  it("the base model is a built-in preset or a pretrained one; the adapter is full or LoRA with its defaults; the budget replaces the stages' own", () => {
    expect(resolveConfig('quick').model).toEqual({ preset: 'tiny', seed: 0 });
    expect(resolveConfig('quick', { model: { from: 'smollm2-135m-instruct' } }).model).toEqual({ from: 'smollm2-135m-instruct' });
    expect(() => resolveConfig('quick', { model: { from: '' } })).toThrow(/model/);
    expect(() => resolveConfig('quick', { model: { from: 'x', preset: 'tiny' } })).toThrow(/model/);
    expect(resolveConfig('quick').adapter).toEqual({ kind: 'full' });
    expect(resolveConfig('quick', { adapter: { kind: 'lora', rank: 4 } }).adapter).toEqual({
      kind: 'lora',
      rank: 4,
      alpha: 32,
      dropout: 0,
      targetModules: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'],
    });
    expect(() => resolveConfig('quick', { adapter: { kind: 'lora', rank: 0 } })).toThrow(/rank/);
    expect(() => resolveConfig('quick', { adapter: { kind: 'qlora' } })).toThrow(/adapter/);
    // One place for the interpreter budget: the stages' sections refuse it.
    expect(() => resolveConfig('quick', { rl: { maxResponseTokens: 50 } })).toThrow(/maxResponseTokens/);
    expect(() => resolveConfig('quick', { sft: { loraRank: 4 } })).toThrow(/loraRank/);
    expect(resolveConfig('quick', { budget: { contextTokens: 2048 } }).budget).toMatchObject({
      contextTokens: 2048,
      maxResponseTokens: 96,
    });
  });

  it('the teacher is the built-in one (terse by default) or an OpenAI-compatible API whose key is named, never given', () => {
    expect(resolveConfig('quick').teacher).toEqual({ kind: 'builtin', style: 'terse' });
    const openai = { kind: 'openai', baseUrl: 'http://127.0.0.1:8000/v1', model: 'm', apiKeyEnv: 'TEACHER_KEY' };
    expect(resolveConfig('quick', { teacher: openai }).teacher).toMatchObject(openai);
    expect(() => resolveConfig('quick', { teacher: { ...openai, apiKey: 'sk-1' } })).toThrow(/apiKey/);
    expect(() => resolveConfig('quick', { teacher: { ...openai, baseUrl: 'localhost:8000' } })).toThrow(/baseUrl/);
    expect(() => resolveConfig('quick', { teacher: { ...openai, apiKeyEnv: 'TEACHER KEY' } })).toThrow(/apiKeyEnv/);
  });

  it('a stored-traces teacher names a dataset for every arm the run trains', () => {
    const stored = { kind: 'stored', code: 'retool-sft@2' };
    expect(resolveConfig('quick', { teacher: stored }).teacher).toEqual(stored);
    expect(() => parseConfig({ preset: 'quick', arms: ['code', 'text'], teacher: stored })).toThrow(
      /^bad config: teacher\.text: the text arm needs a stored trace dataset of its own/,
    );
    expect(resolveConfig('quick', { arms: ['code', 'text'], teacher: { ...stored, text: 'words' } }).teacher).toMatchObject({
      text: 'words',
    });
    expect(() => parseConfig({ preset: 'quick', teacher: { kind: 'stored', code: '' } })).toThrow(/^bad config: teacher\.code/);
  });

  it('a trigger from the UI may give just a preset name', () => {
    expect(parseConfig({ preset: 'quick' })).toEqual(resolveConfig('quick'));
  });

  it('loadConfig: a file laid over a preset, with readable errors for a missing file, bad JSON, an unknown preset', () => {
    const home = tempHome('retool-config-');
    try {
      const file = join(home.dir, 'c.json');
      writeFileSync(file, JSON.stringify({ preset: 'quick', rl: { steps: 3 } }));
      expect(loadConfig(undefined, file)).toMatchObject({ preset: 'quick', rl: { steps: 3, evalEvery: PRESETS.quick.rl.evalEvery } });
      expect(loadConfig('default', file)).toMatchObject({ preset: 'default', rl: { steps: 3, levels: PRESETS.default.rl.levels } });
      expect(() => loadConfig(undefined, join(home.dir, 'none.json'))).toThrow(BadInputError);
      writeFileSync(file, '{ "rl": ');
      expect(() => loadConfig(undefined, file)).toThrow(/not valid JSON/);
      expect(() => loadConfig('huge', undefined)).toThrow(/unknown preset "huge"/);
    } finally {
      home.cleanup();
    }
  });
});
