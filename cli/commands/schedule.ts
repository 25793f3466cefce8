// `retool schedule create|list|pause|trigger|delete`: scheduled retraining on Temporal Schedules.
import { Command, Option } from 'commander';
import { PRESETS } from '../../workflows/config.js';
import { emit, table, type CommonOptions } from '../output.js';
import { loadConfig, withClient } from './run.js';

// The Temporal client loads in the actions (withClient), not when the CLI starts.
const schedules = () => import('../schedules.js');

type Opts = CommonOptions & Record<string, unknown>;

export function scheduleCommand(common: (cmd: Command) => Command): Command {
  const schedule = new Command('schedule').description(
    'scheduled retraining: each firing trains from the latest good model on the current data (Temporal Schedules)',
  );

  common(schedule.command('create'))
    .description('create a schedule (overlap: skip a firing while the last run still trains)')
    .option('--id <id>', 'schedule id', 'retool-retrain')
    .option('--every <interval>', 'fire every interval, e.g. 1d, 12h, 30m')
    .option('--cron <expr>', 'fire on a cron expression, e.g. "0 3 * * *"')
    .addOption(new Option('--preset <name>', 'settings of each run').choices(Object.keys(PRESETS)))
    .option('--config <file>', 'a JSON file of settings laid over the preset')
    .option('--catchup-window <duration>', 'how late a missed firing (server down) may still run', '1h')
    .option('--task-queue <queue>', 'the task queue the runs go to')
    .option('--paused', 'create it paused', false)
    .action(async (opts: Opts) => {
      const config = loadConfig(opts.preset as string | undefined, opts.config as string | undefined);
      const { createRetrainSchedule } = await schedules();
      const made = await withClient(opts.home, (client) =>
        createRetrainSchedule(client, {
          id: opts.id as string,
          config,
          every: opts.every as string | undefined,
          cron: opts.cron as string | undefined,
          catchupWindow: opts.catchupWindow as string,
          taskQueue: opts.taskQueue as string | undefined,
          paused: Boolean(opts.paused),
        }),
      );
      emit(
        opts,
        made,
        () =>
          `schedule ${made.scheduleId} created; next runs: ${made.nextRuns.join(', ') || '(paused)'}\nruns need a worker: ./bin/retool.js worker`,
      );
    });

  common(schedule.command('list'))
    .description('the schedules, their next firing and recent runs')
    .action(async (opts: Opts) => {
      const { listSchedules } = await schedules();
      const found = await withClient(opts.home, (client) => listSchedules(client));
      emit(opts, found, () =>
        found.length
          ? table(
              found.map((s) => ({ ...s, recent: s.recent.slice(-3).join(' ') })),
              ['id', 'paused', 'spec', 'next', 'recent'],
            )
          : 'no schedules',
      );
    });

  common(schedule.command('pause').argument('<id>'))
    .description('pause a schedule (--resume to unpause)')
    .option('--resume', 'unpause instead', false)
    .action(async (id: string, opts: Opts) => {
      const { pauseSchedule } = await schedules();
      await withClient(opts.home, (client) => pauseSchedule(client, id, !opts.resume));
      emit(opts, { id, paused: !opts.resume }, () => `schedule ${id} ${opts.resume ? 'resumed' : 'paused'}`);
    });

  common(schedule.command('trigger').argument('<id>'))
    .description('fire a schedule now')
    .action(async (id: string, opts: Opts) => {
      const { triggerSchedule } = await schedules();
      const { workflowUrl } = await import('../../worker/temporal.js');
      const started = await withClient(opts.home, async (client, target) => {
        const workflowId = await triggerSchedule(client, id);
        return { id, workflowId, uiUrl: workflowId ? workflowUrl(target, workflowId) : null };
      });
      emit(opts, started, () =>
        started.workflowId
          ? `schedule ${id} started ${started.workflowId}${started.uiUrl ? `: ${started.uiUrl}` : ''}`
          : `schedule ${id} fired; no new run yet (skipped while the previous one still trains)`,
      );
    });

  common(schedule.command('delete').argument('<id>'))
    .description('delete a schedule (runs it started go on)')
    .action(async (id: string, opts: Opts) => {
      const { deleteSchedule } = await schedules();
      await withClient(opts.home, (client) => deleteSchedule(client, id));
      emit(opts, { id, deleted: true }, () => `schedule ${id} deleted`);
    });
  return schedule;
}
