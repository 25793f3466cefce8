// Gathers what a run report shows from the store: each arm's pipeline row, its RL curves and
// behaviour metrics, the lineage of datasets and checkpoints, and a few sample trajectories.
import type { LineageEntry, PairedChange, ReportArm, ReportData, ReportEvaluation, SampleTrajectory } from '../domain/report-types.js';
import { BadInputError } from '../domain/errors.js';
import { resolveDataset } from './registry.js';
import { getRun } from './runs.js';
import type { Store } from './store.js';

type Series = { step: number; values: Record<string, number> }[];

async function metricSeries(store: Store, runId: string, stage: string): Promise<Series> {
  const rows = await store.query<{ step: number; name: string; value: number | null }>(
    'SELECT step, name, value FROM metrics WHERE run_id = $1 AND stage = $2 ORDER BY step, name',
    [runId, stage],
  );
  const bySteps = new Map<number, Record<string, number>>();
  for (const r of rows) {
    if (r.value === null) continue;
    const step = Number(r.step);
    const values = bySteps.get(step) ?? {};
    values[String(r.name)] = Number(r.value);
    bySteps.set(step, values);
  }
  return [...bySteps].map(([step, values]) => ({ step, values }));
}

async function lineageOf(store: Store, summary: Record<string, unknown>, arm: string): Promise<LineageEntry[]> {
  const entries: LineageEntry[] = [];
  const seen = new Set<string>();
  const addDataset = async (ref: string, kind: LineageEntry['kind']): Promise<void> => {
    const d = await resolveDataset(store, ref).catch(() => null);
    if (!d || seen.has(`${d.name}@${d.version}`)) return;
    seen.add(`${d.name}@${d.version}`);
    entries.push({
      kind,
      name: `${d.name}@${d.version}`,
      detail: `${d.rowCount} rows, ${d.source}`,
      from: d.parents.map((p) => `${p.name}@${p.version}`),
    });
  };
  if (typeof summary.dataset === 'string') await addDataset(summary.dataset, 'dataset');
  if (typeof summary.traces === 'string') await addDataset(summary.traces, 'traces');
  for (const [runKey, stage] of [
    ['sftRunId', 'sft'],
    ['rlRunId', 'rl'],
  ] as const) {
    const runId = summary[runKey];
    if (typeof runId !== 'string') continue;
    const rows = await store.query<{ step: number; path: string }>(
      'SELECT step, path FROM checkpoints WHERE run_id = $1 AND stage = $2 ORDER BY step',
      [runId, stage],
    );
    const from =
      stage === 'sft'
        ? [String(summary.traces ?? ''), String(summary.baseModel ?? '')].filter(Boolean)
        : [String(summary.sftModel ?? '')].filter(Boolean);
    for (const r of rows)
      entries.push({ kind: 'checkpoint', name: String(r.path), detail: `${arm} ${stage} step ${Number(r.step)}`, from });
  }
  if (typeof summary.finalModel === 'string')
    entries.push({
      kind: 'model',
      name: summary.finalModel,
      detail: `${arm} final model`,
      from: [String(summary.sftModel ?? '')].filter(Boolean),
    });
  return entries;
}

const MODELS = ['base', 'sft', 'final'] as const;

