// A trace through the two-stage verification, as the fields of its stored row: shared by the
// cold start (a teacher's traces) and the import of trace files.
import { extractBoxed } from '../domain/grading.js';
import type { TraceRow } from '../datasets/traces.js';
import type { Sandbox } from '../engine/sandbox/index.js';
import { responseSegments } from '../engine/trace/format.js';
import { verifyTrace } from '../engine/trace/verify.js';

type VerifiedFields = Pick<TraceRow, 'response' | 'segments' | 'verified' | 'rejectStage' | 'rejectReason' | 'rejectDetail' | 'answer'>;

export async function verifiedTrace(
  trace: { problem: string; response: string; gold: string | null; mode: 'code' | 'text' },
  sandbox: Sandbox,
): Promise<VerifiedFields> {
  const verdict = await verifyTrace(trace.response, trace.gold, sandbox, { mode: trace.mode });
  return {
    response: trace.response,
    segments: [{ role: 'prompt', text: trace.problem }, ...responseSegments(trace.response)],
    verified: verdict.ok,
    rejectStage: verdict.ok ? null : verdict.stage,
    rejectReason: verdict.ok ? null : verdict.reason,
    rejectDetail: verdict.ok ? null : verdict.detail,
    answer: extractBoxed(trace.response),
  };
}

/** How many traces were rejected, per reason. */
export function rejectedByReason(rows: Pick<TraceRow, 'verified' | 'rejectReason'>[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const r of rows) if (!r.verified) counts[r.rejectReason!] = (counts[r.rejectReason!] ?? 0) + 1;
  return counts;
}
