// The run registry: one row per training/evaluation run, its per-step metrics and the checkpoints
// it wrote, so a run can be resumed, compared and found again.
import { BadInputError } from '../domain/errors.js';
import type { Store } from './store.js';

export type RunKind = 'pipeline' | 'experiment' | 'synth' | 'sft' | 'rl' | 'eval';

export async function startRun(
  store: Store,
  run: { runId: string; kind: RunKind; config: unknown; backend?: string; workflowId?: string; preset?: string },
): Promise<void> {
  await store.run(
    `INSERT INTO runs (run_id, workflow_id, kind, preset, config, status, backend) VALUES ($1, $2, $3, $4, $5, 'running', $6)
     ON CONFLICT (run_id) DO UPDATE SET status = 'running', finished_at = NULL`,
    [run.runId, run.workflowId ?? null, run.kind, run.preset ?? null, JSON.stringify(run.config ?? {}), run.backend ?? null],
  );
}

export async function finishRun(store: Store, runId: string, status: 'completed' | 'stopped' | 'failed', summary: unknown): Promise<void> {
  await store.run('UPDATE runs SET status = $2, finished_at = current_timestamp, summary = $3 WHERE run_id = $1', [
    runId,
    status,
    JSON.stringify(summary ?? {}),
  ]);
}

export interface RunRecord {
  runId: string;
  kind: string;
  status: string;
  config: Record<string, unknown>;
  summary: Record<string, unknown> | null;
}

export async function getRun(store: Store, runId: string): Promise<RunRecord> {
  const rows = await store.query<Record<string, unknown>>(
    'SELECT run_id, kind, status, CAST(config AS VARCHAR) AS config, CAST(summary AS VARCHAR) AS summary FROM runs WHERE run_id = $1',
    [runId],
  );
  const r = rows[0];
  if (!r) throw new BadInputError(`no run "${runId}" in the store`);
  return {
    runId,
    kind: String(r.kind),
    status: String(r.status),
    config: JSON.parse(String(r.config ?? '{}')),
    summary: r.summary ? JSON.parse(String(r.summary)) : null,
  };
}

export interface MetricPoint {
  step: number;
  values: Record<string, number>;
}

export async function recordMetrics(store: Store, runId: string, stage: string, points: MetricPoint[]): Promise<void> {
  if (points.length === 0) return;
  await store.transaction(async () => {
    for (const p of points) {
      for (const [name, value] of Object.entries(p.values)) {
        await store.run('INSERT INTO metrics (run_id, stage, step, name, value) VALUES ($1, $2, $3, $4, $5)', [
          runId,
          stage,
          p.step,
          name,
          Number.isFinite(value) ? value : null,
        ]);
      }
    }
  });
}

export async function readMetrics(
  store: Store,
  runId: string,
  stage: string,
  name: string,
): Promise<{ step: number; value: number | null }[]> {
  const rows = await store.query<{ step: number; value: number | null }>(
    'SELECT step, value FROM metrics WHERE run_id = $1 AND stage = $2 AND name = $3 ORDER BY step',
    [runId, stage, name],
  );
  return rows.map((r) => ({ step: Number(r.step), value: r.value === null ? null : Number(r.value) }));
}

/**
 * Forgets what a run wrote after `step` (metrics of `stages`, rollouts): a run resumed from the
 * checkpoint at `step` writes those steps again, and a stop may have come after their rows were
 * written but before their checkpoint was registered.
 */
export async function forgetStepsAfter(store: Store, runId: string, stages: string[], step: number): Promise<void> {
  await store.transaction(async () => {
    for (const stage of stages) await store.run('DELETE FROM metrics WHERE run_id = $1 AND stage = $2 AND step > $3', [runId, stage, step]);
    await store.run('DELETE FROM rollouts WHERE run_id = $1 AND step > $2', [runId, step]);
  });
}

export async function registerCheckpoint(
  store: Store,
  c: { runId: string; stage: string; step: number; path: string; metrics?: unknown },
): Promise<void> {
  await store.run(
    `INSERT INTO checkpoints (run_id, stage, step, path, metrics) VALUES ($1, $2, $3, $4, $5)
     ON CONFLICT (run_id, stage, step) DO UPDATE SET path = excluded.path, metrics = excluded.metrics`,
    [c.runId, c.stage, c.step, c.path, JSON.stringify(c.metrics ?? {})],
  );
}

export async function latestCheckpoint(store: Store, runId: string, stage: string): Promise<{ step: number; path: string } | null> {
  const rows = await store.query<{ step: number; path: string }>(
    'SELECT step, path FROM checkpoints WHERE run_id = $1 AND stage = $2 AND good ORDER BY step DESC LIMIT 1',
    [runId, stage],
  );
  return rows[0] ? { step: Number(rows[0].step), path: String(rows[0].path) } : null;
}
