// `retool bench model`: how fast the tfjs Qwen2 trains and decodes on this machine, against the
// backend's own matmul ceiling and against the same model in PyTorch (bench/torch_peer.py).
// Every time is a median over repeated runs: the machine is shared and noisy.
import { readFileSync } from 'node:fs';
import { cpus, platform, arch } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { execa } from 'execa';
import { PRESETS, DecoderConfigSchema, headDim, type DecoderConfig } from '../engine/model/config.js';
import { Decoder } from '../engine/model/generate.js';
import { isAdapterDir, loadModel } from '../engine/model/checkpoint.js';
import { LoraConfigSchema, type LoraConfig } from '../engine/model/lora-config.js';
import { BadInputError } from '../domain/errors.js';
import { PROJECT_ROOT, VENV_DIR } from '../engine/util/project-root.js';
import { DecoderModel } from '../engine/model/decoder.js';
import { backendInfo, initBackend, tf } from '../engine/tensor/backend.js';
import { builtinTokenizer } from '../engine/tokenizer/index.js';
import { AdamW, OptimizerConfigSchema } from '../engine/train/optim.js';
import { trainStep, type TokenBatch } from '../engine/train/step.js';
import { median } from './stats.js';

const PYTHON = process.env.RETOOL_BENCH_PYTHON ?? join(VENV_DIR, 'bin', 'python');
const TORCH_PEER = join(PROJECT_ROOT, 'bench', 'torch_peer.py');

/**
 * What `retool bench model` measures: the built-in presets and, to size up real models, a
 * randomly initialised model of SmolLM2-135M's dimensions (30 layers, 576 wide, vocabulary 49,152).
 */
export const BENCH_MODELS = {
  ...PRESETS,
  'smollm2-135m': {
    vocab_size: 49_152,
    hidden_size: 576,
    intermediate_size: 1536,
    num_hidden_layers: 30,
    num_attention_heads: 9,
    num_key_value_heads: 3,
    max_position_embeddings: 2048,
    tie_word_embeddings: true,
    rope_theta: 100_000,
  },
} as const;
export type BenchModelName = keyof typeof BENCH_MODELS;

/**
 * One model to measure: a built-in size with random weights, or a model directory (its own
 * weights, loaded afresh for each training run; PyTorch loads the same directory).
 */
export interface BenchSubject {
  name: string;
  preset?: BenchModelName;
  dir?: string;
}

/** A preset name, or else a model directory (an adapter directory is refused: measure its base). */
export function benchSubject(presetOrDir: string): BenchSubject {
  if (presetOrDir in BENCH_MODELS) return { name: presetOrDir, preset: presetOrDir as BenchModelName };
  const dir = resolve(presetOrDir);
  if (isAdapterDir(dir)) throw new BadInputError(`--model ${presetOrDir}: a LoRA adapter directory; give the model it sits on`);
  loadableConfig(dir, presetOrDir);
  return { name: basename(dir), dir };
}

