// `retool bench model` across backends: each backend (and each native thread count) is measured in
// a process of its own, so its threads, its load time and its peak RSS are its own; the PyTorch
// peer runs once per model, at 1 and at all threads. The summary puts the three side by side.
import { availableParallelism, cpus, platform, arch } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { PROJECT_ROOT } from '../engine/util/project-root.js';
import type { BackendName } from '../engine/tensor/backend-names.js';
import { FORMULAS, torchPeer, type BenchSubject, type TorchRun } from './model.js';

export interface BenchBackendsOptions {
  models: BenchSubject[];
  steps: number;
  backends: BackendName[];
  /** Thread counts for the native backends (wasm and cpu always run on one). */
  nativeThreads: number[];
  torch: boolean;
  onProgress?: (what: string) => void;
}

interface Variant {
  backend: BackendName;
  threads: number;
}

const round = (x: number) => Number(x.toPrecision(4));

/** One in-process measurement (`retool bench model --in-process`) in a child with its backend set. */
async function measure(variant: Variant, opts: BenchBackendsOptions) {
  const native = variant.backend === 'node' || variant.backend === 'node-gpu';
  const env: Record<string, string> = { RETOOL_BACKEND: variant.backend };
  if (native) Object.assign(env, { TF_NUM_INTRAOP_THREADS: String(variant.threads), TF_NUM_INTEROP_THREADS: '1' });
  const args = ['bench', 'model', '--in-process', '--no-torch', '--json', '--steps', String(opts.steps)];
  const presets = opts.models.filter((m) => m.preset).map((m) => m.preset!);
  if (presets.length) args.push('--presets', presets.join(','));
  for (const m of opts.models) if (m.dir) args.push('--model', m.dir);
  const { stdout } = await execa(process.execPath, [join(PROJECT_ROOT, 'bin', 'retool.js'), ...args], {
    env,
    timeout: 3_600_000,
    stderr: 'inherit',
  });
  return JSON.parse(stdout) as {
    backend: BackendName;
    backend_info: Record<string, unknown>;
    models: Record<string, InProcessResult>;
  };
}

interface InProcessResult {
  parameters: number;
  training: { tokens_per_s: number; step_s: number };
  lora_training: { tokens_per_s: number };
  decode: Record<
    string,
    { prefill: { tokens_per_s: number }; cached: { tokens_per_s: number }; uncached: { tokens_per_s: number } } | number
  >;
  memory: { process_peak_rss_bytes: number; rss_mib_after_each_training_step: number[] };
  matmul: { ceiling_gflops: number };
}

const label = (v: Variant) => (v.backend === 'wasm' || v.backend === 'cpu' ? v.backend : `${v.backend}/${v.threads}t`);

export async function benchModelBackends(opts: BenchBackendsOptions) {
  const variants = opts.backends.flatMap((backend): Variant[] =>
    backend === 'node' || backend === 'node-gpu' ? opts.nativeThreads.map((threads) => ({ backend, threads })) : [{ backend, threads: 1 }],
  );
  const runs: Record<string, Measured> = {};
  for (const v of variants) {
    opts.onProgress?.(`${label(v)}: measuring ${opts.models.map((m) => m.name).join(', ')} in a process of its own`);
    // A backend that cannot run a model (wasm's 4 GB heap and a 100M+ model) is a result too.
    runs[label(v)] = await measure(v, opts).catch((e: { exitCode?: number; signal?: string }) => ({
      error: `its process ended with ${e.signal ?? `exit code ${e.exitCode}`} (its error is on the benchmark's stderr)`,
    }));
  }
  const torch: Record<string, Awaited<ReturnType<typeof torchPeer>> | { error: string }> = {};
  if (opts.torch) {
    for (const model of opts.models) {
      opts.onProgress?.(`${model.name}: PyTorch peer`);
      torch[model.name] = await torchPeer(model, opts.steps).catch((e: Error) => ({ error: e.message.slice(0, 2000) }));
    }
  }
  const summary = Object.fromEntries(opts.models.map(({ name }) => [name, summarise(name, runs, torch[name])]));
  const cpu = cpus();
  return {
    machine: {
      cpus: availableParallelism(),
      cpu_model: cpu[0]?.model ?? 'unknown',
      node: process.version,
      platform: `${platform()}-${arch()}`,
    },
    formulas: FORMULAS,
    summary,
    runs,
    torch,
  };
}

