// A model directory in Hugging Face layout: config.json, model.safetensors (or shards + index),
// tokenizer files; beside them, what transformers does not know about: the value head and the
// optimizer's state, so that training resumes exactly.
import { copyFileSync, existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { z } from 'zod';
import { BadInputError } from '../../domain/errors.js';
import { tf } from '../tensor/backend.js';
import { loadTokenizerSync } from '../tokenizer/hf.js';
import { saveTokenizerSync, type SavableTokenizer } from '../tokenizer/builtin.js';
import type { TextTokenizer } from '../tokenizer/types.js';
import type { AdamW } from '../train/optim.js';
import { readModelTensors, writeDirAtomically, writeModelTensors } from './checkpoint-files.js';
import { architectureOf, DecoderConfigSchema } from './config.js';
import { parameterShapes, DecoderModel, VALUE_HEAD, type Params } from './decoder.js';
import { readSafetensorsFile, writeSafetensorsFile, type DType, type NamedTensor } from './safetensors.js';
import { checkBaseRecord, writeBaseRecord } from './base-record.js';
import { ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE, parsePeftConfig, stripPeftPrefix } from './lora.js';

const VALUE_HEAD_FILE = 'value_head.safetensors';
const OPTIMIZER_FILE = 'optimizer.safetensors';
const TRAINER_STATE_FILE = 'trainer_state.json';
const TOKENIZER_FILES =
  /^(tokenizer\.json|tokenizer_config\.json|special_tokens_map\.json|added_tokens\.json|vocab\.json|merges\.txt|chat_template\.jinja|generation_config\.json)$/;

export const TrainerStateSchema = z.object({
  step: z.number().int().min(0),
  /** Anything the trainer needs to continue as if never stopped: RNG state, data cursor, ... */
  extra: z.record(z.string(), z.unknown()).default({}),
});
export type TrainerState = z.infer<typeof TrainerStateSchema>;

function toNamed(p: tf.Variable): NamedTensor {
  return { shape: p.shape, data: p.dataSync() as Float32Array };
}

export interface SaveOptions {
  tokenizer?: SavableTokenizer;
  /** A model directory whose tokenizer files are copied as they are (a fine-tuned model keeps its tokenizer). */
  tokenizerFrom?: string;
  optimizer?: AdamW;
  trainerState?: TrainerState;
  dtype?: DType;
  maxShardBytes?: number;
}

/** Writes the whole directory atomically: a crash mid-save leaves the previous one intact. */
export async function saveModel(dir: string, model: DecoderModel, opts: SaveOptions = {}): Promise<void> {
  const weights = new Map<string, NamedTensor>();
  const head = new Map<string, NamedTensor>();
  for (const [name, p] of model.params) (name.startsWith('value_head.') ? head : weights).set(name, toNamed(p));
  await writeDirAtomically(dir, (tmp) => {
    const config = {
      ...model.config,
      architectures: [architectureOf(model.config)],
      torch_dtype: opts.dtype === 'BF16' ? 'bfloat16' : opts.dtype === 'F16' ? 'float16' : 'float32',
    };
    writeFileSync(join(tmp, 'config.json'), `${JSON.stringify(config, null, 2)}\n`);
    writeModelTensors(tmp, weights, { dtype: opts.dtype, maxShardBytes: opts.maxShardBytes });
    if (head.size > 0) writeSafetensorsFile(join(tmp, VALUE_HEAD_FILE), head);
    writeCompanions(tmp, opts);
  });
}

/** The tokenizer, the optimizer's moments and the trainer's state beside a model or an adapter. */
function writeCompanions(dir: string, opts: SaveOptions): void {
  if (opts.tokenizer) saveTokenizerSync(dir, opts.tokenizer);
  else if (opts.tokenizerFrom) {
    for (const file of readdirSync(opts.tokenizerFrom))
      if (TOKENIZER_FILES.test(file)) copyFileSync(join(opts.tokenizerFrom, file), join(dir, file));
  }
  if (opts.optimizer) writeSafetensorsFile(join(dir, OPTIMIZER_FILE), opts.optimizer.stateTensors());
  if (opts.optimizer || opts.trainerState) {
    const state = TrainerStateSchema.parse({
      step: opts.optimizer?.step ?? opts.trainerState?.step ?? 0,
      extra: opts.trainerState?.extra ?? {},
    });
    writeFileSync(join(dir, TRAINER_STATE_FILE), `${JSON.stringify(state, null, 2)}\n`);
  }
}

/**
 * Writes the model's LoRA adapter as a PEFT adapter directory (atomically): adapter_config.json
 * naming `baseModel` (made absolute), adapter_model.safetensors, the base's content hash
 * (base-record.ts), and the same companions as a model.
 */
export async function saveAdapter(
  dir: string,
  model: DecoderModel,
  baseModel: string,
  opts: Omit<SaveOptions, 'dtype' | 'maxShardBytes'> = {},
): Promise<void> {
  const lora = model.lora;
  if (!lora) throw new Error('saveAdapter: the model has no LoRA adapter');
  await writeDirAtomically(dir, (tmp) => {
    writeFileSync(join(tmp, ADAPTER_CONFIG_FILE), `${JSON.stringify(lora.peftConfig(resolve(baseModel)), null, 2)}\n`);
    writeSafetensorsFile(join(tmp, ADAPTER_WEIGHTS_FILE), lora.tensors());
    writeBaseRecord(tmp, baseModel);
    writeCompanions(tmp, opts);
  });
}

/**
 * A trained model as it should be kept: its adapter (on `baseModel`) when it has one, else the
 * whole model.
 */
export async function saveTrainable(dir: string, model: DecoderModel, opts: SaveOptions & { baseModel?: string }): Promise<void> {
  if (!model.lora) return saveModel(dir, model, opts);
  if (!opts.baseModel) throw new Error('saveTrainable: a model with an adapter needs the directory of its base model');
  await saveAdapter(dir, model, opts.baseModel, opts);
}

export function isAdapterDir(dir: string): boolean {
  return existsSync(join(dir, ADAPTER_CONFIG_FILE)) && !existsSync(join(dir, 'config.json'));
}

export interface LoadedModel {
  model: DecoderModel;
  tokenizer: TextTokenizer | null;
  /** Optimizer moments and the trainer's state, when the directory holds them. */
  optimizerState: Map<string, NamedTensor> | null;
  trainerState: TrainerState | null;
  /** When the directory is a LoRA adapter: the directory of the model it sits on. */
  baseModel?: string;
}

/**
 * Loads a directory written here or by transformers' save_pretrained (F32/F16/BF16, sharded), or
 * a PEFT LoRA adapter directory: its base model (adapter_config.json's base_model_name_or_path, a
 * directory) with the adapter attached.
 */
export function loadModel(dir: string): LoadedModel {
  if (isAdapterDir(dir)) return loadAdapter(dir);
  const configFile = join(dir, 'config.json');
  if (!existsSync(configFile)) throw new Error(`${dir}: no config.json (not a model directory)`);
  const parsed = DecoderConfigSchema.safeParse(JSON.parse(readFileSync(configFile, 'utf8')));
  if (!parsed.success) throw new Error(`${configFile}: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  const config = parsed.data;
  const tensors = readModelTensors(dir);
  const params: Params = new Map();
  for (const [name, shape] of parameterShapes(config)) {
    const t = tensors.get(name);
    if (!t) throw new Error(`${dir}: the checkpoint has no tensor ${name}`);
    if (t.shape.join(',') !== shape.join(',')) throw new Error(`${dir}: ${name} has shape [${t.shape}], config.json implies [${shape}]`);
    params.set(
      name,
      tf.tidy(() => tf.variable(tf.tensor(t.data, t.shape), true)),
    );
  }
  const headFile = join(dir, VALUE_HEAD_FILE);
  if (existsSync(headFile)) {
    for (const [name, t] of readSafetensorsFile(headFile).tensors) {
      if (name === VALUE_HEAD.weight || name === VALUE_HEAD.bias)
        params.set(
          name,
          tf.tidy(() => tf.variable(tf.tensor(t.data, t.shape), true)),
        );
    }
  }
  const model = new DecoderModel(config, params);
  const tokenizer = existsSync(join(dir, 'tokenizer.json')) ? loadTokenizerSync(dir) : null;
  const optimizerFile = join(dir, OPTIMIZER_FILE);
  const optimizerState = existsSync(optimizerFile) ? new Map(readSafetensorsFile(optimizerFile).tensors) : null;
  const stateFile = join(dir, TRAINER_STATE_FILE);
  const trainerState = existsSync(stateFile) ? TrainerStateSchema.parse(JSON.parse(readFileSync(stateFile, 'utf8'))) : null;
  return { model, tokenizer, optimizerState, trainerState };
}

/** Puts the PEFT adapter saved in `dir` on `model` (whatever base the adapter names). */
export function attachAdapterDir(model: DecoderModel, dir: string): void {
  const configFile = join(dir, ADAPTER_CONFIG_FILE);
  if (!existsSync(configFile)) throw new Error(`${dir}: no ${ADAPTER_CONFIG_FILE} (not a LoRA adapter directory)`);
  const { config } = parsePeftConfig(JSON.parse(readFileSync(configFile, 'utf8')), configFile);
  const weights = stripPeftPrefix(readSafetensorsFile(join(dir, ADAPTER_WEIGHTS_FILE)).tensors);
  try {
    model.attachLora(config, { values: weights });
  } catch (err) {
    throw new Error(`${dir}: ${(err as Error).message}`);
  }
}

function loadAdapter(dir: string): LoadedModel {
  const configFile = join(dir, ADAPTER_CONFIG_FILE);
  const { baseModel } = parsePeftConfig(JSON.parse(readFileSync(configFile, 'utf8')), configFile);
  const base = isAbsolute(baseModel) ? baseModel : resolve(dir, baseModel);
  if (!existsSync(join(base, 'config.json')))
    throw new Error(`${configFile}: base_model_name_or_path ${baseModel} is not a model directory here (hub names are not fetched)`);
  checkBaseRecord(dir, base);
  const loaded = loadModel(base);
  try {
    attachAdapterDir(loaded.model, dir);
  } catch (err) {
    loaded.model.dispose();
    throw err;
  }
  const optimizerFile = join(dir, OPTIMIZER_FILE);
  const stateFile = join(dir, TRAINER_STATE_FILE);
  return {
    model: loaded.model,
    tokenizer: existsSync(join(dir, 'tokenizer.json')) ? loadTokenizerSync(dir) : loaded.tokenizer,
    optimizerState: existsSync(optimizerFile) ? new Map(readSafetensorsFile(optimizerFile).tensors) : null,
    trainerState: existsSync(stateFile) ? TrainerStateSchema.parse(JSON.parse(readFileSync(stateFile, 'utf8'))) : null,
    baseModel: base,
  };
}

/** loadModel for a directory a person named: what is wrong with it is their input to fix. */
export function openModel(dir: string): LoadedModel {
  try {
    return loadModel(dir);
  } catch (err) {
    throw new BadInputError((err as Error).message);
  }
}
