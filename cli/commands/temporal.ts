import { Command } from 'commander';
import { resolveHome } from '../../datasets/home.js';
import { emit, parseNumber, type CommonOptions } from '../output.js';
import { describeHolder, liveHomeServer, portHolder } from '../../worker/server-owner.js';
import { TASK_QUEUES, TemporalServerError } from '../../worker/common.js';
// The Temporal SDK, the worker and the sandbox load in the actions, not when the CLI starts.

type Opts = CommonOptions & Record<string, unknown>;

export function serverCommand(common: (cmd: Command) => Command): Command {
  return common(new Command('server'))
    .description("this home's Temporal dev server with its web UI (loopback only, state in <home>/temporal.db)")
    .option('--port <n>', 'gRPC port (default 7233, or the next free one when another home holds it)', parseNumber('--port'))
    .option('--ui-port <n>', 'web UI port (default 8233, moved along with --port)', parseNumber('--ui-port'))
    .option('--detach', 'start it in the background and return', false)
    .option('--stop', "stop this home's dev server (started by --detach or by another retool command)", false)
    .option('--status', "say whether this home's dev server runs, and where", false)
    .action(async (opts: Opts) => {
      const { ensureServer, externalTarget, portOpen, preferredPorts, startHomeServer, stopHomeServers } =
        await import('../../worker/temporal.js');
      const home = resolveHome(opts.home);
      const ports = { port: opts.port as number | undefined, uiPort: opts.uiPort as number | undefined };
      const external = externalTarget();
      if (opts.stop) {
        const stopped = await stopHomeServers(home);
        emit(opts, { stopped: stopped.length > 0, pids: stopped }, () =>
          stopped.length
            ? `stopped this home's Temporal dev server (pid ${stopped.join(', ')})`
            : `no Temporal dev server runs for ${home}`,
        );
        return;
      }
      if (opts.status) {
        if (external) {
          const up = await portOpen(external.address);
          emit(opts, { ...external, up }, () => `TEMPORAL_ADDRESS=${external.address}: ${up ? 'up' : 'down'}`);
          return;
        }
        const own = liveHomeServer(home);
        if (own) {
          const target = { address: `127.0.0.1:${own.port}`, uiUrl: own.uiPort ? `http://127.0.0.1:${own.uiPort}` : null };
          emit(
            opts,
            { ...target, up: true, pid: own.pid, home },
            () => `${target.address}: up, this home's dev server (pid ${own.pid})${target.uiUrl ? `, UI ${target.uiUrl}` : ''}`,
          );
          return;
        }
        const port = ports.port ?? preferredPorts().port;
        const holder = portHolder(port);
        emit(
          opts,
          { address: null, up: false, pid: null, home },
          () =>
            `no Temporal dev server runs for ${home}${holder.kind === 'free' ? '' : ` (127.0.0.1:${port} is ${describeHolder(holder)})`}`,
        );
        return;
      }
      if (external) {
        emit(
          opts,
          { ...external, started: false },
          () => `TEMPORAL_ADDRESS=${external.address} is set: using that server, not starting one`,
        );
        return;
      }
      if (opts.detach) {
        const started = await ensureServer({ home, ...ports });
        emit(
          opts,
          started,
          () =>
            `${started.started ? 'started' : 'reusing'} this home's Temporal dev server at ${started.address}, UI ${started.uiUrl} (pid ${started.pid})`,
        );
        return;
      }
      const own = liveHomeServer(home);
      if (own)
        throw new TemporalServerError(
          `this home's Temporal dev server already runs at 127.0.0.1:${own.port} (pid ${own.pid}); \`retool server --stop\` stops it`,
        );
      const { child, ...running } = await startHomeServer(home, ports, false);
      emit(opts, running, () => `Temporal dev server of ${home} at ${running.address}, web UI ${running.uiUrl} (Ctrl-C stops it)`);
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
    .option(
      '--max-activities <n>',
      "activities at once, each in a process of its own whose kernels share this worker's cores (TF_NUM_INTRAOP_THREADS)",
      parseNumber('--max-activities'),
      1,
    )
    .option('--exit-with-parent', 'shut down when standard input closes (the process that started it is gone)', false)
    .action(async (opts: Opts) => {
      const { quietTemporalRuntime } = await import('../local-temporal.js');
      const { detectIsolation } = await import('../../engine/sandbox/index.js');
      const { ensureServer } = await import('../../worker/temporal.js');
      const { startWorkers } = await import('../../worker/worker.js');
      quietTemporalRuntime('INFO');
      // Before any server or connection: a machine that cannot isolate model code gets no worker.
      const sandbox = detectIsolation();
      const target = await ensureServer({ home: opts.home });
      const running = await startWorkers({
        target,
        home: opts.home,
        taskQueues: opts.taskQueue as string[] | undefined,
        maxConcurrentActivities: opts.maxActivities as number,
      });
      const queues = running.workers.map((w) => w.options.taskQueue);
      emit(
        opts,
        { address: target.address, namespace: target.namespace, taskQueues: queues, sandbox: sandbox.mode, backend: running.backend.info },
        () =>
          `worker polling ${queues.join(', ')} on ${target.address} (Ctrl-C stops it); ${sandbox.summary}; tensors on ${running.backend.label}`,
      );
      const stop = () => void running.shutdown();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      if (opts.exitWithParent) process.stdin.once('close', stop).resume();
      await running.done;
    });
}
