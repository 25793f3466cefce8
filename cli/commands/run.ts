// The main job and its controls: `retool run`, `retool status`, `retool pause|resume|stop`,
// `retool report`.
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import { Command, Option } from 'commander';
import { ZodError } from 'zod';
import { BadInputError, describeZodError } from '../../domain/errors.js';
import { PRESETS, resolveConfig, type PresetName, type RetoolConfig } from '../../workflows/config.js';
import type { formatEta } from '../live-progress.js';
import { emit, parseNumber, pct, table, type CommonOptions } from '../output.js';
import type { RunRetoolResult } from '../run-pipeline.js';
import type { RunStatus } from '../status.js';
import type { connectClient, ServerTarget } from '../../worker/temporal.js';
// Everything else (the Temporal SDK, the store, the sandbox, the report's plotting) loads inside
// the actions, so that `retool --help` and the light commands start at once.

type Opts = CommonOptions & Record<string, unknown>;

/** A preset, with a JSON config file's settings laid over it; every mistake named with its place. */
export function loadConfig(preset: string | undefined, file: string | undefined): RetoolConfig {
  let overrides: Record<string, unknown> = {};
  if (file) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new BadInputError(`--config: cannot read ${file}: ${(err as Error).message}`);
    }
    try {
      overrides = JSON.parse(text) as Record<string, unknown>;
    } catch (err) {
      throw new BadInputError(`--config: ${file} is not valid JSON: ${(err as Error).message}`);
    }
    if (typeof overrides !== 'object' || overrides === null || Array.isArray(overrides))
      throw new BadInputError(`--config: ${file} must hold a JSON object`);
  }
  const name = preset ?? (typeof overrides.preset === 'string' ? overrides.preset : 'default');
  if (!(name in PRESETS)) throw new BadInputError(`unknown preset "${name}"; choose one of ${Object.keys(PRESETS).join(', ')}`);
  try {
    return resolveConfig(name as PresetName, { ...overrides, preset: name });
  } catch (err) {
    if (err instanceof ZodError) throw new BadInputError(`${file ? `--config ${file}` : `preset ${name}`}: ${describeZodError(err)}`);
    throw err;
  }
}

function resultsTable(run: RunRetoolResult): string {
  const rows = run.arms.flatMap((a) => [
    ...(a.baseEval
      ? [{ arm: a.arm, model: 'base (zero-shot)', accuracy: pct(a.baseEval.accuracy), evaluation: a.baseEval.evaluation }]
      : []),
    {
      arm: a.arm,
      model: a.startedFrom ? `start (${a.startedFrom})` : 'after SFT',
      accuracy: pct(a.sftEval?.accuracy),
      evaluation: a.sftEval?.evaluation ?? '',
    },
    ...a.rlEvals.map((e) => ({ arm: a.arm, model: `RL step ${e.step}`, accuracy: pct(e.accuracy), evaluation: '(held-out subset)' })),
    { arm: a.arm, model: `final (${a.rlSteps} RL steps)`, accuracy: pct(a.finalEval?.accuracy), evaluation: a.finalEval?.evaluation ?? '' },
  ]);
  return table(rows, ['arm', 'model', 'accuracy', 'evaluation']);
}

export function runCommand(common: (cmd: Command) => Command): Command {
  return common(new Command('run'))
    .description('the ReTool pipeline on Temporal: data, cold start, SFT, evaluation, RL rounds, final evaluation, report')
    .addOption(
      new Option(
        '--preset <name>',
        'quick: a first look in minutes; default: the main job; paper: ReTool vs text-only (hours); real: the same on SmolLM2 with LoRA (hours)',
      ).choices(Object.keys(PRESETS)),
    )
    .option('--config <file>', 'a JSON file of settings laid over the preset (see README, "Configuration")')
    .option('--task-queue <queue>', 'the task queue to run on', undefined)
    .option(
      '--workers <n>',
      'worker processes while it waits, one activity each (parallel stages and arms need one each)',
      parseNumber('--workers'),
      Math.min(2, availableParallelism()),
    )
    .option('--detach', 'start the run and return (a `retool worker` must run it)', false)
    .action(async (opts: Opts) => runWithProgress(loadConfig(opts.preset as string | undefined, opts.config as string | undefined), opts));
}

/** Runs (or with --detach starts) `config`, with live progress bars, then the results table. */
export async function runWithProgress(config: RetoolConfig, opts: Opts): Promise<void> {
  const say = (line: string) => !opts.json && process.stderr.write(`${line}\n`);
  if (!opts.detach) {
    // Workers start here: say at once which isolation the model's code gets (or stop, if none).
    const { detectIsolation } = await import('../../engine/sandbox/index.js');
    const isolation = detectIsolation();
    if (isolation.mode !== 'bubblewrap') say(isolation.summary);
  }
  const { runRetool } = await import('../run-pipeline.js');
  const { liveProgress } = await import('../live-progress.js');
  const bars = opts.json || opts.detach ? null : liveProgress();
  let run: RunRetoolResult;
  try {
    run = await runRetool(config, {
      home: opts.home,
      detach: Boolean(opts.detach),
      taskQueue: opts.taskQueue as string | undefined,
      workers: opts.workers as number | undefined,
      onStarted: (id, url) =>
        say(
          `started ${id} (preset ${config.preset}${config.arms.length > 1 ? `, arms ${config.arms.join(' + ')}` : ''})${url ? `\n  Temporal UI: ${url}` : ''}`,
        ),
      onStatus: (s) => bars?.update(s),
    });
  } finally {
    bars?.stop();
  }
  emit(opts, run, () => {
    if (run.detached)
      return `${run.kind} ${run.workflowId} started${run.uiUrl ? `: ${run.uiUrl}` : ''}\nfollow it with: ./bin/retool.js status ${run.workflowId}`;
    return [
      `${run.kind} ${run.workflowId} (${run.preset}) finished in ${run.seconds.toFixed(0)} s`,
      resultsTable(run),
      run.report ? `report: ${run.report}` : '',
      run.uiUrl ? `Temporal UI: ${run.uiUrl}` : '',
    ]
      .filter(Boolean)
      .join('\n');
  });
}

