import { Command } from 'commander';
import { BadInputError } from '../../domain/errors.js';
import { ModelInitSchema } from '../../engine/model/config.js';
import { emit, parseList, parseNumber, type CommonOptions } from '../output.js';
import { addSchemaFlags, parseSchemaFlags, type Flags } from '../schema-flags.js';

const INIT_FLAGS = { preset: 'model size', seed: 'initialisation seed' } satisfies Flags<typeof ModelInitSchema>;

export function modelCommand(common: (cmd: Command) => Command): Command {
  const model = new Command('model').description('the tfjs Qwen2 policy: create, inspect, generate');

  const init = common(model.command('init'))
    .description('a randomly initialised model in Hugging Face layout, with the built-in tokenizer')
    .requiredOption('--out <dir>', 'where to write it');
  addSchemaFlags(init, ModelInitSchema, INIT_FLAGS).action(async (opts: CommonOptions & Record<string, unknown>) => {
    const out = String(opts.out);
    const { preset, seed } = parseSchemaFlags(ModelInitSchema, opts, INIT_FLAGS);
    // tfjs and the model code load here, not at start: most commands never touch a model.
    const { backendInfo, backendLabel, initBackend } = await import('../../engine/tensor/backend.js');
    const { initModelDir } = await import('../../engine/model/init.js');
    await initBackend();
    const made = await initModelDir(out, preset, seed);
    emit(
      opts,
      { ...made, backend: backendInfo() },
      () => `wrote ${preset} model (${made.parameters.toLocaleString()} parameters) to ${out} [backend ${backendLabel()}]`,
    );
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
    .action(
      async (
        opts: CommonOptions & { model: string; prompt: string; maxTokens: number; temperature: number; topP: number; seed: number },
      ) => {
        const { backendInfo, initBackend } = await import('../../engine/tensor/backend.js');
        const { openModel } = await import('../../engine/model/checkpoint.js');
        const { generate } = await import('../../engine/model/generate.js');
        await initBackend();
        const backend = backendInfo();
        const { model: m, tokenizer } = openModel(opts.model);
        if (!tokenizer) throw new BadInputError(`${opts.model}: no tokenizer.json, so a text prompt cannot be encoded`);
        const prompt = tokenizer.encode(opts.prompt);
        if (prompt.length === 0) throw new BadInputError('--prompt is empty');
        const t0 = performance.now();
        const [out] = generate(m, [prompt], {
          maxNewTokens: opts.maxTokens,
          temperature: opts.temperature,
          topP: opts.topP,
          seed: opts.seed,
          eosIds: [tokenizer.eosId],
          padId: tokenizer.padId,
        });
        const seconds = (performance.now() - t0) / 1000;
        const text = tokenizer.decode(out!.tokens);
        emit(
          opts,
          {
            backend,
            prompt: opts.prompt,
            text,
            tokens: out!.tokens,
            logprobs: out!.logprobs,
            stop: out!.reason,
            tokensPerSecond: out!.tokens.length / seconds,
          },
          () => text,
        );
      },
    );
  return model;
}
