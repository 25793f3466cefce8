// Scheduled retraining with Temporal Schedules: each firing starts a pipeline that trains on the
// current version of its dataset from the latest good model (`startFrom: latest`). A firing while
// the previous run still trains is skipped; missed firings within the catch-up window run late.
import { ScheduleOverlapPolicy, type Client, type ScheduleSummary } from '@temporalio/client';
import { BadInputError } from '../domain/errors.js';
import type { RetoolConfig } from '../workflows/config.js';
import { retoolStart } from './run-pipeline.js';

export interface ScheduleRequest {
  id: string;
  config: RetoolConfig;
  every?: string;
  cron?: string;
  catchupWindow: string;
  taskQueue?: string;
  paused?: boolean;
}

export async function createRetrainSchedule(client: Client, req: ScheduleRequest): Promise<{ scheduleId: string; nextRuns: string[] }> {
  if (Boolean(req.every) === Boolean(req.cron))
    throw new BadInputError('schedule create: give exactly one of --every (e.g. 1d, 12h) or --cron (e.g. "0 3 * * *")');
  const config: RetoolConfig = { ...req.config, startFrom: 'latest' };
  const { kind: _kind, ...start } = await retoolStart(config, req.taskQueue);
  try {
    const handle = await client.schedule.create({
      scheduleId: req.id,
      spec: req.every ? { intervals: [{ every: req.every as '1d' }] } : { cronExpressions: [req.cron!] },
      action: {
        type: 'startWorkflow',
        ...start,
        workflowId: `${req.id}-run`,
        memo: { preset: config.preset, schedule: req.id },
        staticSummary: `scheduled retraining (${req.id}), preset ${config.preset}`,
      },
      policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: req.catchupWindow as '1h' },
      state: { paused: req.paused ?? false, note: `retool schedule create (preset ${config.preset})` },
    });
    const described = await handle.describe();
    return { scheduleId: req.id, nextRuns: described.info.nextActionTimes.slice(0, 3).map((d) => d.toISOString()) };
  } catch (err) {
    if ((err as Error).name === 'ScheduleAlreadyRunning')
      throw new BadInputError(`a schedule "${req.id}" already exists; delete it first or pick another --id`);
    if ((err as Error).message?.includes('Invalid') || (err as Error).name === 'TypeError')
      throw new BadInputError(`schedule create: ${(err as Error).message}`);
    throw err;
  }
}

export async function listSchedules(
  client: Client,
): Promise<{ id: string; paused: boolean; spec: string; next: string | null; recent: string[] }[]> {
  const out = [];
  for await (const s of client.schedule.list()) out.push(describeSummary(s));
  return out;
}

function describeSummary(s: ScheduleSummary) {
  const intervals = (s.spec?.intervals ?? []).map((i) => `every ${Number(i.every) / 3_600_000} h`);
  return {
    id: s.scheduleId,
    paused: s.state.paused,
    spec: intervals.join(', ') || 'cron',
    next: s.info?.nextActionTimes?.[0]?.toISOString() ?? null,
    recent: (s.info?.recentActions ?? []).map((a) => a.action.workflow.workflowId),
  };
}

async function handleOf(client: Client, id: string) {
  const handle = client.schedule.getHandle(id);
  await handle.describe().catch(() => {
    throw new BadInputError(`no schedule "${id}" (see: retool schedule list)`);
  });
  return handle;
}

export async function pauseSchedule(client: Client, id: string, paused: boolean): Promise<void> {
  const handle = await handleOf(client, id);
  await (paused ? handle.pause('paused with retool schedule pause') : handle.unpause('resumed with retool schedule pause --resume'));
}

/** Fires the schedule now (overlap still applies); returns the started run's workflow id when it shows up. */
export async function triggerSchedule(client: Client, id: string): Promise<string | null> {
  const handle = await handleOf(client, id);
  const lastRun = async () => {
    return (await handle.describe()).info.recentActions.at(-1)?.action.workflow.workflowId ?? null;
  };
  const before = await lastRun();
  await handle.trigger(ScheduleOverlapPolicy.SKIP);
  for (let i = 0; i < 50; i++) {
    const last = await lastRun();
    if (last !== before) return last;
    await new Promise((r) => setTimeout(r, 200));
  }
  // Skipped (a run is still going) or not yet taken.
  return null;
}

export async function deleteSchedule(client: Client, id: string): Promise<void> {
  await (await handleOf(client, id)).delete();
}