function statusText(s: RunStatus, uiUrl: string | null, eta: typeof formatEta): string {
  const lines = [
    `${s.kind} ${s.workflowId}: ${s.status}, stage ${s.stage}${s.dataset ? `, data ${s.dataset}` : ''}${uiUrl ? `\n  ${uiUrl}` : ''}`,
  ];
  for (const a of s.arms) {
    const head = s.arms.length > 1 ? `[${a.arm}] ${a.workflowId} ${a.status}, stage ${a.stage}` : '';
    if (head) lines.push(head);
    if (a.paused) lines.push('  paused (resume with: ./bin/retool.js resume ' + s.workflowId + ')');
    if (a.current) {
      const c = a.current;
      const left = c.etaSeconds === null ? '' : `, ${eta(c.etaSeconds)}`;
      lines.push(
        `  ${c.stage}: step ${c.step}/${c.total}${left}${c.attempt > 1 ? `, attempt ${c.attempt}` : ''}${c.checkpoint ? `, last checkpoint ${c.checkpoint}` : ''}`,
      );
      const metrics = Object.entries(c.metrics)
        .map(([k, v]) => `${k} ${v.toFixed(4)}`)
        .join(', ');
      if (metrics) lines.push(`  latest: ${metrics}`);
    }
    lines.push(
      `  accuracy: after SFT ${pct(a.sftAccuracy)}, best ${pct(a.bestAccuracy)}, final ${pct(a.finalAccuracy)}${a.report ? `\n  report: ${a.report}` : ''}`,
    );
  }
  return lines.join('\n');
}

/** Runs `fn` with a client of this home's server (reused or started, never another home's). */
export async function withClient<T>(
  home: string | undefined,
  fn: (client: Awaited<ReturnType<typeof connectClient>>['client'], target: ServerTarget) => Promise<T>,
  options: { readOnly?: boolean } = {},
): Promise<T> {
  // The client alone (gRPC in JavaScript): no worker here, so no @temporalio/worker to load and no
  // native runtime whose logs to quieten (quietTemporalRuntime is for commands that run workers).
  const { connectClient, ensureServer, withServerErrors } = await import('../../worker/temporal.js');
  const target = await ensureServer({ home, verify: !options.readOnly });
  const { client, connection } = await connectClient(target);
  try {
    return await withServerErrors(target, () => fn(client, target));
  } finally {
    await connection.close();
  }
}

export function statusCommand(common: (cmd: Command) => Command): Command {
  return common(new Command('status'))
    .description('where a run stands: stage, step/total, ETA, latest metrics, accuracies (no RUN: the newest runs)')
    .argument('[run]', 'workflow id of a pipeline or experiment')
    .action(async (run: string | undefined, opts: Opts) => {
      const { recentRuns, runStatus } = await import('../status.js');
      const { formatEta } = await import('../live-progress.js');
      const { workflowUrl } = await import('../../worker/temporal.js');
      await withClient(
        opts.home,
        async (client, target) => {
          if (!run) {
            const runs = await recentRuns(client);
            emit(opts, runs, () =>
              runs.length
                ? table(
                    runs.map((r) => ({ ...r, startTime: r.startTime.toISOString() })),
                    ['workflowId', 'type', 'status', 'startTime'],
                  )
                : 'no ReTool runs on this server yet; start one with: ./bin/retool.js run',
            );
            return;
          }
          const status = await runStatus(client, run).catch((err: Error) => {
            throw new BadInputError(`no ReTool run "${run}" on ${target.address}: ${err.message}`);
          });
          emit(opts, status, () => statusText(status, workflowUrl(target, run), formatEta));
        },
        { readOnly: true },
      );
    });
}

export function controlCommand(common: (cmd: Command) => Command, signal: 'pause' | 'resume' | 'stop'): Command {
  const what = {
    pause: 'pause training at the next step boundary (a checkpoint is kept)',
    resume: 'resume a paused run from its checkpoint',
    stop: 'stop training early: the run evaluates what it has and writes its report',
  };
  return common(new Command(signal))
    .description(what[signal])
    .argument('<run>', 'workflow id')
    .action(async (run: string, opts: Opts) => {
      await withClient(opts.home, async (client) => {
        await client.workflow
          .getHandle(run)
          .signal(signal)
          .catch((err: Error) => {
            throw new BadInputError(`cannot ${signal} "${run}": ${err.message}`);
          });
      });
      emit(opts, { run, signal }, () => `sent ${signal} to ${run}`);
    });
}

export function reportCommand(common: (cmd: Command) => Command): Command {
  return common(new Command('report'))
    .description('write a self-contained HTML report of a run (plots as SVG and PNG beside it)')
    .argument('<run>', 'workflow id of a pipeline or experiment')
    .option('--out <file>', 'the HTML file', 'report.html')
    .action(async (run: string, opts: Opts) => {
      const { withStore } = await import('../../datasets/store.js');
      const { collectReport } = await import('../../datasets/report-data.js');
      const { writeReport } = await import('../../engine/report/index.js');
      const data = await withStore(opts.home, (store) => collectReport(store, run));
      const written = await writeReport(data, resolve(String(opts.out)));
      emit(opts, written, () => [`report: ${written.html}`, ...written.pngs.map((p) => `plot: ${p}`)].join('\n'));
    });
}
