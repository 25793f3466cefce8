// What a person sees: the experiment (both arms) in the Temporal web UI, its HTML report in a
// real headless Chromium (Debian's, driven by playwright-core), and the CLI around them.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { quietTemporalRuntime } from '../cli/local-temporal.js';
import { startRetool } from '../cli/run-pipeline.js';
import { startWorkers, type RunningWorkers } from '../worker/worker.js';
import { resolveConfig } from '../workflows/config.js';
import type { ExperimentResult } from '../workflows/experiment.js';
import { json, retool, tempHome } from './helpers/cli.js';

const address = inject('temporalAddress');
const uiUrl = inject('temporalUiUrl');
const taskQueue = 'retool-page-test';
const CHROMIUM = process.env.RETOOL_CHROMIUM ?? '/usr/bin/chromium';

describe('the experiment in the Temporal UI and its report, in headless Chromium', () => {
  const home = tempHome('retool-page-');
  let connection: Connection;
  let client: Client;
  let workers: RunningWorkers;
  let browser: Browser;
  let experimentId: string;
  let result: ExperimentResult;

  beforeAll(async () => {
    if (!uiUrl) throw new Error("the page test needs the dev server's web UI: unset TEMPORAL_ADDRESS, or set TEMPORAL_UI_URL");
    if (!existsSync(CHROMIUM))
      throw new Error(`no Chromium at ${CHROMIUM}: apt-get install chromium (.ci/run does), or set RETOOL_CHROMIUM`);
    quietTemporalRuntime();
    connection = await Connection.connect({ address });
    client = new Client({ connection });
    workers = await startWorkers({ target: { address, namespace: 'default', uiUrl }, home: home.dir, taskQueues: [taskQueue] });
    const config = resolveConfig('quick', {
      preset: 'page-test',
      arms: ['code', 'text'],
      data: { source: 'synth', name: 'page', count: 300, seed: 8 },
      traces: { limit: 60, seed: 0 },
      sft: { steps: 12, checkpointEvery: 6 },
      eval: { limit: 8 },
      rl: { steps: 2, evalEvery: 1, evalLimit: 4, checkpointEvery: 1, promptsPerStep: 2, samplesPerPrompt: 2 },
      budget: { maxResponseTokens: 48 },
    });
    const started = await startRetool(client, config, { taskQueue, workflowId: `test-experiment-${Date.now()}` });
    experimentId = started.workflowId;
    result = (await started.handle.result()) as ExperimentResult;
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  }, 300_000);
  afterAll(async () => {
    await browser?.close();
    await workers?.shutdown();
    await connection?.close();
    home.cleanup();
  });

  it('runs both arms on one problem set and compares them', () => {
    expect(result.arms.map((a) => a.arm)).toEqual(['code', 'text']);
    expect(new Set(result.arms.map((a) => a.dataset))).toEqual(new Set([result.dataset]));
    expect(result.arms.map((a) => a.rlEvals.map((e) => e.step))).toEqual([
      [0, 1, 2],
      [0, 1, 2],
    ]);
    expect(result.arms.map((a) => a.traces)).toEqual([`${experimentId}-code-code@1`, `${experimentId}-text-text@1`]);
  });

  it('the Temporal UI shows the experiment, its arms and their stages', async () => {
    const page = await browser.newPage();
    try {
      await page.goto(`${uiUrl}/namespaces/default/workflows/${experimentId}`);
      await page.getByText('retoolExperiment').first().waitFor({ timeout: 30_000 });
      await expect(page.getByText('Completed', { exact: false }).first().isVisible()).resolves.toBe(true);

      // The list view finds runs by the custom search attributes.
      await page.goto(`${uiUrl}/namespaces/default/workflows?query=${encodeURIComponent('RetoolPreset="page-test"')}`);
      for (const id of [experimentId, `${experimentId}-code`, `${experimentId}-text`])
        await page.getByText(id, { exact: true }).first().waitFor({ timeout: 30_000 });

      // An arm's history (compact view) names its stages, with the summary of what each does.
      await page.goto(`${uiUrl}/namespaces/default/workflows/${experimentId}-code`);
      await page.getByText('retoolPipeline').first().waitFor({ timeout: 30_000 });
      await page.getByText('Event History').first().click();
      await page.getByText('Compact', { exact: true }).first().click();
      for (const stage of ['prepareProblems', 'synthTraces', 'sft', 'evaluate', 'report', 'retoolRl'])
        await page.getByText(stage, { exact: true }).first().waitFor({ timeout: 30_000 });
      for (const summary of [
        `SFT on ${experimentId}-code-code@1: 12 steps of 8`,
        'held-out evaluation of the final model (tools on)',
        'RL (grpo) of the code arm: 2 steps in rounds of 1',
      ]) {
        await page.getByText(summary, { exact: true }).first().waitFor({ timeout: 30_000 });
      }
    } finally {
      await page.close();
    }
  }, 120_000);

  it('the HTML report shows both arms, the plots and sample trajectories, and loads nothing from outside', async () => {
    const page = await browser.newPage();
    const requests: string[] = [];
    page.on('request', (r) => requests.push(r.url()));
    try {
      await page.goto(`file://${result.report}`);
      await expect(page.locator('h1').innerText()).resolves.toContain(experimentId);
      const summary = await page.locator('#summary ~ table, #summary + * table, section:has(#summary) table').first().innerText();
      expect(summary).toContain('ReTool (code)');
      expect(summary).toContain('text-only');
      const accuracyPlot = page.locator('#plot-accuracy svg');
      await expect(accuracyPlot.count()).resolves.toBe(1);
      const legend = await accuracyPlot.innerHTML();
      expect(legend).toContain('ReTool (code)');
      expect(legend).toContain('text-only');
      await expect(page.locator('#plot-training svg').count()).resolves.toBe(1);
      await expect(page.locator('#samples').count()).resolves.toBe(1);
      await expect(page.locator('#lineage').count()).resolves.toBe(1);
      expect(requests.every((u) => u.startsWith('file://') || u.startsWith('data:'))).toBe(true);
      for (const png of ['accuracy', 'training']) expect(existsSync(result.report.replace(/\.html$/, `-${png}.png`))).toBe(true);
    } finally {
      await page.close();
    }
  }, 60_000);

  it('retool status and retool report read the finished experiment; bad config exits 2 naming the field', async () => {
    const env = { TEMPORAL_ADDRESS: address };
    const status = json(await retool(['status', experimentId, '--json'], { home: home.dir, env }));
    expect(status).toMatchObject({ kind: 'experiment', status: 'COMPLETED', stage: 'done' });
    expect(status.arms.map((a: { arm: string; status: string }) => `${a.arm}:${a.status}`)).toEqual(['code:COMPLETED', 'text:COMPLETED']);

    const out = join(home.dir, 'again', 'report.html');
    const written = json(await retool(['report', experimentId, '--out', out, '--json'], { home: home.dir, env }));
    expect(written.html).toBe(out);
    expect(existsSync(out)).toBe(true);
    // The behaviour table reads the stored evaluations' correct-code counts back (code lines: none without code).
    expect(readFileSync(written.markdown, 'utf8')).toMatch(
      /\| ReTool \(code\) \| cold-start SFT \| held-out \| \d+ \| [\d.]+% \| (\d+\.\d\d|—) \| \d+ \|/,
    );

    const missing = await retool(['report', 'no-such-run', '--out', join(home.dir, 'x.html')], { home: home.dir, env });
    expect(missing.exitCode).toBe(2);
    expect(missing.stderr).toContain('no-such-run');
    expect(existsSync(join(home.dir, 'x.html'))).toBe(false);

    // New data lands: import it as a new version and retrain from the experiment's ReTool model.
    const exported = join(home.dir, 'page.jsonl');
    expect((await retool(['data', 'export', result.dataset, '--out', exported], { home: home.dir, env })).exitCode).toBe(0);
    const small = join(home.dir, 'retrain.json');
    writeFileSync(
      small,
      JSON.stringify({
        preset: 'quick',
        eval: { limit: 4 },
        rl: { steps: 1, evalEvery: 1, evalLimit: 4, promptsPerStep: 2, samplesPerPrompt: 2 },
        budget: { maxResponseTokens: 32 },
      }),
    );
    const retrained = json(
      await retool(
        [
          'data',
          'import',
          exported,
          '--name',
          'page',
          '--new-version',
          '--retrain',
          '--config',
          small,
          '--task-queue',
          'retool-page-cli',
          '--json',
        ],
        { home: home.dir, env },
      ),
    );
    expect(retrained.arms).toHaveLength(1);
    expect(retrained.arms[0]).toMatchObject({
      status: 'completed',
      dataset: 'page@2',
      startedFrom: `${experimentId}-code`,
      sftModel: result.arms[0]!.finalModel,
      rlSteps: 1,
    });

    const bad = join(home.dir, 'bad.json');
    writeFileSync(bad, JSON.stringify({ rl: { steps: -3 } }));
    const refused = await retool(['run', '--config', bad, '--detach'], { home: home.dir, env });
    expect(refused.exitCode).toBe(2);
    expect(refused.stderr).toContain('rl.steps');
    writeFileSync(bad, JSON.stringify({ sft: { stepz: 3 } }));
    const typo = await retool(['run', '--config', bad, '--detach'], { home: home.dir, env });
    expect(typo.exitCode).toBe(2);
  }, 240_000);
});
