import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { json, retool, ROOT, tempHome } from './helpers/cli.js';

describe('retool synth, sft and eval from the command line', () => {
  const home = tempHome('retool-stages-');
  const model = join(home.dir, 'tiny');
  beforeAll(async () => {
    json(await retool(['data', 'synth', '--name', 'world', '--count', '240', '--seed', '5', '--json'], { home: home.dir }));
    json(await retool(['model', 'init', '--out', model, '--json'], { home: home.dir }));
  }, 120_000);
  afterAll(() => home.cleanup());

  it('synth prints kept and rejected counts by reason, for code and text traces', async () => {
    const code = json(await retool(['synth', '--dataset', 'world', '--out', 'world-code', '--json'], { home: home.dir }));
    expect(code).toMatchObject({ dataset: 'world-code@1', source: 'world@1:train', mode: 'code', teacher: 'builtin' });
    expect(code.kept + Object.values<number>(code.rejectedByReason).reduce((a, b) => a + b, 0)).toBe(code.problems);
    const text = json(await retool(['synth', '--dataset', 'world', '--out', 'world-text', '--mode', 'text', '--json'], { home: home.dir }));
    expect(text.mode).toBe('text');
    const shown = json(await retool(['data', 'show', 'world-code', '--limit', '3', '--json'], { home: home.dir }));
    expect(shown.dataset.kind).toBe('traces');
    expect(shown.rows).toHaveLength(3);
  }, 120_000);

  it('sft stops on SIGINT with a checkpoint and --resume finishes the run', async () => {
    const args = [
      'sft',
      '--dataset',
      'world-code',
      '--model',
      model,
      '--out',
      join(home.dir, 'sft'),
      '--steps',
      '120',
      '--batch-size',
      '4',
      '--checkpoint-every',
      '1',
      '--run-id',
      'r1',
      '--json',
    ];
    const child = execa('node', [join(ROOT, 'bin', 'retool.js'), ...args], { cwd: ROOT, env: { RETOOL_HOME: home.dir }, reject: false });
    const first = join(home.dir, 'artifacts', 'r1', 'sft', 'step-2');
    for (let i = 0; i < 600 && !existsSync(first); i++) await new Promise((r) => setTimeout(r, 100));
    child.kill('SIGINT');
    const stopped = await child;
    expect(stopped.exitCode).toBe(130);
    const partial = JSON.parse(String(stopped.stdout));
    expect(partial).toMatchObject({ runId: 'r1', stopped: true, out: null });
    expect(partial.steps).toBeGreaterThanOrEqual(2);
    expect(existsSync(join(home.dir, 'sft'))).toBe(false);

    const wrong = await retool([...args.slice(0, 8), '100', ...args.slice(9), '--resume'], { home: home.dir });
    expect(wrong.exitCode).toBe(2);
    expect(String(wrong.stderr)).toContain('steps 120, not 100');

    // Finish quickly: the resumed run only has to reach the step count it was started with.
    const resumed = json(await retool([...args, '--resume'], { home: home.dir }));
    expect(resumed).toMatchObject({ runId: 'r1', stopped: false, steps: 120, resumedFrom: partial.steps });
    expect(existsSync(join(home.dir, 'sft', 'model.safetensors'))).toBe(true);
  }, 300_000);

  it('eval reports accuracy and behaviour metrics, and stores readable samples', async () => {
    const summary = json(
      await retool(
        [
          'eval',
          '--model',
          join(home.dir, 'sft'),
          '--dataset',
          'world',
          '--limit',
          '6',
          '--samples',
          '2',
          '--temperature',
          '1',
          '--max-tokens',
          '48',
          '--name',
          'first-look',
          '--json',
        ],
        { home: home.dir },
      ),
    );
    expect(summary).toMatchObject({ evaluation: 'first-look@1', dataset: 'world@1:test', tools: true });
    expect(summary.metrics).toMatchObject({ problems: 6, samples: 12, k: 2 });
    for (const key of [
      'avgAtK',
      'passAtK',
      'responseLength',
      'codeRatio',
      'codeLines',
      'codePassRate',
      'codeInvocationPosition',
      'selfCorrectionRate',
      'byFamily',
      'byLevel',
    ])
      expect(summary.metrics).toHaveProperty(key);
    expect(summary.metrics.passAtK).toBeGreaterThanOrEqual(summary.metrics.avgAtK);
    const shown = json(await retool(['data', 'show', 'first-look', '--limit', '20', '--json'], { home: home.dir }));
    expect(shown.dataset).toMatchObject({ kind: 'evaluations', rowCount: 12 });
    expect(shown.rows).toHaveLength(12);
    expect(shown.rows.filter((r: { correct: boolean }) => r.correct).length / 12).toBeCloseTo(summary.metrics.avgAtK, 9);
  }, 120_000);

  it('bad input: a problems dataset given as traces, an unknown dataset', async () => {
    const sft = await retool(['sft', '--dataset', 'world', '--model', model, '--out', join(home.dir, 'x'), '--json'], { home: home.dir });
    expect(sft.exitCode).toBe(2);
    expect(String(sft.stderr)).toContain('holds problems, not traces');
    const evaluation = await retool(['eval', '--model', model, '--dataset', 'nowhere', '--json'], { home: home.dir });
    expect(evaluation.exitCode).toBe(2);
    expect(String(evaluation.stderr)).toMatch(/nowhere/);
    expect(existsSync(join(home.dir, 'x'))).toBe(false);
  }, 60_000);
});
