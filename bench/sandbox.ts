// `retool bench sandbox`: a naive `python -c` spawn per call (the baseline) against the warm
// fork-server pool in each isolation mode, for a trivial print and a ~20 ms compute snippet, at
// concurrency 1 and 2 x cores: runs/s, p50/p99 latency, and pool/naive ratios, all in one run.
import { cpus } from 'node:os';
import { execa } from 'execa';
import { availableModes, Sandbox, type IsolationMode } from '../engine/sandbox/index.js';
import { VENV_PYTHON } from '../engine/sandbox/isolation.js';
import { DEFAULT_LAZY_PRELOAD, DEFAULT_PRELOAD } from '../engine/sandbox/python-pool.js';

export const WORKLOADS = {
  trivial_print: 'print(42)',
  compute_20ms: 'print(sum(i * i for i in range(250_000)))',
} as const;

interface Measured {
  runs: number;
  runs_per_s: number;
  p50_ms: number;
  p99_ms: number;
}

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

/** Runs `total` calls with `concurrency` in flight; latency per call, throughput overall. */
async function measure(total: number, concurrency: number, call: () => Promise<boolean>): Promise<Measured> {
  const latencies: number[] = [];
  let next = 0;
  let failures = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < total) {
        next += 1;
        const t = performance.now();
        if (!(await call())) failures += 1;
        latencies.push(performance.now() - t);
      }
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  if (failures > 0) throw new Error(`${failures} of ${total} benchmark runs failed`);
  latencies.sort((a, b) => a - b);
  return {
    runs: total,
    runs_per_s: +(total / seconds).toFixed(1),
    p50_ms: +quantile(latencies, 0.5).toFixed(2),
    p99_ms: +quantile(latencies, 0.99).toFixed(2),
  };
}

type PoolCell = {
  naive: Measured;
  pool: Partial<Record<IsolationMode, Measured>>;
  pool_vs_naive_runs_per_s: Partial<Record<IsolationMode, number>>;
};

/**
 * Each isolation mode's pool (default: every mode this machine has) against the same naive
 * baseline, cell by cell, so the modes are compared within one run on the same machine state.
 */
export async function benchSandbox(opts: {
  runs: number;
  preload?: string[];
  modes?: IsolationMode[];
  onProgress?: (what: string) => void;
}) {
  const wide = 2 * cpus().length;
  const modes = opts.modes ?? availableModes();
  const sandboxes = new Map<IsolationMode, Sandbox>();
  const warmMs: Partial<Record<IsolationMode, number>> = {};
  const results: Record<string, Record<string, PoolCell>> = {};
  try {
    for (const mode of modes) {
      const sandbox = new Sandbox({ poolSize: wide, preload: opts.preload, isolation: mode });
      sandboxes.set(mode, sandbox);
      const t = performance.now();
      await sandbox.warm();
      warmMs[mode] = +(performance.now() - t).toFixed(1);
    }
    for (const [name, code] of Object.entries(WORKLOADS)) {
      results[name] = {};
      for (const concurrency of [1, wide]) {
        opts.onProgress?.(`${name} at concurrency ${concurrency}`);
        const runs = name === 'trivial_print' ? opts.runs : Math.max(20, Math.floor(opts.runs / 2));
        const naive = await measure(
          runs,
          concurrency,
          async () => (await execa(VENV_PYTHON, ['-c', code], { reject: false })).exitCode === 0,
        );
        const cell: PoolCell = { naive, pool: {}, pool_vs_naive_runs_per_s: {} };
        for (const [mode, sandbox] of sandboxes) {
          const pool = await measure(runs, concurrency, async () => (await sandbox.run({ code })).status === 'ok');
          cell.pool[mode] = pool;
          cell.pool_vs_naive_runs_per_s[mode] = +(pool.runs_per_s / naive.runs_per_s).toFixed(2);
        }
        results[name]![`concurrency_${concurrency}`] = cell;
      }
    }
  } finally {
    await Promise.all([...sandboxes.values()].map((s) => s.close()));
  }
  const trivial = Object.values(results.trivial_print!);
  const goals = Object.fromEntries(
    modes.map((mode) => {
      const p50 = trivial[0]!.pool[mode]!.p50_ms;
      const ratios = trivial.map((cell) => cell.pool_vs_naive_runs_per_s[mode]!);
      return [
        mode,
        {
          pool_p50_trivial_ms: { goal: 5, measured: p50, met: p50 <= 5 },
          pool_vs_naive_runs_per_s: { goal: 5, measured: Math.min(...ratios), met: ratios.every((r) => r >= 5) },
        },
      ];
    }),
  );
  return {
    bench: 'sandbox',
    modes,
    preload: opts.preload ?? DEFAULT_PRELOAD,
    lazy_preload: DEFAULT_LAZY_PRELOAD,
    pool_size: wide,
    pool_warm_ms: warmMs,
    machine: { cpus: cpus().length, cpu: cpus()[0]?.model ?? 'unknown', node: process.version },
    results,
    goals,
  };
}
