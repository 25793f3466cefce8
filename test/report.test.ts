import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import { mcnemar } from '../engine/eval/metrics.js';
import { renderPlots, writeReport, type ReportArm, type ReportData, type ReportEvaluation } from '../engine/report/index.js';

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

const retool: ReportArm = {
  name: 'ReTool (code)',
  tools: true,
  runId: 'run-code',
  sftAccuracy: 0.4,
  finalAccuracy: 0.557,
  byLevel: { '1': 0.9, '2': 0.625, '3': 0.5, '4': 0.125 },
  rlSteps: 20,
  accuracyCurve: [
    { step: 0, accuracy: 0.4 },
    { step: 10, accuracy: 0.5 },
    { step: 20, accuracy: 0.557 },
  ],
  evalBehaviour: [
    { step: 0, values: { response_length: 900, code_ratio: 0.6, code_invocation_position: 0.5, code_pass_rate: 0.7 } },
    { step: 20, values: { response_length: 700, code_ratio: 0.9, code_invocation_position: 0.3, code_pass_rate: 0.9 } },
  ],
  trainBehaviour: [
    { step: 1, values: { reward_mean: -0.2, accuracy: 0.4, tool_calls: 1.5, kl: 0.01 } },
    { step: 2, values: { reward_mean: 0.1, accuracy: 0.55, tool_calls: 2 } },
  ],
};

const textOnly: ReportArm = {
  name: 'text-only',
  tools: false,
  runId: 'run-text',
  sftAccuracy: 0.35,
  finalAccuracy: 10 / 30,
  byLevel: { '1': 0.75, '2': 0.25 },
  rlSteps: 20,
  accuracyCurve: [
    { step: 0, accuracy: 0.35 },
    { step: 20, accuracy: 10 / 30 },
  ],
  evalBehaviour: [{ step: 0, values: { response_length: 1200 } }],
  trainBehaviour: [],
};

const heldOut = (model: ReportEvaluation['model'], avgAtK: number, hard: [number, number]): ReportEvaluation => ({
  arm: 'ReTool (code)',
  model,
  set: 'held-out',
  evaluation: `run-code-${model}-eval@1`,
  tools: true,
  k: 1,
  temperature: 0,
  problems: 100,
  avgAtK,
  passAtK: avgAtK,
  byLevel: { '1': { avgAtK: 1, problems: 60 }, '3': { avgAtK: hard[0], problems: 30 }, '4': { avgAtK: hard[1], problems: 10 } },
  responseLength: 120.4,
  codeRatio: model === 'base' ? 0.05 : 1,
  codeInvocationPosition: model === 'base' ? null : 0.25,
  codePassRate: 0.9,
  codeLines: model === 'final' ? 1.5 : 2.25,
  passingCodeBlocks: model === 'final' ? 95 : 88,
  selfCorrectionRate: model === 'final' ? 0.04 : null,
  codePurposes: {
    base: { calculation: 5 },
    sft: { calculation: 60, enumeration: 30, verification: 10 },
    final: { enumeration: 50, calculation: 25, 'equation-solving': 25 },
  }[model],
});

const data: ReportData = {
  title: 'ReTool vs text-only',
  runId: 'run-1',
  createdAt: '2025-01-02T03:04:05.000Z',
  status: 'completed',
  preset: 'tiny',
  config: { rl: { steps: 20, lr: 1e-6 }, note: '<b>not bold</b>' },
  arms: [retool, textOnly],
  evaluations: [
    heldOut('base', 0.02, [0, 0]),
    heldOut('sft', 0.4, [0.3, 0.1]),
    heldOut('final', 0.557, [0.5, 0.125]),
    { ...heldOut('final', 0.0125, [0, 0]), set: 'aime24', problems: 30, k: 4, temperature: 0.6, passAtK: 1 / 30, byLevel: {} },
  ],
  rlVsSft: [{ arm: 'ReTool (code)', set: 'held-out', problems: 100, gained: 12, lost: 3 }],
  lineage: [
    { kind: 'dataset', name: 'dapo-math', detail: '12000 rows', from: [] },
    { kind: 'checkpoint', name: 'sft-final', detail: 'step 40', from: ['dapo-math', 'coldstart-traces'] },
  ],
  samples: [
    {
      arm: 'ReTool (code)',
      problemId: 'p1',
      problem: 'Is 1 < 2?',
      expected: '1',
      answer: '1',
      correct: true,
      turns: [
        { role: 'prompt', text: 'Is 1 < 2? Answer 1 for yes.' },
        { role: 'model', text: 'Let me check.\n<code>```python\nprint(1<2)\n```</code>' },
        { role: 'interpreter', text: '<interpreter>True</interpreter>' },
        { role: 'model', text: 'So the answer is \\boxed{1}.' },
      ],
    },
    {
      arm: 'text-only',
      problemId: 'p2',
      problem: 'Evil <script>alert(1)</script> problem',
      expected: '3',
      answer: null,
      correct: false,
      turns: [{ role: 'model', text: 'I give up & "quit".' }],
    },
  ],
  stageSeconds: { sft: 125, rl: 4000 },
  sandbox: ['unshare'],
  backends: ['node (TensorFlow 2.12.1, cpu, 2 threads)'],
};

