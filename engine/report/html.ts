// The run report as one self-contained HTML page: inline CSS and SVG, no scripts, no external
// loads, so it can be mailed around or opened from an artifact store as is.
import type { Plot } from './plots.js';
import type { ReportArm, ReportData, SampleTrajectory } from '../../domain/report-types.js';
import { behaviourTable, evaluationTable, pairedTable, pct, purposeTable, type Table } from './tables.js';

export function renderHtml(data: ReportData, plots: Plot[]): string {
  const sandbox = data.sandbox.length > 0 ? ` · code sandbox ${data.sandbox.join(', ')}` : '';
  const backends = data.backends.length > 0 ? ` · computed on ${data.backends.join(', ')}` : '';
  const when = `${data.status}${data.preset ? ` · preset ${data.preset}` : ''}${sandbox}${backends} · created ${data.createdAt}`;
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(data.title)}</title>
<style>${CSS}</style>
</head>
<body>
<header>
<h1>${esc(data.title)}</h1>
<p class="meta">Run <code>${esc(data.runId)}</code> · ${esc(when)}</p>
</header>
${summarySection(data.arms)}
${evaluationsSection(data)}
${plotsSection(plots)}
${stagesSection(data.stageSeconds)}
${lineageSection(data)}
${samplesSection(data.samples)}
<section>
<h2 id="config">Config</h2>
<pre class="config">${esc(toJson(data.config))}</pre>
</section>
</body>
</html>
`;
}

function summarySection(arms: ReportArm[]): string {
  const levels = [...new Set(arms.flatMap((a) => Object.keys(a.byLevel)))].sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
  const head = ['Arm', 'SFT accuracy', 'Final accuracy', ...levels.map((l) => `Level ${l}`), 'RL steps'];
  const rows = arms.map((a) => [
    esc(a.name),
    pct(a.sftAccuracy),
    pct(a.finalAccuracy),
    ...levels.map((l) => pct(a.byLevel[l])),
    String(a.rlSteps),
  ]);
  return `<section>
<h2 id="summary">Summary</h2>
${arms.length ? table(head, rows, 1) : '<p class="empty">No arms.</p>'}
</section>`;
}

function evaluationsSection(data: ReportData): string {
  if (data.evaluations.length === 0) return '';
  const asHtml = (t: Table) =>
    table(
      t.head,
      t.rows.map((r) => r.map(esc)),
      t.numericFrom,
    );
  const paired = data.rlVsSft.length
    ? `<h3>RL against SFT, paired problem by problem</h3>
${asHtml(pairedTable(data))}`
    : '';
  const behaviour = behaviourTable(data);
  const behaviourSection = behaviour
    ? `<h3>Behaviour</h3>
<p>The paper's Fig. 3 measures for each model with tools: code lines per block, correct code (blocks that ran without error, summed over the set), and self-correction (correct responses with a failing block followed by one that ran).</p>
${asHtml(behaviour)}`
    : '';
  const purposes = purposeTable(data);
  const purposeSection = purposes
    ? `<h3>What the code is for</h3>
<p>Each code block's purpose by a rule-based classifier over its syntax tree (calculation, verification, enumeration, equation solving, symbolic rewriting, simulation, data structures), as shares of the model's blocks.</p>
${asHtml(purposes)}`
    : '';
  return `<section>
<h2 id="evaluations">Evaluations</h2>
<p>avg@k: mean correctness over k samples per problem; pass@k: share of problems with a correct sample. Tokens: mean response length; code ratio: responses with code; first code at: where the first code block starts, as a share of the response; code pass: responses whose last code block ran without error.</p>
${asHtml(evaluationTable(data))}
${paired}
${behaviourSection}
${purposeSection}
</section>`;
}

function plotsSection(plots: Plot[]): string {
  const figures = plots.map(
    (p) => `<figure id="plot-${esc(p.name)}">
${scopeIds(p.svg, p.name)}
<figcaption>${esc(p.title)}</figcaption>
</figure>`,
  );
  return `<section>
<h2 id="plots">Plots</h2>
${figures.length ? figures.join('\n') : '<p class="empty">No curves recorded yet.</p>'}
</section>`;
}

function stagesSection(stageSeconds: Record<string, number>): string {
  const entries = Object.entries(stageSeconds);
  if (entries.length === 0) return '';
  return `<section>
<h2 id="stages">Stage timings</h2>
${table(
  ['Stage', 'Wall clock'],
  entries.map(([stage, s]) => [esc(stage), esc(duration(s))]),
  1,
)}
</section>`;
}

function lineageSection(data: ReportData): string {
  const rows = data.lineage.map((l) => [esc(l.kind), esc(l.name), esc(l.detail), esc(l.from.join(', '))]);
  return `<section>
<h2 id="lineage">Lineage</h2>
${rows.length ? table(['Kind', 'Name', 'Detail', 'From'], rows) : '<p class="empty">No lineage recorded.</p>'}
</section>`;
}

function samplesSection(samples: SampleTrajectory[]): string {
  return `<section>
<h2 id="samples">Sample trajectories</h2>
${samples.length ? samples.map(sample).join('\n') : '<p class="empty">No samples.</p>'}
</section>`;
}

function sample(s: SampleTrajectory): string {
  const badge = s.correct ? '<span class="badge ok">correct</span>' : '<span class="badge bad">incorrect</span>';
  return `<details class="sample" open>
