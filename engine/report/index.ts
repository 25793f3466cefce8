// Writes a run report: the HTML page plus each plot as SVG and PNG beside it.
import { randomBytes } from 'node:crypto';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { renderHtml } from './html.js';
import { renderPlots } from './plots.js';
import { renderMarkdown } from './tables.js';
import type { ReportData } from '../../domain/report-types.js';

export type * from '../../domain/report-types.js';
export type { Plot } from './plots.js';
export { renderHtml } from './html.js';
export { renderPlots } from './plots.js';

/** Writes `outPath`, `<name>.md` (the result tables) and `<name>-<plot>.svg|.png` next to it; returns absolute paths. */
export async function writeReport(
  data: ReportData,
  outPath: string,
): Promise<{ html: string; markdown: string; pngs: string[]; svgs: string[] }> {
  const html = resolve(outPath);
  const dir = dirname(html);
  const stem = basename(html).replace(/\.html?$/i, '');
  await mkdir(dir, { recursive: true });
  const plots = await renderPlots(data);
  const svgs: string[] = [];
  const pngs: string[] = [];
  for (const plot of plots) {
    const svg = join(dir, `${stem}-${plot.name}.svg`);
    const png = join(dir, `${stem}-${plot.name}.png`);
    await writeAtomic(svg, plot.svg);
    await writeAtomic(png, plot.png);
    svgs.push(svg);
    pngs.push(png);
  }
  const markdown = join(dir, `${stem}.md`);
  await writeAtomic(markdown, renderMarkdown(data));
  // Last, so a page on disk always has its images beside it.
  await writeAtomic(html, renderHtml(data, plots));
  return { html, markdown, pngs, svgs };
}

/** Readers (a browser, a watcher) never see a half-written file: write aside, then rename. */
async function writeAtomic(path: string, content: string | Uint8Array): Promise<void> {
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    await writeFile(tmp, content);
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}