const dir = mkdtempSync(join(tmpdir(), 'retool-report-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('writeReport', () => {
  it('writes the page and each plot as SVG and PNG', async () => {
    const out = await writeReport(data, join(dir, 'nested', 'report.html'));
    expect(out.html).toBe(join(dir, 'nested', 'report.html'));
    expect(out.svgs.map((p) => basename(p))).toEqual(['report-accuracy.svg', 'report-behaviour.svg', 'report-training.svg']);
    expect(out.pngs.map((p) => basename(p))).toEqual(['report-accuracy.png', 'report-behaviour.png', 'report-training.png']);
    for (const p of [out.html, ...out.svgs, ...out.pngs]) expect(existsSync(p)).toBe(true);

    for (const p of out.pngs) {
      const png = readFileSync(p);
      expect([...png.subarray(0, 8)]).toEqual(PNG_SIGNATURE);
      expect(statSync(p).size).toBeGreaterThan(5000);
    }
    const accuracySvg = readFileSync(out.svgs[0]!, 'utf8');
    expect(accuracySvg).toContain('>ReTool (code)<');
    expect(accuracySvg).toContain('>text-only<');
    // text-only has no training rows, so only the ReTool arm is in that legend.
    // The behaviour panels are the paper's Fig. 3 ones that have points.
    const behaviourSvg = readFileSync(out.svgs[1]!, 'utf8');
    for (const panel of ['Response length (tokens)', 'Code ratio', 'Code pass rate', 'Code invocation position'])
      expect(behaviourSvg).toContain(`>${panel}<`);
    expect(behaviourSvg).not.toContain('>Self-correction rate<');
    const trainingSvg = readFileSync(out.svgs[2]!, 'utf8');
    expect(trainingSvg).toContain('>ReTool (code)<');
    expect(trainingSvg).not.toContain('>text-only<');

    const html = readFileSync(out.html, 'utf8');
    // Self-contained: no scripts, nothing fetched; the only URLs are SVG namespace names.
    expect(html).not.toMatch(/<script/i);
    expect(html).not.toMatch(/(src|href)\s*=\s*["']?\s*(https?:)?\/\//i);
    expect(html).not.toMatch(/url\(\s*["']?(https?:)?\/\//i);
    expect(html).not.toMatch(/@import/i);
    const urls = new Set(html.match(/https?:\/\/[^\s"'<>)]*/g) ?? []);
    expect([...urls].sort()).toEqual(['http://www.w3.org/1999/xlink', 'http://www.w3.org/2000/svg']);

    expect(html).toContain('Evil &lt;script&gt;alert(1)&lt;/script&gt; problem');
    expect(html).toContain('I give up &amp; &quot;quit&quot;.');
    expect(html).toContain('&lt;b&gt;not bold&lt;/b&gt;');
    expect(html).toContain('<pre class="code"><code>print(1&lt;2)</code></pre>');
    expect(html).toContain('<pre class="interpreter">True</pre>');
    expect(html).toContain('class="badge ok"');
    expect(html).toContain('class="badge bad"');

    for (const id of ['summary', 'plots', 'lineage', 'samples', 'config']) expect(html).toContain(`id="${id}"`);
    expect(html).toContain('code sandbox unshare');
    expect(html).toContain('computed on node (TensorFlow 2.12.1, cpu, 2 threads)');
    for (const name of ['accuracy', 'behaviour', 'training']) expect(html).toContain(`<figure id="plot-${name}">`);

    // Summary rows, percentages worked out by hand from the arms above; '—' for missing levels.
    const cells = (arm: string) => {
      const row = html.match(new RegExp(`<tr><td>${arm.replace(/[()]/g, '\\$&')}</td>(.*?)</tr>`))?.[1] ?? '';
      return [...row.matchAll(/<td[^>]*>(.*?)<\/td>/g)].map((m) => m[1]);
    };
    expect(cells('ReTool (code)')).toEqual(['40.0%', '55.7%', '90.0%', '62.5%', '50.0%', '12.5%', '20']);
    expect(cells('text-only')).toEqual(['35.0%', '33.3%', '75.0%', '25.0%', '—', '—', '20']);

    // The evaluations table, also as Markdown beside the page. Levels 3-4 of the final model:
    // (0.5*30 + 0.125*10) / 40 = 40.6%. RL vs SFT: z = (12-3)/sqrt(15) = 2.32; exact
    // p = 2 * (C(15,0)+C(15,1)+C(15,2)+C(15,3)) / 2^15 = 2 * 576 / 32768 = 0.0352.
    expect(html).toContain('id="evaluations"');
    const md = readFileSync(out.markdown, 'utf8');
    expect(out.markdown).toBe(join(dir, 'nested', 'report.md'));
    expect(md).toContain(
      '| ReTool (code) | base (zero-shot) | held-out (100) | on | 1 (greedy) | 2.0% | 2.0% | 0.0% | 120 | 5.0% | — | 90.0% |',
    );
    expect(md).toContain(
      '| ReTool (code) | after RL (20 steps) | held-out (100) | on | 1 (greedy) | 55.7% | 55.7% | 40.6% | 120 | 100.0% | 25.0% | 90.0% |',
    );
    expect(md).toContain('| ReTool (code) | after RL (20 steps) | aime24 (30) | on | 4 (T 0.6) | 1.3% | 3.3% | — |');
    expect(md).toContain('| ReTool (code) | held-out | 100 | 12 | 3 | 2.32 | 0.0352 |');
    // The paper's behaviour measures, SFT beside the model after RL; the base model has no row.
    expect(md).toContain('| ReTool (code) | cold-start SFT | held-out | 120 | 100.0% | 2.25 | 88 | 90.0% | 25.0% | — |');
    expect(md).toContain('| ReTool (code) | after RL | held-out | 120 | 100.0% | 1.50 | 95 | 90.0% | 25.0% | 4.0% |');
    expect(md).not.toMatch(/\| base \(zero-shot\) \| held-out \| 120 \|/);
    expect(html).toContain('<h3>Behaviour</h3>');
    // What the code is for, as shares of each model's blocks (columns: the purposes any model used).
    expect(md).toContain('| Arm | Model | Set | Code blocks | calculation | verification | enumeration | equation-solving |');
    expect(md).toContain('| ReTool (code) | cold-start SFT | held-out | 100 | 60.0% | 10.0% | 30.0% | 0.0% |');
    expect(md).toContain('| ReTool (code) | after RL | held-out | 100 | 25.0% | 0.0% | 50.0% | 25.0% |');
    expect(html).toContain('<h3>What the code is for</h3>');
  });

  it("McNemar's test: exact two-sided p of the discordant split, z by the normal approximation", () => {
    expect(mcnemar(0, 0)).toEqual({ z: null, p: 1 });
    // All 10 discordant pairs one way: p = 2 / 2^10.
    expect(mcnemar(10, 0).p).toBeCloseTo(2 / 1024, 12);
    expect(mcnemar(0, 10).z).toBeCloseTo(-Math.sqrt(10), 12);
    // An even split is no evidence at all.
    expect(mcnemar(7, 7)).toMatchObject({ z: 0, p: 1 });
    // 54 gained, 22 lost (docs/results.md): z = 32 / sqrt(76) = 3.67.
    expect(mcnemar(54, 22).z).toBeCloseTo(3.6707, 3);
  });

  it('leaves out plots without data and never throws on empty arms', async () => {
    const empty = (a: ReportArm): ReportArm => ({ ...a, accuracyCurve: [], evalBehaviour: [], trainBehaviour: [] });
    const noRl: ReportData = { ...data, arms: [empty(retool), { ...empty(textOnly), sftAccuracy: null, finalAccuracy: null }] };
    expect(await renderPlots(noRl)).toEqual([]);

    const onlyTraining: ReportData = { ...noRl, arms: [{ ...empty(retool), trainBehaviour: retool.trainBehaviour }] };
    expect((await renderPlots(onlyTraining)).map((p) => p.name)).toEqual(['training']);

    const out = await writeReport({ ...noRl, samples: [], lineage: [], stageSeconds: {}, config: undefined }, join(dir, 'empty.html'));
    expect(out.svgs).toEqual([]);
    expect(out.pngs).toEqual([]);
    expect(readFileSync(out.html, 'utf8')).toContain('No curves recorded yet.');
  });
});
