// Report figures (after the ReTool paper's Fig. 1 and Fig. 3) as vega-lite specs, rendered
// headless to SVG and PNG. No canvas: vega estimates text widths, resvg draws the text.
import { Resvg } from '@resvg/resvg-js';
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import type { ReportArm, ReportData } from '../../domain/report-types.js';

export interface Plot {
  /** File-safe, e.g. 'accuracy'. */
  name: string;
  title: string;
  svg: string;
  png: Uint8Array | Buffer;
}

// One font for both renderers, so the SVG's text measurements match what resvg draws.
const FONT = 'DejaVu Sans';
const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f'];

// The paper's Fig. 3 panels, in its order.
const EVAL_METRICS = [
  'response_length',
  'code_ratio',
  'code_lines',
  'passing_code_blocks',
  'code_pass_rate',
  'code_invocation_position',
  'self_correction_rate',
];
const TRAIN_METRICS = ['reward_mean', 'accuracy', 'response_length', 'code_ratio', 'tool_calls', 'entropy'];
const METRIC_LABELS: Record<string, string> = {
  response_length: 'Response length (tokens)',
  code_ratio: 'Code ratio',
  code_invocation_position: 'Code invocation position',
  code_lines: 'Code lines per response with code',
  passing_code_blocks: 'Code blocks that ran (whole set)',
  code_pass_rate: 'Code pass rate',
  self_correction_rate: 'Self-correction rate',
  reward_mean: 'Mean reward',
  accuracy: 'Accuracy',
  tool_calls: 'Tool calls per response',
  entropy: 'Entropy',
};

/** Panels whose values are shares of responses or of code blocks. */
const SHARES = new Set(['code_ratio', 'code_pass_rate', 'code_invocation_position', 'self_correction_rate', 'accuracy'].map(label));

interface Row {
  arm: string;
  step: number;
  value: number;
  metric?: string;
}

/** Renders every plot that has data; plots without any points are left out. */
export async function renderPlots(data: ReportData): Promise<Plot[]> {
  const specs = [
    accuracySpec(data),
    metricsSpec(data, 'behaviour', 'Behaviour during RL (held-out, greedy)', EVAL_METRICS, (a) => a.evalBehaviour),
    metricsSpec(data, 'training', 'Training rollouts per RL step', TRAIN_METRICS, (a) => a.trainBehaviour),
  ];
  const plots: Plot[] = [];
  for (const s of specs) {
    if (!s) continue;
    const svg = await toSvg(s.spec);
    plots.push({ name: s.name, title: s.title, svg, png: toPng(svg) });
  }
  return plots;
}

interface NamedSpec {
  name: string;
  title: string;
  spec: TopLevelSpec;
}

/** Fig. 1: held-out accuracy over RL steps, with each arm's SFT accuracy as a dashed rule. */
function accuracySpec(data: ReportData): NamedSpec | null {
  const rows: Row[] = data.arms.flatMap((a) =>
    a.accuracyCurve.filter((p) => isNum(p.step) && isNum(p.accuracy)).map((p) => ({ arm: a.name, step: p.step, value: p.accuracy })),
  );
  if (rows.length === 0) return null;
  const present = new Set(rows.map((r) => r.arm));
  const sft = data.arms
    .filter((a) => present.has(a.name) && a.sftAccuracy !== null && isNum(a.sftAccuracy))
    .map((a) => ({ arm: a.name, value: a.sftAccuracy as number }));
  const max = Math.max(...rows.map((r) => r.value), ...sft.map((r) => r.value));
  // Round up to the next 10% so the top point is not glued to the frame; never past 100%.
  const top = Math.min(1, Math.max(0.1, Math.ceil(max * 10 + 1e-9) / 10));
  const y = { field: 'value', type: 'quantitative' as const, title: 'Accuracy', scale: { domain: [0, top] }, axis: { format: '.0%' } };
  const color = colorEncoding(data, present);
  const title = 'Held-out accuracy during RL';
  const spec: TopLevelSpec = {
    ...base(title),
    width: 480,
    height: 300,
    layer: [
      {
        data: { values: rows },
        mark: { type: 'line', point: true },
        encoding: { x: stepAxis(), y, color },
      },
      ...(sft.length
        ? [{ data: { values: sft }, mark: { type: 'rule' as const, strokeDash: [5, 4], opacity: 0.7 }, encoding: { y, color } }]
        : []),
    ],
  };
  return { name: 'accuracy', title, spec };
}

/** Fig. 3-style small multiples: one panel per metric that some arm reports, one line per arm. */
function metricsSpec(
  data: ReportData,
  name: string,
  title: string,
  metrics: string[],
  series: (a: ReportArm) => { step: number; values: Record<string, number> }[],
): NamedSpec | null {
  const rows: Row[] = [];
  for (const arm of data.arms) {
    for (const point of series(arm)) {
      for (const metric of metrics) {
        const value = point.values[metric];
        if (isNum(point.step) && isNum(value)) rows.push({ arm: arm.name, step: point.step, value, metric: label(metric) });
      }
    }
  }
  if (rows.length === 0) return null;
  const present = new Set(rows.map((r) => r.arm));
  const panels = metrics.map(label).filter((m) => rows.some((r) => r.metric === m));
  // One panel per metric on its own scale (tokens vs ratios); shares from 0, so a flat line at
  // 100% reads as such rather than as an axis of one tick.
  const spec: TopLevelSpec = {
    ...base(title),
    data: { values: rows },
    columns: 3,
    concat: panels.map((panel) => ({
      title: panel,
      width: 220,
      height: 160,
      transform: [{ filter: { field: 'metric', equal: panel } }],
      mark: { type: 'line', point: { size: 20 } },
      encoding: {
        x: stepAxis(),
        y: SHARES.has(panel)
          ? { field: 'value', type: 'quantitative', title: null, scale: { zero: true }, axis: { format: '.1~%' } }
          : { field: 'value', type: 'quantitative', title: null, scale: { zero: false }, axis: { format: ',~f' } },
        color: colorEncoding(data, present),
      },
    })),
    resolve: { scale: { y: 'independent' } },
  };
  return { name, title, spec };
}

function base(title: string) {
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title,
    background: 'white',
    config: { font: FONT, legend: { orient: 'bottom' as const, title: null } },
  };
}

function stepAxis() {
  return { field: 'step', type: 'quantitative', title: 'RL step', axis: { tickMinStep: 1, format: 'd' } } as const;
}

/** Colours fixed by the arm's position in the report, so an arm keeps its colour across plots. */
function colorEncoding(data: ReportData, present: Set<string>) {
  const arms = data.arms.map((a, i) => ({ name: a.name, color: PALETTE[i % PALETTE.length]! }));
  const shown = arms.filter((a) => present.has(a.name));
  return {
    field: 'arm',
    type: 'nominal' as const,
    title: null,
    scale: { domain: shown.map((a) => a.name), range: shown.map((a) => a.color) },
  };
}

function label(metric: string): string {
  return METRIC_LABELS[metric] ?? metric;
}

function isNum(x: unknown): x is number {
  return typeof x === 'number' && Number.isFinite(x);
}

async function toSvg(spec: TopLevelSpec): Promise<string> {
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

function toPng(svg: string): Buffer {
  const resvg = new Resvg(svg, {
    fitTo: { mode: 'zoom', value: 2 },
    font: { loadSystemFonts: true, defaultFontFamily: FONT },
  });
  return resvg.render().asPng();
}
