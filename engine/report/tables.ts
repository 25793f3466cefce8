// The report's result tables as plain cells, rendered as HTML (html.ts) and as Markdown
// (report.md, the form the README's table is pasted from).
import type { ReportData, ReportEvaluation } from '../../domain/report-types.js';
import { CODE_PURPOSES } from '../eval/code-purpose.js';
import { mcnemar } from '../eval/metrics.js';

export interface Table {
  head: string[];
  rows: string[][];
  /** Columns from this index on are numbers (right-aligned). */
  numericFrom: number;
}

const HARD_LEVELS = ['3', '4'];
const MODEL_NAMES: Record<ReportEvaluation['model'], string> = { base: 'base (zero-shot)', sft: 'cold-start SFT', final: 'after RL' };

export function pct(x: number | null | undefined): string {
  return typeof x === 'number' && Number.isFinite(x) ? `${(x * 100).toFixed(1)}%` : '—';
}

/** avg@k over the hard levels, weighted by their problem counts; null when the set has none. */
function hardAccuracy(e: ReportEvaluation): number | null {
  const levels = HARD_LEVELS.map((l) => e.byLevel[l]).filter((x) => x !== undefined);
  const problems = levels.reduce((a, l) => a + l.problems, 0);
  return problems === 0 ? null : levels.reduce((a, l) => a + l.avgAtK * l.problems, 0) / problems;
}

/** The paper's table: every model of every arm on every set, accuracy and behaviour. */
export function evaluationTable(data: ReportData): Table {
  const rlSteps = (arm: string) => data.arms.find((a) => a.name === arm)?.rlSteps ?? 0;
  const head = ['Arm', 'Model', 'Set', 'Tools', 'k', 'avg@k', 'pass@k', 'Levels 3-4', 'Tokens', 'Code ratio', 'First code at', 'Code pass'];
  const rows = data.evaluations.map((e) => [
    e.arm,
    e.model === 'final' ? `${MODEL_NAMES.final} (${rlSteps(e.arm)} steps)` : MODEL_NAMES[e.model],
    e.set === 'held-out' ? `held-out (${e.problems})` : `${e.set} (${e.problems})`,
    e.tools ? 'on' : 'off',
    e.k === 1 && e.temperature === 0 ? '1 (greedy)' : `${e.k} (T ${e.temperature})`,
    pct(e.avgAtK),
    pct(e.passAtK),
    pct(hardAccuracy(e)),
    e.responseLength === null ? '—' : e.responseLength.toFixed(0),
    pct(e.codeRatio),
    pct(e.codeInvocationPosition),
    pct(e.codePassRate),
  ]);
  return { head, rows, numericFrom: 4 };
}

/** RL against SFT, paired problem by problem. */
export function pairedTable(data: ReportData): Table {
  const head = ['Arm', 'Set', 'Pairs', 'Gained', 'Lost', 'McNemar z', 'p (exact)'];
  const rows = data.rlVsSft.map((c) => {
    const { z, p } = mcnemar(c.gained, c.lost);
    return [
      c.arm,
      c.set,
      String(c.problems),
      String(c.gained),
      String(c.lost),
      z === null ? '—' : z.toFixed(2),
      p < 1e-4 ? p.toExponential(1) : p.toFixed(4),
    ];
  });
  return { head, rows, numericFrom: 2 };
}

/**
 * The paper's behaviour measures (its Fig. 3) for every evaluation with tools, so SFT and the model
 * after RL sit side by side: length, code ratio, lines, correct (passing) blocks, pass rate, where
 * the first call sits, self-correction.
 */
export function behaviourTable(data: ReportData): Table | null {
  const withTools = data.evaluations.filter((e) => e.tools && e.model !== 'base');
  if (withTools.length === 0) return null;
  const num = (x: number | null, digits: number) => (x === null ? '—' : x.toFixed(digits));
  const rows = withTools.map((e) => [
    e.arm,
    MODEL_NAMES[e.model],
    e.set,
    num(e.responseLength, 0),
    pct(e.codeRatio),
    num(e.codeLines, 2),
    num(e.passingCodeBlocks, 0),
    pct(e.codePassRate),
    pct(e.codeInvocationPosition),
    pct(e.selfCorrectionRate),
  ]);
  const head = [
    'Arm',
    'Model',
    'Set',
    'Tokens',
    'Code ratio',
    'Code lines',
    'Correct code',
    'Code pass',
    'First code at',
    'Self-correction',
  ];
  return { head, rows, numericFrom: 3 };
}

/** What each model's code is for, as shares of its blocks: the paper's purpose breakdown before and after RL. */
export function purposeTable(data: ReportData): Table | null {
  const withCode = data.evaluations.filter((e) => Object.keys(e.codePurposes).length > 0);
  if (withCode.length === 0) return null;
  const purposes = CODE_PURPOSES.filter((p) => withCode.some((e) => e.codePurposes[p]));
  const rows = withCode.map((e) => {
    const blocks = Object.values(e.codePurposes).reduce((a, b) => a + b, 0);
    return [e.arm, MODEL_NAMES[e.model], e.set, String(blocks), ...purposes.map((p) => pct((e.codePurposes[p] ?? 0) / blocks))];
  });
  return { head: ['Arm', 'Model', 'Set', 'Code blocks', ...purposes], rows, numericFrom: 3 };
}

export function markdownTable(t: Table): string {
  const line = (cells: string[]) => `| ${cells.map((c) => c.replace(/\|/g, '\\|')).join(' | ')} |`;
  return [line(t.head), line(t.head.map((_, i) => (i >= t.numericFrom ? '---:' : '---'))), ...t.rows.map(line)].join('\n');
}

/** report.md: the run's tables, for a README or a note. */
export function renderMarkdown(data: ReportData): string {
  const parts = [
    `# ${data.title}`,
    '',
    `Run \`${data.runId}\`, ${data.status}${data.preset ? `, preset ${data.preset}` : ''}, ${data.createdAt}.`,
    '',
  ];
  if (data.evaluations.length) parts.push('## Evaluations', '', markdownTable(evaluationTable(data)), '');
  if (data.rlVsSft.length) parts.push('## RL against SFT, paired', '', markdownTable(pairedTable(data)), '');
  const behaviour = behaviourTable(data);
  if (behaviour) parts.push("## Behaviour (the paper's Fig. 3 measures)", '', markdownTable(behaviour), '');
  const purposes = purposeTable(data);
  if (purposes) parts.push('## What the code is for', '', markdownTable(purposes), '');
  return `${parts.join('\n')}\n`;
}
