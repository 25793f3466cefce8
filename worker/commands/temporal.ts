import { Command } from 'commander';
import { emit, parseNumber, type CommonOptions } from '../output.js';
import { quietTemporalRuntime } from '../run-prepare.js';
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
    .option('--max-activities <n>', 'activities at once in this process (CPU-bound: 1; run more workers to go parallel)', parseNumber('--max-activities'), 1)
    .option('--exit-with-parent', 'shut down when standard input closes (the process that started it is gone)', false)
    .action(async (opts: Opts) => {
      quietTemporalRuntime('INFO');
      const target = await ensureServer({ home: opts.home });
      const running = await startWorkers({ target, home: opts.home, taskQueues: opts.taskQueue as string[] | undefined, maxConcurrentActivities: opts.maxActivities as number });
      const queues = running.workers.map((w) => w.options.taskQueue);
      emit(opts, { address: target.address, namespace: target.namespace, taskQueues: queues }, () => `worker polling ${queues.join(', ')} on ${target.address} (Ctrl-C stops it)`);
      const stop = () => void running.shutdown();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      if (opts.exitWithParent) process.stdin.once('close', stop).resume();
      await running.done;
    });
}