<summary>${badge} <strong>${esc(s.arm)}</strong> · ${esc(s.problemId)} · expected <code>${esc(s.expected)}</code>, answered <code>${esc(s.answer ?? '—')}</code></summary>
<div class="problem">${esc(s.problem)}</div>
${s.turns.map(turn).join('\n')}
</details>`;
}

function turn(t: { role: string; text: string }): string {
  const role = t.role.replace(/[^a-z0-9_-]/gi, '') || 'other';
  const body = role === 'interpreter' ? interpreterBlock(t.text) : segments(t.text);
  return `<div class="turn turn-${role}"><div class="role">${esc(t.role)}</div>${body}</div>`;
}

// Model text interleaves prose, <code>```python ...```</code> calls and (when a whole rollout is
// stored as one turn) <interpreter>...</interpreter> feedback; an unclosed <code> is a truncated call.
const SEGMENT = /<code>([\s\S]*?)(?:<\/code>|$)|<interpreter>([\s\S]*?)(?:<\/interpreter>|$)/g;

function segments(text: string): string {
  let out = '';
  let last = 0;
  for (const m of text.matchAll(SEGMENT)) {
    if (m.index > last) out += prose(text.slice(last, m.index));
    out += m[1] !== undefined ? codeBlock(m[1]) : interpreterBlock(m[2]!);
    last = m.index + m[0].length;
  }
  if (last < text.length) out += prose(text.slice(last));
  return out;
}

function prose(text: string): string {
  return text.trim() ? `<div class="text">${esc(text.trim())}</div>` : '';
}

function codeBlock(code: string): string {
  const src = code.replace(/^\s*```[\w+-]*[ \t]*\n?/, '').replace(/\n?```\s*$/, '');
  return `<pre class="code"><code>${esc(src)}</code></pre>`;
}

function interpreterBlock(text: string): string {
  const out = text.replace(/^\s*<interpreter>/, '').replace(/<\/interpreter>\s*$/, '');
  return `<pre class="interpreter">${esc(out.trim())}</pre>`;
}

/** Cells are already-escaped HTML; the first `numericFrom` columns stay left-aligned. */
function table(head: string[], rows: string[][], numericFrom = Infinity): string {
  const cell = (tag: string, c: string, i: number) => `<${tag}${i >= numericFrom ? ' class="num"' : ''}>${c}</${tag}>`;
  return `<table>
<thead><tr>${head.map((h, i) => cell('th', esc(h), i)).join('')}</tr></thead>
<tbody>
${rows.map((r) => `<tr>${r.map((c, i) => cell('td', c, i)).join('')}</tr>`).join('\n')}
</tbody>
</table>`;
}

// Several SVGs share one document: vega numbers its clip paths per process, so make ids unique per plot.
function scopeIds(svg: string, scope: string): string {
  const p = scope.replace(/[^a-z0-9_-]/gi, '');
  return svg.replace(/\bid="([^"]+)"/g, `id="${p}-$1"`).replace(/url\(#([^)]+)\)/g, `url(#${p}-$1)`);
}

function duration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '—';
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const rest = String(s % 60).padStart(2, '0');
  return h ? `${h} h ${String(m).padStart(2, '0')} min` : `${m} min ${rest} s`;
}

function toJson(x: unknown): string {
  return JSON.stringify(x ?? null, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v), 2) ?? 'null';
}

export function esc(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');
}

const CSS = `
body{font:15px/1.5 system-ui,-apple-system,"Segoe UI","DejaVu Sans",sans-serif;max-width:1100px;margin:2rem auto;padding:0 1rem;color:#222}
h1{margin-bottom:.2rem}h2{border-bottom:1px solid #ddd;padding-bottom:.2rem;margin-top:2.2rem}
.meta{color:#666;margin-top:0}
table{border-collapse:collapse;margin:.5rem 0}
th,td{border:1px solid #ddd;padding:.3rem .6rem;text-align:left;vertical-align:top}
th{background:#f4f4f4}td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
figure{margin:1rem 0}figure svg{max-width:100%;height:auto}figcaption{color:#555;font-style:italic}
pre{white-space:pre-wrap;word-break:break-word;margin:.4rem 0;padding:.5rem .7rem;border-radius:4px;font:13px/1.4 ui-monospace,"DejaVu Sans Mono",monospace}
pre.config{background:#f6f8fa;border:1px solid #e1e4e8}
pre.code{background:#272822;color:#f8f8f2;border-left:4px solid #a6e22e}
pre.interpreter{background:#fff8e1;color:#5d4037;border-left:4px solid #ffb300}
.sample{border:1px solid #ddd;border-radius:6px;margin:.8rem 0;padding:.4rem .8rem}
.sample summary{cursor:pointer}
.problem{white-space:pre-wrap;margin:.6rem 0;padding:.5rem;background:#f4f4f4;border-radius:4px}
.turn{margin:.5rem 0;padding:.4rem .7rem;border-radius:4px}
.turn .role{font-size:12px;text-transform:uppercase;letter-spacing:.05em;color:#777}
.turn .text{white-space:pre-wrap}
.turn-prompt{background:#eef3fb}.turn-model{background:#f1f8f1}.turn-interpreter{background:#fffdf5}
.badge{display:inline-block;padding:0 .5rem;border-radius:9px;font-size:12px;font-weight:bold;color:#fff}
.badge.ok{background:#2e7d32}.badge.bad{background:#c62828}
.empty{color:#888;font-style:italic}
`;