/** The latest version of each evaluation the arm's pipeline stored (`<arm id>-<model>-eval[-<benchmark>]`). */
async function evaluationsOf(store: Store, armId: string, arm: string): Promise<ReportEvaluation[]> {
  const rows = await store.query<{ name: string; version: number; params: string }>(
    `SELECT name, version, CAST(params AS VARCHAR) AS params FROM datasets d
     WHERE kind = 'evaluations' AND starts_with(name, $1)
       AND version = (SELECT max(version) FROM datasets e WHERE e.name = d.name)`,
    [`${armId}-`],
  );
  const out: ReportEvaluation[] = [];
  for (const r of rows) {
    const m = new RegExp(`^${escapeRegExp(armId)}-(base|sft|final)-eval(?:-(.+))?$`).exec(String(r.name));
    if (!m) continue;
    const p = JSON.parse(String(r.params ?? '{}')) as Record<string, unknown>;
    const num = (key: string): number | null => (typeof p[key] === 'number' ? (p[key] as number) : null);
    out.push({
      arm,
      model: m[1] as ReportEvaluation['model'],
      set: m[2] ?? 'held-out',
      evaluation: `${String(r.name)}@${Number(r.version)}`,
      tools: p.tools !== false,
      k: num('k') ?? num('samples') ?? 1,
      temperature: num('temperature') ?? 0,
      problems: num('problems') ?? 0,
      avgAtK: num('avgAtK') ?? 0,
      passAtK: num('passAtK') ?? 0,
      byLevel: (p.byLevel as ReportEvaluation['byLevel'] | undefined) ?? {},
      responseLength: num('responseLength'),
      codeRatio: num('codeRatio'),
      codeInvocationPosition: num('codeInvocationPosition'),
      codePassRate: num('codePassRate'),
      codeLines: num('codeLines'),
      passingCodeBlocks: num('passingCodeBlocks'),
      selfCorrectionRate: num('selfCorrectionRate'),
      codePurposes: (p.codePurposes as Record<string, number> | undefined) ?? {},
    });
  }
  const order = (e: ReportEvaluation) => `${e.set === 'held-out' ? 0 : 1}${e.set}${MODELS.indexOf(e.model)}`;
  return out.sort((a, b) => order(a).localeCompare(order(b)));
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** RL's change to the arm's answers, problem by problem, on each set both its SFT and final models were evaluated on. */
async function pairedChanges(store: Store, evaluations: ReportEvaluation[]): Promise<PairedChange[]> {
  const out: PairedChange[] = [];
  for (const sft of evaluations.filter((e) => e.model === 'sft')) {
    const final = evaluations.find((e) => e.model === 'final' && e.set === sft.set && e.arm === sft.arm);
    if (!final) continue;
    const [row] = await store.query<{ n: bigint; gained: bigint | null; lost: bigint | null }>(
      `SELECT count(*) AS n, sum(CASE WHEN f.correct AND NOT s.correct THEN 1 ELSE 0 END) AS gained,
              sum(CASE WHEN s.correct AND NOT f.correct THEN 1 ELSE 0 END) AS lost
       FROM evaluations s JOIN evaluations f ON f.problem_id = s.problem_id AND f.sample_idx = s.sample_idx
       WHERE s.eval_id = $1 AND f.eval_id = $2`,
      [sft.evaluation, final.evaluation],
    );
    if (!row || Number(row.n) === 0) continue;
    out.push({ arm: sft.arm, set: sft.set, problems: Number(row.n), gained: Number(row.gained ?? 0), lost: Number(row.lost ?? 0) });
  }
  return out;
}

/** One correct trajectory that used the tool and one wrong one, from the last RL step. */
async function samplesOf(store: Store, runId: string, datasetRef: string | undefined, arm: string): Promise<SampleTrajectory[]> {
  if (!datasetRef) return [];
  const dataset = await resolveDataset(store, datasetRef).catch(() => null);
  if (!dataset) return [];
  const rows = await store.query<Record<string, unknown>>(
    `WITH last AS (SELECT max(step) AS step FROM rollouts WHERE run_id = $1),
     picked AS (
       SELECT r.*, row_number() OVER (PARTITION BY r.correct ORDER BY r.tool_calls DESC, r.sample_idx) AS k
       FROM rollouts r, last WHERE r.run_id = $1 AND r.step = last.step)
     SELECT p.problem_id, p.answer, p.correct, CAST(p.turns AS VARCHAR) AS turns, q.problem, q.answer AS expected
     FROM picked p JOIN problems q ON q.dataset_id = $2 AND q.id = p.problem_id
     WHERE p.k = 1 ORDER BY p.correct DESC`,
    [runId, dataset.id],
  );
  return rows.map((r) => ({
    arm,
    problemId: String(r.problem_id),
    problem: String(r.problem),
    expected: String(r.expected),
    answer: r.answer === null ? null : String(r.answer),
    correct: Boolean(r.correct),
    turns: (JSON.parse(String(r.turns ?? '[]')) as { role: string; text: string }[]).filter((t) => t.role !== 'prompt'),
  }));
}

/** The report of a pipeline run, or of an experiment (its arms are the child pipeline runs). */
export async function collectReport(store: Store, runId: string): Promise<ReportData> {
  const run = await getRun(store, runId).catch(() => null);
  if (!run || (run.kind !== 'pipeline' && run.kind !== 'experiment'))
    throw new BadInputError(`no pipeline or experiment run "${runId}" in the store (see \`retool status\` for run ids)`);
  const armRuns =
    run.kind === 'experiment' ? ((run.summary?.arms as { workflowId: string }[] | undefined) ?? []).map((a) => a.workflowId) : [runId];
  const arms: ReportArm[] = [];
  const lineage: LineageEntry[] = [];
  const evaluations: ReportEvaluation[] = [];
  const samples: SampleTrajectory[] = [];
  const stageSeconds: Record<string, number> = {};
  const sandboxModes = new Set<string>();
  const backends = new Set<string>();
  for (const id of armRuns) {
    // The arm's stage runs (<id>-rl, <id>-sft-eval, ...) record the isolation their code ran under.
    // ... and the tensor backend they computed on.
    const modes = await store.query<{ mode: string | null; backend: string | null }>(
      `SELECT DISTINCT json_extract_string(summary, '$.sandbox') AS mode, backend FROM runs WHERE starts_with(run_id, $1)`,
      [`${id}-`],
    );
    for (const { mode, backend } of modes) {
      if (mode) sandboxModes.add(mode);
      if (backend) backends.add(backend);
    }
    const armRun = await getRun(store, id).catch(() => null);
    if (!armRun) continue;
    const s = armRun.summary ?? {};
    const tools = (s.arm ?? armRun.config.arm) !== 'text';
    const name = tools ? 'ReTool (code)' : 'text-only';
    const rlRunId = typeof s.rlRunId === 'string' ? s.rlRunId : `${id}-rl`;
    const evalSeries = await metricSeries(store, rlRunId, 'rl-eval');
    arms.push({
      name,
      tools,
      runId: id,
      sftAccuracy: typeof s.sftAccuracy === 'number' ? s.sftAccuracy : null,
      finalAccuracy: typeof s.accuracy === 'number' ? s.accuracy : null,
      byLevel: (s.byLevel as Record<string, number> | undefined) ?? {},
      rlSteps: typeof s.rlSteps === 'number' ? s.rlSteps : 0,
      accuracyCurve: evalSeries.filter((p) => p.values.accuracy !== undefined).map((p) => ({ step: p.step, accuracy: p.values.accuracy! })),
      evalBehaviour: evalSeries,
      trainBehaviour: await metricSeries(store, rlRunId, 'rl'),
    });
    evaluations.push(...(await evaluationsOf(store, id, name)));
    lineage.push(...(await lineageOf(store, s, name)));
    samples.push(...(await samplesOf(store, rlRunId, typeof s.dataset === 'string' ? s.dataset : undefined, name)));
    for (const [stage, seconds] of Object.entries((s.stageSeconds as Record<string, number> | undefined) ?? {}))
      stageSeconds[armRuns.length > 1 ? `${name}: ${stage}` : stage] = seconds;
  }
  return {
    title: run.kind === 'experiment' ? `ReTool vs text-only: ${runId}` : `ReTool pipeline: ${runId}`,
    runId,
    createdAt: new Date().toISOString(),
    status: run.status,
    preset: typeof run.config.preset === 'string' ? run.config.preset : null,
    config: run.config,
    arms,
    evaluations,
    rlVsSft: await pairedChanges(store, evaluations),
    lineage,
    samples,
    stageSeconds,
    sandbox: [...sandboxModes].sort(),
    backends: [...backends].sort(),
  };
}
