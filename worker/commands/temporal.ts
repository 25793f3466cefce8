import { Command, Option } from 'commander';
import { emit, parseNumber, pct, table, type CommonOptions } from '../output.js';
import { runPipeline } from '../run-pipeline.js';
import { prepareViaTemporal, quietTemporalRuntime } from '../run-prepare.js';
import { configuredTarget, DEFAULT_PORT, DEFAULT_UI_PORT, ensureServer, portOpen, startDevServer, stopDetachedServer, TASK_QUEUES } from '../temporal.js';
import { startWorkers } from '../worker.js';

type Opts = CommonOptions & Record<string, unknown>;

export function serverCommand(common: (cmd: Command) => Command): Command {
  return common(new Command('server'))
    .description('run the Temporal dev server with its web UI (loopback only, state in <home>/temporal.db)')
    .option('--port <n>', 'gRPC port', parseNumber('--port'), DEFAULT_PORT)
    .option('--ui-port <n>', 'web UI port', parseNumber('--ui-port'), DEFAULT_UI_PORT)
    .option('--detach', 'start it in the background and return', false)
    .option('--stop', 'stop a server started with --detach (or by another retool command)', false)
    .option('--status', 'say whether a server is reachable', false)
    .action(async (opts: Opts) => {
      const target = configuredTarget(opts.port as number, opts.uiPort as number);
      if (opts.stop) {
        const stopped = stopDetachedServer(opts.home);
        emit(opts, { stopped }, () => (stopped ? 'stopped the detached Temporal dev server' : 'no detached Temporal dev server recorded in this home'));
        return;
      }
      if (opts.status) {
        const up = await portOpen(target.address);
        emit(opts, { ...target, up }, () => `${target.address}: ${up ? 'up' : 'down'}${up && target.uiUrl ? ` (UI ${target.uiUrl})` : ''}`);
        return;
      }
      if (target.external) {
        emit(opts, { ...target, started: false }, () => `TEMPORAL_ADDRESS=${target.address} is set: using that server, not starting one`);
        return;
      }
      if (opts.detach) {
        const started = await ensureServer({ home: opts.home, port: opts.port as number, uiPort: opts.uiPort as number });
        emit(opts, started, () => `${started.started ? 'started' : 'reusing'} Temporal at ${started.address}, UI ${started.uiUrl}`);
        return;
      }
      const { target: running, child } = await startDevServer({ home: opts.home, port: opts.port as number, uiPort: opts.uiPort as number });
      emit(opts, running, () => `Temporal dev server at ${running.address}, web UI ${running.uiUrl} (Ctrl-C stops it)`);
      const stop = () => child.kill('SIGTERM');
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      await new Promise<void>((resolve) => child.once('exit', () => resolve()));
    });
}

export function workerCommand(common: (cmd: Command) => Command): Command {
  return common(new Command('worker'))
    .description(`poll task queues and run workflows and activities (${Object.values(TASK_QUEUES).join(', ')})`)
    .option('--task-queue <queue...>', 'poll only these queues')
    .action(async (opts: Opts) => {
      quietTemporalRuntime('INFO');
      const target = await ensureServer({ home: opts.home });
      const running = await startWorkers({ target, home: opts.home, taskQueues: opts.taskQueue as string[] | undefined });
      const queues = running.workers.map((w) => w.options.taskQueue);
      emit(opts, { address: target.address, namespace: target.namespace, taskQueues: queues }, () => `worker polling ${queues.join(', ')} on ${target.address} (Ctrl-C stops it)`);
      const stop = () => void running.shutdown();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      await running.done;
    });
}

/** The main job. Until the training pipeline lands it prepares the default synthetic dataset. */
export function startCommand(common: (cmd: Command) => Command): Command {
  return common(new Command('start'))
    .description('the main job on the embedded default (today: the prepareData workflow on synthetic problems)')
    .option('--count <n>', 'synthetic problems', parseNumber('--count'), 20_000)
    .option('--seed <n>', 'random seed', parseNumber('--seed'), 0)
    .action(async (opts: Opts) => {
      const result = await prepareViaTemporal(
        { source: 'synth', name: 'synth-default', count: opts.count as number, seed: opts.seed as number, newVersion: true },
        { home: opts.home, onStarted: (id, url) => !opts.json && process.stderr.write(`started workflow ${id}${url ? `\n  watch it in the Temporal UI: ${url}` : ''}\n`) },
      );
      emit(opts, result, () => {
        const d = result.dataset;
        return [
          `dataset ${d.name}@${d.version}: ${d.rowCount} problems (${Object.entries(d.splits).map(([k, v]) => `${k} ${v}`).join(', ')})`,
          `workflow ${result.workflowId}${result.uiUrl ? `: ${result.uiUrl}` : ''}`,
          result.serverStarted ? 'the Temporal dev server keeps running for the UI; stop it with: npx retool server --stop' : '',
          `next: npx retool data show ${d.name}:test --limit 5`,
        ].filter(Boolean).join('\n');
      });
    });
}

export function runCommand(common: (cmd: Command) => Command): Command {
  return common(new Command('run'))
    .description('the ReTool pipeline as a Temporal workflow: data, cold start, SFT, evaluation, RL, final evaluation')
    .addOption(new Option('--preset <name>', 'quick: minutes, a first look; default: the embedded main job').choices(['quick', 'default']).default('quick'))
    .option('--detach', 'start the workflow and return (a `retool worker` must run it)', false)
    .action(async (opts: Opts) => {
      const say = (line: string) => !opts.json && process.stderr.write(`${line}\n`);
      const run = await runPipeline(opts.preset as 'quick', {
        home: opts.home,
        detach: Boolean(opts.detach),
        onStarted: (id, url) => say(`started workflow ${id}${url ? `\n  watch it in the Temporal UI: ${url}` : ''}`),
        onStage: (stage) => say(`stage: ${stage}`),
      });
      emit(opts, run, () => {
        if (!run.result) return `workflow ${run.workflowId} started${run.uiUrl ? `: ${run.uiUrl}` : ''}`;
        const r = run.result;
        return [
          `pipeline ${run.workflowId} (${run.preset}) finished in ${run.seconds.toFixed(0)} s`,
          table(
            [
              { model: 'after SFT', evaluation: r.sftEval.evaluation, accuracy: pct(r.sftEval.accuracy) },
              ...r.rlEvals.map((e) => ({ model: `RL step ${e.step}`, evaluation: '(held-out subset)', accuracy: pct(e.accuracy) })),
              { model: 'after RL', evaluation: r.finalEval.evaluation, accuracy: pct(r.finalEval.accuracy) },
            ],
            ['model', 'evaluation', 'accuracy'],
          ),
          run.uiUrl ? `UI: ${run.uiUrl}` : '',
        ].filter(Boolean).join('\n');
      });
    });
}