function loadableConfig(dir: string, shown: string): DecoderConfig {
  try {
    return DecoderConfigSchema.parse(JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')));
  } catch (e) {
    throw new BadInputError(`--model ${shown}: not a model directory this engine loads (${(e as Error).message.split('\n')[0]})`);
  }
}

export interface BenchModelOptions {
  models: BenchSubject[];
  /** Timed training steps per preset (after two untimed warm-up steps). */
  steps: number;
  onProgress?: (what: string) => void;
}

/** Training shape per preset: 8 sequences of 128 tokens (1,024 tokens a step). */
const TRAIN_SHAPE: Record<BenchModelName, { batch: number; seq: number }> = {
  tiny: { batch: 8, seq: 128 },
  small: { batch: 8, seq: 128 },
  'smollm2-135m': { batch: 2, seq: 128 },
};
/** A model directory trains at SmolLM2-135M's shape when it is at least that wide. */
function trainShape(subject: BenchSubject, c: DecoderConfig): { batch: number; seq: number } {
  if (subject.preset) return TRAIN_SHAPE[subject.preset];
  return c.hidden_size >= 512 ? TRAIN_SHAPE['smollm2-135m'] : TRAIN_SHAPE.small;
}
/** The adapter a LoRA training step trains: PEFT's usual rank 16, alpha 32, every linear layer. */
const BENCH_LORA: LoraConfig = LoraConfigSchema.parse({});
const CONTEXT = 256;
/** Prefill runs timed per batch size (after one untimed run). */
const PREFILL_RUNS = 3;
/** Decode steps timed per run: the prompt is CONTEXT - DECODE_TOKENS long, so decoding ends at CONTEXT. */
const DECODE_TOKENS = 16;
const DECODE_BATCHES = [1, 8];
const CEILING_SIZE = 1024;
const CEILING_RUNS = 7;

export const FORMULAS = {
  ceiling: `the higher of two medians (before and after training) of GFLOP/s over ${CEILING_RUNS} runs of a float32 ${CEILING_SIZE}x${CEILING_SIZE} @ ${CEILING_SIZE}x${CEILING_SIZE} tf.matMul (2-D, no transposes: the backend's XNNPACK path), 2*n^3 FLOPs each; model_shapes lists the same for the 2-D products of a training step`,
  flops_per_step:
    '6 * N * tokens + 12 * L * H * T * tokens, with N = all parameters (the tied embedding is the LM head), tokens = B * T, L layers, H = heads * head_dim; the second term is the QK^T and PV products, forward and backward, over the full T x T (masked, not skipped)',
  achieved: 'flops_per_step / median step time (forward, backward, clipping and AdamW)',
  mfu: 'achieved / ceiling',
  lora_training: `the same step with a LoRA adapter (rank ${BENCH_LORA.rank}, alpha ${BENCH_LORA.alpha}, on ${BENCH_LORA.targetModules.join('/')}) trained and the model frozen; PyTorch uses peft with the same settings`,
  prefill: `the first decoding step alone (the ${CONTEXT - DECODE_TOKENS}-token prompt into an empty KV cache, and its next token), median of ${PREFILL_RUNS} runs; tokens/s = batch * prompt / time`,
  decode: `greedy, prompt of ${CONTEXT - DECODE_TOKENS} tokens then ${DECODE_TOKENS} steps, so the last step attends to ${CONTEXT} positions; tokens/s = batch / median step time over steps 2..${DECODE_TOKENS - 1} (step 1 carries the prompt; step ${DECODE_TOKENS} is profiled for memory instead); uncached recomputes the whole sequence every step`,
} as const;

const round = (x: number, digits = 3) => Number(x.toPrecision(digits + 2));

/** Deterministic token ids (a small LCG), so every run and the PyTorch peer see comparable data. */
function randomIds(rows: number, cols: number, vocab: number, seed: number): number[][] {
  let s = seed >>> 0 || 1;
  const next = () => (s = (Math.imul(s, 1103515245) + 12345) >>> 0) % vocab;
  return Array.from({ length: rows }, () => Array.from({ length: cols }, next));
}

/** GFLOP/s of a 2-D [m,k] @ [k,n] product: median of `runs`, after two untimed runs. */
function matmulRate(m: number, k: number, n: number, runs: number): number {
  const a = tf.randomNormal([m, k]) as tf.Tensor2D;
  const b = tf.randomNormal([k, n]) as tf.Tensor2D;
  const times: number[] = [];
  for (let i = 0; i < runs + 2; i++) {
    const t0 = performance.now();
    const c = tf.matMul(a, b);
    c.dataSync();
    const dt = (performance.now() - t0) / 1000;
    c.dispose();
    if (i >= 2) times.push(dt);
  }
  tf.dispose([a, b]);
  return (2 * m * k * n) / median(times) / 1e9;
}

/** The 2-D products of a training step, as [m, k, n] (forward ones, then a weight gradient). */
function modelShapes(c: DecoderConfig, tokens: number): Record<string, [number, number, number]> {
  const H = c.hidden_size;
  const hd = headDim(c);
  return {
    q_proj: [tokens, H, c.num_attention_heads * hd],
    k_v_proj: [tokens, H, c.num_key_value_heads * hd],
    o_proj: [tokens, c.num_attention_heads * hd, H],
    gate_up_proj: [tokens, H, c.intermediate_size],
    down_proj: [tokens, c.intermediate_size, H],
    lm_head: [tokens, H, c.vocab_size],
    weight_grad_down: [H, tokens, c.intermediate_size],
  };
}

function subjectConfig(subject: BenchSubject): DecoderConfig {
  if (subject.dir) return loadableConfig(subject.dir, subject.dir);
  return DecoderConfigSchema.parse({ vocab_size: builtinTokenizer().vocabSize, ...BENCH_MODELS[subject.preset!] });
}

/** A fresh model for each run: training changes the weights. */
function subjectModel(subject: BenchSubject, c: DecoderConfig): DecoderModel {
  return subject.dir ? loadModel(subject.dir).model : DecoderModel.init(c, 0);
}

function trainingBatch(c: DecoderConfig, batch: number, seq: number, seed: number): TokenBatch {
  const ids = randomIds(batch, seq + 1, c.vocab_size, seed);
  return { ids, lossMask: ids.map((r) => r.map(() => 1)) };
}

async function benchTraining(model: DecoderModel, steps: number, shape: { batch: number; seq: number }, lora?: LoraConfig) {
  const c = model.config;
  if (lora) model.attachLora(lora, { seed: 0 });
  const optimizer = new AdamW(model.policyParams(), OptimizerConfigSchema.parse({ lr: 1e-3, warmupSteps: 0, totalSteps: steps + 3 }));
  const batch = trainingBatch(c, shape.batch, shape.seq, 7);
  const times: number[] = [];
  const losses: number[] = [];
  // Resident memory after each step: flat when nothing leaks, natively or in tfjs.
  const rss: number[] = [];
  try {
    for (let i = 0; i < steps + 2; i++) {
      const t0 = performance.now();
      losses.push(trainStep(model, optimizer, batch).loss);
      if (i >= 2) times.push((performance.now() - t0) / 1000);
      rss.push(process.memoryUsage().rss);
    }
    // One more step, profiled for its memory only (profiling slows kernels down).
    const info = await tf.profile(() => {
      trainStep(model, optimizer, batch);
    });
    const trainable = [...model.policyParams().values()].reduce((n, v) => n + v.size, 0);
    return { times, losses, rss, peakBytes: info.peakBytes, parameters: model.parameterCount(), trainable };
  } finally {
    optimizer.dispose();
    model.dispose();
  }
}

function benchPrefill(model: DecoderModel, batch: number) {
  const prompts = randomIds(batch, CONTEXT - DECODE_TOKENS, model.config.vocab_size, 2000 + batch);
  const times: number[] = [];
  for (let i = 0; i < PREFILL_RUNS + 1; i++) {
    const decoder = new Decoder(model, prompts, { maxNewTokens: 1, temperature: 0, useCache: true });
    try {
      const t0 = performance.now();
      decoder.step();
      if (i > 0) times.push((performance.now() - t0) / 1000);
    } finally {
      decoder.dispose();
    }
  }
  const step = median(times);
  return { step_s: round(step), tokens_per_s: round((batch * (CONTEXT - DECODE_TOKENS)) / step) };
}

async function benchDecode(model: DecoderModel, batch: number, useCache: boolean) {
  const prompts = randomIds(batch, CONTEXT - DECODE_TOKENS, model.config.vocab_size, 1000 + batch);
  const decoder = new Decoder(model, prompts, { maxNewTokens: DECODE_TOKENS, temperature: 0, useCache });
  const times: number[] = [];
  let peakBytes = 0;
  try {
    for (let i = 0; i < DECODE_TOKENS - 1; i++) {
      const t0 = performance.now();
      decoder.step();
      if (i > 0) times.push((performance.now() - t0) / 1000);
    }
    // The last step (the one that attends to all CONTEXT positions), profiled for memory only.
    peakBytes = (await tf.profile(() => void decoder.step())).peakBytes;
  } finally {
    decoder.dispose();
  }
  const step = median(times);
  return { step_s: round(step), tokens_per_s: round(batch / step), steps_timed: times.length, tf_peak_bytes: peakBytes };
}

interface TorchTraining {
  step_s: number;
  tokens_per_s: number;
  first_loss: number;
  last_loss: number;
}
export interface TorchRun {
  threads: number;
  parameters: number;
  training: TorchTraining;
  lora_training: TorchTraining & { trainable: number };
  decode: Record<string, { prefill: { tokens_per_s: number }; cached: { tokens_per_s: number }; uncached: { tokens_per_s: number } }>;
}

/** The same measurements in transformers/PyTorch (bench/torch_peer.py), at 1 and at all threads. */
export async function torchPeer(subject: BenchSubject, steps: number) {
  const c = subjectConfig(subject);
  const shape = trainShape(subject, c);
  const job = {
    model_dir: subject.dir ?? null,
    lora: { r: BENCH_LORA.rank, alpha: BENCH_LORA.alpha, targets: BENCH_LORA.targetModules },
    prefill_runs: PREFILL_RUNS,
    config: {
      vocab_size: c.vocab_size,
      hidden_size: c.hidden_size,
      intermediate_size: c.intermediate_size,
      num_hidden_layers: c.num_hidden_layers,
      num_attention_heads: c.num_attention_heads,
      num_key_value_heads: c.num_key_value_heads,
      max_position_embeddings: c.max_position_embeddings,
      tie_word_embeddings: c.tie_word_embeddings,
      rope_theta: c.rope_parameters?.rope_theta ?? c.rope_theta ?? 10_000,
      rms_norm_eps: c.rms_norm_eps,
    },
    batch: shape.batch,
    seq: shape.seq,
    steps,
    warmup: 2,
    context: CONTEXT,
    decode_tokens: DECODE_TOKENS,
    decode_batches: DECODE_BATCHES,
    threads: [...new Set([1, cpus().length])],
  };
  const { stdout } = await execa(PYTHON, [TORCH_PEER], { input: JSON.stringify(job), timeout: 1_800_000 });
  return JSON.parse(stdout) as { torch: string; default_threads: number; attention: string; runs: TorchRun[]; peak_rss_bytes: number };
}

/** Size of the wasm heap: it only grows, so this is the high-water mark of the process so far. */
function wasmHeapBytes(): number | null {
  const backend = tf.backend() as unknown as { wasm?: { HEAPU8?: Uint8Array } };
  return backend.wasm?.HEAPU8?.buffer.byteLength ?? null;
}

async function benchSubjectModel(subject: BenchSubject, opts: BenchModelOptions) {
  const say = (s: string) => opts.onProgress?.(`${subject.name}: ${s}`);
  const c = subjectConfig(subject);
  const shape = trainShape(subject, c);
  const tokens = shape.batch * shape.seq;
  const H = c.num_attention_heads * headDim(c);
  const L = c.num_hidden_layers;

  say(`matmul ceiling (${CEILING_SIZE}^3, ${CEILING_RUNS} runs)`);
  const ceilingBefore = matmulRate(CEILING_SIZE, CEILING_SIZE, CEILING_SIZE, CEILING_RUNS);
  const shapes: Record<string, { m: number; k: number; n: number; gflops: number }> = {};
  for (const [name, [m, k, n]] of Object.entries(modelShapes(c, tokens))) shapes[name] = { m, k, n, gflops: round(matmulRate(m, k, n, 5)) };

  say(`training, ${opts.steps} steps of ${shape.batch}x${shape.seq}`);
  const train = await benchTraining(subjectModel(subject, c), opts.steps, shape);
  say(`LoRA training, ${opts.steps} steps of ${shape.batch}x${shape.seq}`);
  const loraTrain = await benchTraining(subjectModel(subject, c), opts.steps, shape, BENCH_LORA);
  const heapAfterTraining = wasmHeapBytes();
  // Measured again after training: the machine is shared, a busy moment only lowers a median,
  // and a ceiling is an upper bound, so the higher of the two is the one MFU divides by.
  const ceilingAfter = matmulRate(CEILING_SIZE, CEILING_SIZE, CEILING_SIZE, CEILING_RUNS);
  const ceiling = Math.max(ceilingBefore, ceilingAfter);
  const stepS = median(train.times);
  const N = train.parameters;
  const flops = 6 * N * tokens + 12 * L * H * shape.seq * tokens;
  const achieved = flops / stepS / 1e9;

  const decode: Record<
    string,
    {
      prefill: ReturnType<typeof benchPrefill>;
      cached: Awaited<ReturnType<typeof benchDecode>>;
      uncached: Awaited<ReturnType<typeof benchDecode>>;
      speedup: number;
    }
  > = {};
  const model = subjectModel(subject, c);
  try {
    for (const b of DECODE_BATCHES) {
      say(`prefill, batch ${b}`);
      const prefill = benchPrefill(model, b);
      say(`decode, batch ${b}, cached`);
      const cached = await benchDecode(model, b, true);
      say(`decode, batch ${b}, uncached`);
      const uncached = await benchDecode(model, b, false);
      decode[`batch_${b}`] = { prefill, cached, uncached, speedup: round(cached.tokens_per_s / uncached.tokens_per_s) };
    }
  } finally {
    model.dispose();
  }

  const result = {
    parameters: N,
    config: {
      hidden_size: c.hidden_size,
      intermediate_size: c.intermediate_size,
      layers: L,
      heads: c.num_attention_heads,
      kv_heads: c.num_key_value_heads,
      vocab_size: c.vocab_size,
    },
    matmul: {
      ceiling_gflops: round(ceiling),
      ceiling_runs_gflops: [round(ceilingBefore), round(ceilingAfter)],
      ceiling_shape: `${CEILING_SIZE}x${CEILING_SIZE}x${CEILING_SIZE}`,
      model_shapes: shapes,
    },
    training: {
      batch: shape.batch,
      seq: shape.seq,
      tokens_per_step: tokens,
      step_s: round(stepS),
      step_times_s: train.times.map((t) => round(t)),
      tokens_per_s: round(tokens / stepS),
      flops_per_step: flops,
      achieved_gflops: round(achieved),
      mfu: round(achieved / ceiling),
      loss_first: round(train.losses[0]!),
      loss_last: round(train.losses[train.losses.length - 1]!),
    },
    lora_training: {
      ...BENCH_LORA,
      trainable_parameters: loraTrain.trainable,
      step_s: round(median(loraTrain.times)),
      tokens_per_s: round(tokens / median(loraTrain.times)),
      loss_first: round(loraTrain.losses[0]!),
      loss_last: round(loraTrain.losses[loraTrain.losses.length - 1]!),
      tf_peak_bytes: loraTrain.peakBytes,
    },
    decode: { context: CONTEXT, prompt: CONTEXT - DECODE_TOKENS, steps: DECODE_TOKENS, ...decode },
    memory: {
      tf_peak_bytes_training_step: train.peakBytes,
      tf_peak_bytes_decode: Math.max(...Object.values(decode).flatMap((d) => [d.cached.tf_peak_bytes, d.uncached.tf_peak_bytes])),
      tf_bytes_after: tf.memory().numBytes,
      rss_mib_after_each_training_step: train.rss.map((b) => round(b / 2 ** 20)),
      wasm_heap_bytes_after_training: heapAfterTraining,
      wasm_heap_bytes_after_decode: wasmHeapBytes(),
      process_peak_rss_bytes: process.resourceUsage().maxRSS * 1024,
      note: 'tf_peak_* are tf.memory().numBytes peaks (tf.profile): tfjs counts every tensor at its full size, so views that share one buffer (reshapes, the clones saved for the backward pass) count more than once; the wasm heap (it never shrinks) and the process RSS are what the memory really reached, and both are high-water marks of the whole process so far, including every preset run before this one',
    },
  };

  return result;
}

export async function benchModel(opts: BenchModelOptions) {
  const backend = await initBackend();
  let wasm: { simd: boolean; threads: number } | null = null;
  if (backend === 'wasm') {
    const w = await import('@tensorflow/tfjs-backend-wasm');
    wasm = { simd: Boolean(await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT')), threads: w.getThreadsCount() };
  }
  const cpu = cpus();
  const out = {
    backend,
    backend_info: backendInfo(),
    machine: {
      cpus: cpu.length,
      cpu_model: cpu[0]?.model ?? 'unknown',
      node: process.version,
      platform: `${platform()}-${arch()}`,
      tfjs: tf.version.tfjs,
      wasm,
    },
    formulas: FORMULAS,
    models: {} as Record<string, Awaited<ReturnType<typeof benchSubjectModel>>>,
  };
  for (const subject of opts.models) out.models[subject.name] = await benchSubjectModel(subject, opts);
  return out;
}
