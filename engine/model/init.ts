import { builtinTokenizer } from '../tokenizer/builtin.js';
import { saveModel } from './checkpoint.js';
import { PRESETS, DecoderConfigSchema, type ModelInit } from './config.js';
import { DecoderModel } from './decoder.js';

/** A randomly initialised preset model with the built-in tokenizer, written in Hugging Face layout. */
export async function initModelDir(out: string, { preset, seed, positions }: ModelInit) {
  const tokenizer = builtinTokenizer();
  const config = DecoderConfigSchema.parse({
    vocab_size: tokenizer.vocabSize,
    eos_token_id: tokenizer.eosId,
    bos_token_id: null,
    ...PRESETS[preset],
    ...(positions ? { max_position_embeddings: positions } : {}),
  });
  const model = DecoderModel.init(config, seed, true);
  try {
    await saveModel(out, model, { tokenizer });
    return { dir: out, preset, parameters: model.parameterCount(), config };
  } finally {
    model.dispose();
  }
}