type Measured = Awaited<ReturnType<typeof measure>> | { error: string };

/** Tokens/s per variant and the ratios the goals are stated in. */
function summarise(model: string, runs: Record<string, Measured>, peer: unknown) {
  const rate = (get: (r: InProcessResult) => number) =>
    Object.fromEntries(
      Object.entries(runs).map(([name, run]) => {
        const result = 'models' in run ? run.models[model] : undefined;
        return [name, result ? round(get(result)) : null];
      }),
    );
  const decodeRate = (batch: number, kind: 'prefill' | 'cached') => (r: InProcessResult) => {
    const d = r.decode[`batch_${batch}`];
    return typeof d === 'object' ? d[kind].tokens_per_s : NaN;
  };
  const training = rate((r) => r.training.tokens_per_s);
  const loraTraining = rate((r) => r.lora_training.tokens_per_s);
  const prefill1 = rate(decodeRate(1, 'prefill'));
  const prefill8 = rate(decodeRate(8, 'prefill'));
  const decode1 = rate(decodeRate(1, 'cached'));
  const decode8 = rate(decodeRate(8, 'cached'));
  const rss = rate((r) => r.memory.process_peak_rss_bytes / 2 ** 20);
  // From the end of the first timed step to the last: about zero when training memory is flat.
  const rssGrowth = rate((r) => {
    const steps = r.memory.rss_mib_after_each_training_step;
    return steps[steps.length - 1]! - steps[Math.min(2, steps.length - 1)]!;
  });
  const torchRuns = (peer as { runs?: TorchRun[] } | undefined)?.runs ?? [];
  for (const t of torchRuns) {
    const name = `torch/${t.threads}t`;
    training[name] = round(t.training.tokens_per_s);
    loraTraining[name] = round(t.lora_training.tokens_per_s);
    prefill1[name] = round(t.decode.batch_1!.prefill.tokens_per_s);
    prefill8[name] = round(t.decode.batch_8!.prefill.tokens_per_s);
    decode1[name] = round(t.decode.batch_1!.cached.tokens_per_s);
    decode8[name] = round(t.decode.batch_8!.cached.tokens_per_s);
  }
  const ratio = (table: Record<string, number | null>, a: string, b: string) =>
    table[a] && table[b] ? round(table[a]! / table[b]!) : null;
  const ratios: Record<string, number | null> = {};
  for (const threads of [1, availableParallelism()]) {
    for (const native of ['node', 'node-gpu']) {
      const ours = `${native}/${threads}t`;
      if (!(ours in training)) continue;
      const torch = `torch/${threads}t`;
      ratios[`training_${ours}_over_${torch}`] = ratio(training, ours, torch);
      ratios[`lora_training_${ours}_over_${torch}`] = ratio(loraTraining, ours, torch);
      ratios[`prefill_b1_${ours}_over_${torch}`] = ratio(prefill1, ours, torch);
      ratios[`prefill_b8_${ours}_over_${torch}`] = ratio(prefill8, ours, torch);
      ratios[`decode_b1_cached_${ours}_over_${torch}`] = ratio(decode1, ours, torch);
      ratios[`decode_b8_cached_${ours}_over_${torch}`] = ratio(decode8, ours, torch);
      ratios[`training_${ours}_over_wasm`] = ratio(training, ours, 'wasm');
    }
  }
  return {
    training_tokens_per_s: training,
    lora_training_tokens_per_s: loraTraining,
    prefill_batch_1_tokens_per_s: prefill1,
    prefill_batch_8_tokens_per_s: prefill8,
    decode_batch_1_cached_tokens_per_s: decode1,
    decode_batch_8_cached_tokens_per_s: decode8,
    peak_rss_mib: rss,
    training_rss_growth_mib: rssGrowth,
    ratios,
  };
}
