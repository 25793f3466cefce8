// Stage 1: cold-start synthesis. Problems -> teacher traces -> two-stage verification -> a trace
// dataset in the store, rejected traces kept with their reason, counts per reason in its params.
import { z } from 'zod';
import { BadInputError } from '../domain/errors.js';
import { problemsForStage } from '../datasets/problems-io.js';
import type { StoreAccess } from '../datasets/store.js';
import { writeTraceDataset, type TraceRow } from '../datasets/traces.js';
import type { Sandbox } from '../engine/sandbox/index.js';
import { mapConcurrent } from '../engine/util/concurrency.js';
import { BuiltinTeacher } from '../engine/coldstart/builtin-teacher.js';
import { OpenAITeacher } from '../engine/coldstart/openai-teacher.js';
import { OpenAITeacherOptionsSchema } from '../engine/coldstart/options.js';
import { isFailure, type Teacher, type TeacherProblem } from '../engine/coldstart/teacher.js';
import { ColdStartOptionsSchema, type ColdStartOptions } from './options.js';
import { rejectedByReason, verifiedTrace } from './verified-trace.js';

export interface ColdStartSummary {
  dataset: string;
  source: string;
  teacher: string;
  mode: 'code' | 'text';
  problems: number;
  kept: number;
  rejected: number;
  rejectedByReason: Record<string, number>;
  /** Built-in teacher only: how many traces it spoiled on purpose, per defect, and how many verification caught. */
  seeded: Record<string, { seeded: number; rejected: number }>;
  selfCorrections: number;
  teacherFailures: number;
  /** The built-in `paper` style: traces written and kept per strategy. */
  strategies: Record<string, { written: number; kept: number }>;
  seconds: number;
}

export function makeTeacher(opts: z.output<typeof ColdStartOptionsSchema>, sandbox: Sandbox): Teacher {
  if (opts.teacher === 'builtin') return new BuiltinTeacher(sandbox, { seed: opts.seed, rates: opts.rates, style: opts.style });
  const { apiKeyEnv, ...openai } = opts.openai ?? {};
  if (apiKeyEnv && !process.env[apiKeyEnv])
    throw new BadInputError(`teacher.apiKeyEnv: the environment variable ${apiKeyEnv} is not set where the cold start runs`);
  const apiKey = openai.apiKey ?? (apiKeyEnv ? process.env[apiKeyEnv] : undefined);
  return new OpenAITeacher(OpenAITeacherOptionsSchema.parse({ ...openai, apiKey, seed: opts.seed }));
}

export async function coldStart(
  useStore: StoreAccess,
  sandbox: Sandbox,
  options: ColdStartOptions,
  onProgress?: (done: number, total: number) => void,
  teacher?: Teacher,
): Promise<ColdStartSummary> {
  const opts = ColdStartOptionsSchema.parse(options);
  const started = performance.now();
  const { dataset, source, rows: problemRows } = await useStore((s) => problemsForStage(s, opts.dataset, 'train'));
  const problems: TeacherProblem[] = problemRows
    .slice(0, opts.limit ?? problemRows.length)
    .map((r) => ({ id: r.id, problem: r.problem, answer: r.answer, family: r.family, level: r.level }));
  if (problems.length === 0) throw new BadInputError(`${source} holds no problems`);
  const writer = teacher ?? makeTeacher(opts, sandbox);
  let done = 0;
  let rows: TraceRow[];
  const strategyOf = new Map<string, string>();
  try {
    rows = await mapConcurrent(problems, opts.concurrency, async (p): Promise<TraceRow> => {
      const trace = await writer.write(p, opts.mode);
      const base = {
        problemId: p.id,
        problem: p.problem,
        family: p.family,
        level: p.level,
        gold: p.answer,
        mode: opts.mode,
        teacher: writer.name,
      };
      let row: TraceRow;
      if (isFailure(trace)) {
        row = {
          ...base,
          response: '',
          segments: [],
          verified: false,
          rejectStage: 'teacher',
          rejectReason: 'teacher_failed',
          rejectDetail: trace.error,
          answer: null,
          seededDefect: null,
          selfCorrection: false,
        };
      } else {
        if (trace.strategy) strategyOf.set(p.id, trace.strategy);
        row = {
          ...base,
          ...(await verifiedTrace({ problem: p.problem, response: trace.response, gold: p.answer, mode: opts.mode }, sandbox)),
          seededDefect: trace.seededDefect,
          selfCorrection: trace.selfCorrection,
        };
      }
      onProgress?.(++done, problems.length);
      return row;
    });
  } finally {
    await writer.close?.();
  }
  const seeded: ColdStartSummary['seeded'] = {};
  for (const r of rows) {
    if (r.seededDefect) {
      const s = (seeded[r.seededDefect] ??= { seeded: 0, rejected: 0 });
      s.seeded += 1;
      if (!r.verified) s.rejected += 1;
    }
  }
  const strategies: ColdStartSummary['strategies'] = {};
  for (const r of rows) {
    const strategy = strategyOf.get(r.problemId);
    if (!strategy) continue;
    const s = (strategies[strategy] ??= { written: 0, kept: 0 });
    s.written += 1;
    if (r.verified) s.kept += 1;
  }
  const kept = rows.filter((r) => r.verified).length;
  const summary = {
    source,
    teacher: writer.name,
    mode: opts.mode,
    problems: problems.length,
    kept,
    rejected: rows.length - kept,
    rejectedByReason: rejectedByReason(rows),
    seeded,
    selfCorrections: rows.filter((r) => r.verified && r.selfCorrection).length,
    teacherFailures: rows.filter((r) => r.rejectStage === 'teacher').length,
    strategies,
  };
  const out = await useStore((s) =>
    writeTraceDataset(
      s,
      {
        name: opts.out,
        parent: dataset,
        newVersion: opts.newVersion,
        params: {
          ...summary,
          seed: opts.seed,
          openai: opts.openai ? { baseUrl: opts.openai.baseUrl, model: opts.openai.model } : undefined,
        },
      },
      rows,
    ),
  );
  return { dataset: `${out.name}@${out.version}`, ...summary, seconds: (performance.now() - started) / 1000 };
}
