// `retool bench sandbox`: a naive `python -c` spawn per call (the baseline) against the warm
// fork-server pool, for a trivial print and a ~20 ms compute snippet, at concurrency 1 and
// 2 x cores: runs/s, p50/p99 latency, and pool/naive ratios, all measured in one run.
import { cpus } from 'node:os';
import { execa } from 'execa';
import { Sandbox } from '../engine/sandbox/index.js';
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
  return { runs: total, runs_per_s: +(total / seconds).toFixed(1), p50_ms: +quantile(latencies, 0.5).toFixed(2), p99_ms: +quantile(latencies, 0.99).toFixed(2) };
}

export async function benchSandbox(opts: { runs: number; preload?: string[]; onProgress?: (what: string) => void }) {
  const wide = 2 * cpus().length;
  const sandbox = new Sandbox({ poolSize: wide, preload: opts.preload });
  await sandbox.warm();
  const results: Record<string, Record<string, { naive: Measured; pool: Measured; pool_vs_naive_runs_per_s: number }>> = {};
  try {
    for (const [name, code] of Object.entries(WORKLOADS)) {
      results[name] = {};
      for (const concurrency of [1, wide]) {
        opts.onProgress?.(`${name} at concurrency ${concurrency}`);
        const runs = name === 'trivial_print' ? opts.runs : Math.max(20, Math.floor(opts.runs / 2));
        const naive = await measure(runs, concurrency, async () => (await execa(VENV_PYTHON, ['-c', code], { reject: false })).exitCode === 0);
        const pool = await measure(runs, concurrency, async () => (await sandbox.run({ code })).status === 'ok');
        results[name]![`concurrency_${concurrency}`] = { naive, pool, pool_vs_naive_runs_per_s: +(pool.runs_per_s / naive.runs_per_s).toFixed(2) };
      }
    }
  } finally {
    await sandbox.close();
  }
  const trivial = results.trivial_print!;
  return {
    bench: 'sandbox',
    isolation: sandbox.isolation.mode,
    preload: opts.preload ?? DEFAULT_PRELOAD,
    lazy_preload: DEFAULT_LAZY_PRELOAD,
    pool_size: wide,
    machine: { cpus: cpus().length, cpu: cpus()[0]?.model ?? 'unknown', node: process.version },
    results,
    goals: {
      pool_p50_trivial_ms: { goal: 5, measured: trivial.concurrency_1!.pool.p50_ms, met: trivial.concurrency_1!.pool.p50_ms <= 5 },
      pool_vs_naive_runs_per_s: {
        goal: 5,
        measured: Math.min(...Object.values(trivial).map((r) => r.pool_vs_naive_runs_per_s)),
        met: Object.values(trivial).every((r) => r.pool_vs_naive_runs_per_s >= 5),
      },
    },
  };
}
