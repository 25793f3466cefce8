// Where a run stands: the workflow's `progress` query (stages, accuracies) joined with the
// heartbeat of its running training activity (step, total, latest metrics, last checkpoint), from
// which the ETA follows. Serves `retool status` and the live progress bars of `retool run`.
import type { Client, WorkflowExecutionDescription } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import type { TrainingHeartbeat } from '../activities/stages.js';
import type { ExperimentProgress } from '../workflows/experiment.js';
import type { PipelineProgress, retoolPipeline } from '../workflows/pipeline.js';
import type { RlProgress } from '../workflows/rl-rounds.js';

export interface ActivityProgress extends TrainingHeartbeat {
  activity: string;
  attempt: number;
  /** Seconds left at the stage's pace so far; null until a step is done. */
  etaSeconds: number | null;
}

export interface ArmStatus extends PipelineProgress {
  workflowId: string;
  status: string;
  current: ActivityProgress | null;
}

export interface RunStatus {
  workflowId: string;
  kind: 'pipeline' | 'experiment';
  status: string;
  preset: string | null;
  stage: string;
  dataset: string | null;
  arms: ArmStatus[];
}

export function pendingHeartbeats(
  described: WorkflowExecutionDescription,
): { activity: string; attempt: number; worker: string | null; details: Partial<TrainingHeartbeat> }[] {
  return (described.raw.pendingActivities ?? []).flatMap((a) => {
    const payload = a.heartbeatDetails?.payloads?.[0];
    if (!payload) return [];
    const details = defaultPayloadConverter.fromPayload<Partial<TrainingHeartbeat>>(payload);
    return [{ activity: a.activityType?.name ?? '?', attempt: a.attempt ?? 1, worker: a.lastWorkerIdentity ?? null, details }];
  });
}

function withEta(
  p: { activity: string; attempt: number; details: Partial<TrainingHeartbeat> },
  overallTotal: number | null,
): ActivityProgress {
  const d = p.details;
  const step = d.step ?? 0;
  // RL heartbeats count to the end of the round; the RL child knows the run's total.
  const total = overallTotal ?? d.total ?? 0;
  const pace = d.secondsPerStep ?? null;
  const etaSeconds = pace !== null && total >= step ? pace * (total - step) : null;
  return {
    activity: p.activity,
    attempt: p.attempt,
    stage: d.stage ?? p.activity,
    step,
    total,
    checkpoint: d.checkpoint ?? null,
    metrics: d.metrics ?? {},
    secondsPerStep: pace,
    etaSeconds,
  };
}

function fromMemo(memo: Record<string, unknown>, attributes: Record<string, readonly unknown[] | undefined>): PipelineProgress {
  const num = (v: unknown) => (typeof v === 'number' ? v : null);
  return {
    preset: String(memo.preset ?? ''),
    arm: memo.arm === 'text' ? 'text' : 'code',
    stage: String(attributes.RetoolStage?.[0] ?? 'unknown') as PipelineProgress['stage'],
    paused: false,
    stopRequested: false,
    dataset: typeof memo.dataset === 'string' ? memo.dataset : null,
    stages: [],
    rlWorkflowId: null,
    sftAccuracy: null,
    bestAccuracy: num(memo.bestAccuracy),
    finalAccuracy: null,
    report: typeof memo.report === 'string' ? memo.report : null,
  };
}

async function armStatus(client: Client, workflowId: string, known?: WorkflowExecutionDescription): Promise<ArmStatus> {
  const handle = client.workflow.getHandle<typeof retoolPipeline>(workflowId);
  const described = known ?? (await handle.describe());
  // A closed run answers queries only while some worker can replay it; its memo says enough.
  const progress = await handle.query<PipelineProgress>('progress').catch(() => fromMemo(described.memo ?? {}, described.searchAttributes));
  if (described.status.name === 'COMPLETED' && progress.finalAccuracy === null) {
    const result = await handle.result().catch(() => null);
    if (result)
      Object.assign(progress, {
        sftAccuracy: result.sftEval?.accuracy ?? null,
        finalAccuracy: result.finalEval?.accuracy ?? null,
        report: result.report,
      });
  }
  const running = progress.stages.filter((s) => s.status === 'running');
  const rlRunning = progress.rlWorkflowId && running.some((s) => s.name === 'rl');
  const rlHandle = rlRunning ? client.workflow.getHandle(progress.rlWorkflowId!) : null;
  const [rlDescribed, rlProgress] = rlHandle
    ? await Promise.all([rlHandle.describe().catch(() => null), rlHandle.query<RlProgress>('progress').catch(() => null)])
    : [null, null];
  const beats = [...pendingHeartbeats(described), ...(rlDescribed ? pendingHeartbeats(rlDescribed) : [])];
  const rlTotal = rlProgress?.total ?? null;
  // The training stage's heartbeat is the one worth a bar; evaluation next to RL comes second.
  const chosen = beats.find((b) => b.details.stage === 'rl' || b.details.stage === 'sft') ?? beats[0];
  return {
    ...progress,
    workflowId,
    status: described.status.name,
    current: chosen ? withEta(chosen, chosen.details.stage === 'rl' ? rlTotal : null) : null,
  };
}

export async function runStatus(client: Client, workflowId: string): Promise<RunStatus> {
  const handle = client.workflow.getHandle(workflowId);
  const described = await handle.describe();
  if (described.type === 'retoolExperiment') {
    const progress = await handle.query<ExperimentProgress>('progress').catch(() => ({
      preset: String(described.memo?.preset ?? ''),
      stage: String(described.searchAttributes.RetoolStage?.[0] ?? 'unknown'),
      dataset: typeof described.memo?.dataset === 'string' ? described.memo.dataset : null,
      arms: (described.memo?.armRuns as ExperimentProgress['arms']) ?? [],
    }));
    const arms = await Promise.all(progress.arms.map((a) => armStatus(client, a.workflowId)));
    return {
      workflowId,
      kind: 'experiment',
      status: described.status.name,
      preset: progress.preset,
      stage: progress.stage,
      dataset: progress.dataset,
      arms,
    };
  }
  if (described.type !== 'retoolPipeline')
    throw new Error(`workflow ${workflowId} is a ${described.type}, not a ReTool pipeline or experiment`);
  const arm = await armStatus(client, workflowId, described);
  return {
    workflowId,
    kind: 'pipeline',
    status: described.status.name,
    preset: arm.preset,
    stage: arm.stage,
    dataset: arm.dataset,
    arms: [arm],
  };
}

/** The newest pipeline or experiment runs, for `retool status` without an id. */
export async function recentRuns(
  client: Client,
  limit = 10,
): Promise<{ workflowId: string; type: string; status: string; startTime: Date }[]> {
  const runs: { workflowId: string; type: string; status: string; startTime: Date }[] = [];
  for await (const w of client.workflow.list({ query: `WorkflowType = 'retoolPipeline' OR WorkflowType = 'retoolExperiment'` })) {
    runs.push({ workflowId: w.workflowId, type: w.type, status: w.status.name, startTime: w.startTime });
    if (runs.length >= limit) break;
  }
  return runs;
}
