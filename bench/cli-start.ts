// `retool bench cli`: how long `retool` takes to start, for the commands that touch no model, from
// the compiled dist/ (what bin/retool.js runs while dist/ is fresh) against the baseline of the
// TypeScript sources through tsx (what it runs otherwise, RETOOL_FROM_SOURCES=1), in one run with
// the two interleaved. Commands that need a server (status, schedule list) are timed up to the
// connection: their start (`--help`) plus the modules their actions load first, each in a fresh
// process, less one bare `node` start.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { median } from './stats.js';

export interface BenchCliOptions {
  runs: number;
  onProgress?: (what: string) => void;
}

interface Timing {
  median_s: number;
  runs_s: number[];
}

interface Freshness {
  distState(root: string): { fresh: boolean; reason: string | null };
  scanSources(root: string): { newest: number; newestFile: string; files: number };
}

/** The checkout: the nearest folder with a package.json (bench/ in the sources, dist/bench/ built). */
function projectRoot(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  for (let dir = here; dirname(dir) !== dir; dir = dirname(dir)) if (existsSync(join(dir, 'package.json'))) return dir;
  return join(here, '..');
}

const round = (s: number) => +s.toFixed(3);

function timing(runs: number[]): Timing {
  return { median_s: round(median(runs)), runs_s: runs.map(round) };
}

/** One process, wall time from spawn to exit; its exit code must be `exit`. */
function timeOnce(argv: string[], env: Record<string, string>, exit: number): number {
  const t0 = performance.now();
  const r = spawnSync(process.execPath, argv, { env: { ...process.env, ...env }, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  const seconds = (performance.now() - t0) / 1000;
  if (r.status !== exit)
    throw new Error(
      `node ${argv.join(' ')} exited ${r.status ?? r.signal}, not ${exit}: ${r.stderr.trim().split('\n').slice(-3).join(' | ')}`,
    );
  return seconds;
}

export async function benchCli(opts: BenchCliOptions) {
  const root = projectRoot();
  const freshness = (await import(pathToFileURL(join(root, 'bin', 'freshness.mjs')).href)) as Freshness;
  const state = freshness.distState(root);
  if (!state.fresh) throw new Error(`${state.reason}: build it first (npm run build), or this measures tsx twice`);
  const bin = join(root, 'bin', 'retool.js');
  const home = mkdtempSync(join(tmpdir(), 'retool-bench-cli-'));
  try {
    const modes = { dist: { RETOOL_FROM_SOURCES: '0' }, sources: { RETOOL_FROM_SOURCES: '1' } } as const;
    // A real dataset for `data show` (and a store for `data list`), made once, outside the timing.
    timeOnce([bin, 'data', 'synth', '--name', 'bench', '--count', '50', '--seed', '1', '--home', home], {}, 0);
    const commands: { name: string; args: string[]; exit?: number }[] = [
      { name: 'help', args: ['--help'] },
      { name: 'grade', args: ['grade', '--pred', 'so the answer is \\boxed{42}', '--gold', '42'] },
      { name: 'grade --help', args: ['grade', '--help'] },
      { name: 'data list', args: ['data', 'list', '--home', home] },
      { name: 'data show', args: ['data', 'show', 'bench', '--limit', '5', '--home', home] },
      { name: 'status --help', args: ['status', '--help'] },
      { name: 'schedule list --help', args: ['schedule', 'list', '--help'] },
    ];
    // What status and schedule list load in their actions before they connect.
    const actionImports: Record<string, string[]> = {
      status: ['worker/temporal', 'cli/status', 'cli/live-progress'],
      'schedule list': ['worker/temporal', 'cli/schedules'],
    };
    const importArgv = (mode: keyof typeof modes, modules: string[]) => {
      const files = modules.map((m) => pathToFileURL(join(root, mode === 'dist' ? `dist/${m}.js` : `${m}.ts`)).href);
      const code = files.map((f) => `await import(${JSON.stringify(f)});`).join(' ');
      return [...(mode === 'sources' ? ['--import', 'tsx'] : []), '--input-type=module', '-e', code];
    };

    const runs: Record<string, Record<keyof typeof modes, number[]>> = {};
    const node: number[] = [];
    for (let i = 0; i < opts.runs; i += 1) {
      opts.onProgress?.(`run ${i + 1}/${opts.runs}`);
      node.push(timeOnce(['-e', '0'], {}, 0));
      for (const c of commands) {
        for (const [mode, env] of Object.entries(modes) as [keyof typeof modes, Record<string, string>][]) {
          (runs[c.name] ??= { dist: [], sources: [] })[mode].push(timeOnce([bin, ...c.args], env, c.exit ?? 0));
        }
      }
      for (const [name, modules] of Object.entries(actionImports)) {
        for (const mode of Object.keys(modes) as (keyof typeof modes)[]) {
          (runs[`${name}: action imports`] ??= { dist: [], sources: [] })[mode].push(timeOnce(importArgv(mode, modules), {}, 0));
        }
      }
    }

    const nodeStart = median(node);
    const result: Record<string, { dist: Timing; sources: Timing; speedup: number }> = {};
    for (const [name, byMode] of Object.entries(runs)) {
      result[name] = {
        dist: timing(byMode.dist),
        sources: timing(byMode.sources),
        speedup: +(median(byMode.sources) / median(byMode.dist)).toFixed(2),
      };
    }
    // Up to the connection: the command's start, then its action's imports (less their own node start).
    const beforeConnect: Record<string, { dist_s: number; sources_s: number }> = {};
    for (const [name, help] of [
      ['status', 'status --help'],
      ['schedule list', 'schedule list --help'],
    ] as const) {
      const imports = result[`${name}: action imports`]!;
      beforeConnect[name] = {
        dist_s: round(result[help]!.dist.median_s + imports.dist.median_s - nodeStart),
        sources_s: round(result[help]!.sources.median_s + imports.sources.median_s - nodeStart),
      };
    }
    const scans: number[] = [];
    for (let i = 0; i < 20; i += 1) {
      const t0 = performance.now();
      freshness.scanSources(root);
      scans.push(performance.now() - t0);
    }
    return {
      runs: opts.runs,
      machine: { cpus: cpus().length, node: process.version, loadavg_1m: +loadavg()[0]!.toFixed(2) },
      node_start_s: timing(node),
      freshness_check_ms: +median(scans).toFixed(2),
      commands: result,
      before_connect: beforeConnect,
    };
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
}
