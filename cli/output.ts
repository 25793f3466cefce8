import { createRequire } from 'node:module';
import type * as CliProgress from 'cli-progress';
import { ZodError } from 'zod';
import { BadInputError, StoreBusyError } from '../domain/errors.js';
// The modules that define these errors, not the heavy ones that re-export them (the Temporal
// client, the sandbox pool): every command loads this file, most never need those.
import { TemporalServerError } from '../worker/common.js';
import { SandboxUnavailableError } from '../engine/sandbox/isolation.js';

const require = createRequire(import.meta.url);

export interface CommonOptions {
  json?: boolean;
  home?: string;
}

/** Prints `value` as JSON with --json, else the human rendering. */
export function emit(opts: CommonOptions, value: unknown, human: () => string): void {
  process.stdout.write(opts.json ? `${JSON.stringify(value, bigintSafe, 2)}\n` : `${human()}\n`);
}

function bigintSafe(_key: string, value: unknown): unknown {
  return typeof value === 'bigint' ? value.toString() : value;
}

/** A plain text table: a header row and left-aligned columns. */
/** A share as a percentage with one decimal; '-' when there is none. */
export function pct(x: number | null | undefined): string {
  return x === null || x === undefined ? '-' : `${(100 * x).toFixed(1)}%`;
}

export function table(rows: Record<string, unknown>[], columns: string[]): string {
  const cell = (v: unknown) =>
    (v === null || v === undefined ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v)).replace(/\s+/g, ' ');
  const widths = columns.map((c) => Math.min(80, Math.max(c.length, ...rows.map((r) => cell(r[c]).length))));
  const line = (vals: string[]) =>
    vals
      .map((v, i) => (v.length > widths[i]! ? `${v.slice(0, widths[i]! - 1)}…` : v.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(columns), line(widths.map((w) => '-'.repeat(w))), ...rows.map((r) => line(columns.map((c) => cell(r[c]))))].join('\n');
}

/**
 * One place that turns errors into exit codes: 2 with the message alone for input a person can
 * fix (bad file, unknown dataset, busy store, invalid options, an unusable Temporal server), 1
 * with the stack for bugs.
 */
export function reportError(err: unknown): number {
  if (
    err instanceof BadInputError ||
    err instanceof StoreBusyError ||
    err instanceof TemporalServerError ||
    err instanceof SandboxUnavailableError
  ) {
    process.stderr.write(`retool: ${err.message}\n`);
    return 2;
  }
  if (err instanceof ZodError) {
    const lines = err.issues.map((i) => `  ${i.path.join('.') || '(input)'}: ${i.message}`);
    process.stderr.write(`retool: invalid options:\n${lines.join('\n')}\n`);
    return 2;
  }
  if (err instanceof Error && err.name === 'CommanderError') return (err as Error & { exitCode: number }).exitCode;
  process.stderr.write(`retool: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  return 1;
}

export function parseList(text: string): string[] {
  return text
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

export function parseNumber(name: string) {
  return (text: string): number => {
    const n = Number(text);
    if (text.trim() === '' || !Number.isFinite(n)) throw new BadInputError(`${name} must be a number, got "${text}"`);
    return n;
  };
}

/** A progress bar on stderr for a person at a terminal; silent under --json or when piped. */
export function progressBar(opts: CommonOptions, label: string, unit = 'rows') {
  if (opts.json || !process.stderr.isTTY) return { update: () => {}, stop: () => {} };
  const { Presets, SingleBar } = require('cli-progress') as typeof CliProgress;
  const bar = new SingleBar(
    { format: `${label} [{bar}] {percentage}% {value}/{total} ${unit}`, stream: process.stderr },
    Presets.shades_classic,
  );
  let started = false;
  return {
    update(done: number, total: number) {
      if (!started) bar.start(total, 0);
      started = true;
      bar.update(done);
    },
    stop: () => started && bar.stop(),
  };
}

/**
 * Runs a job that verifies traces in a sandbox (`synth`, `data import --kind traces`) behind a
 * progress bar, then prints its headline and the rejections by reason.
 */
export async function runTraceVerification<S extends { rejectedByReason: Record<string, number> }>(
  opts: CommonOptions,
  label: string,
  work: (sandbox: import('../engine/sandbox/index.js').Sandbox, onProgress: (done: number, total: number) => void) => Promise<S>,
  headline: (summary: S) => string,
): Promise<void> {
  // The sandbox loads here, not when the CLI starts.
  const { Sandbox } = await import('../engine/sandbox/index.js');
  const bar = progressBar(opts, label, 'traces');
  const sandbox = new Sandbox();
  try {
    const summary = await work(sandbox, bar.update);
    bar.stop();
    emit(opts, summary, () =>
      [
        headline(summary),
        table(
          Object.entries(summary.rejectedByReason).map(([reason, n]) => ({ reason, rejected: n })),
          ['reason', 'rejected'],
        ),
      ].join('\n'),
    );
  } finally {
    bar.stop();
    await sandbox.close();
  }
}
