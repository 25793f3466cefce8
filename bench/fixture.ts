// A model that writes code, made from nothing on a throwaway store: synthetic problems -> the
// built-in teacher's verified traces -> SFT of a fresh preset model. Benchmarks of the stages
// that come after SFT need one, and a fresh machine has none.
import { join } from 'node:path';
import { synthesizeDataset } from '../datasets/derive.js';
import { heldStore, withStore } from '../datasets/store.js';
import { coldStart } from '../stages/coldstart.js';
import { saveModel } from '../engine/model/checkpoint.js';
import { PRESETS, DecoderConfigSchema, type PresetName } from '../engine/model/config.js';
import { DecoderModel } from '../engine/model/decoder.js';
import type { Sandbox } from '../engine/sandbox/index.js';
import { runSft } from '../stages/sft.js';
import { builtinTokenizer } from '../engine/tokenizer/builtin.js';

/** Problems dataset `bench` (train/test splits) and the SFT model at `<home>/sft`. */
export async function sftFixture(home: string, sandbox: Sandbox, o: { preset: PresetName; sftSteps: number; say: (what: string) => void }) {
  o.say('traces');
  const cold = await withStore(home, async (store) => {
    await synthesizeDataset(store, { name: 'bench', count: 3000, seed: 11 });
    return coldStart(heldStore(store), sandbox, { dataset: 'bench', out: 'bench-code' });
  });
  const tokenizer = builtinTokenizer();
  const base = join(home, 'base');
  const init = DecoderModel.init(
    DecoderConfigSchema.parse({ vocab_size: tokenizer.vocabSize, eos_token_id: tokenizer.eosId, ...PRESETS[o.preset] }),
    0,
  );
  await saveModel(base, init, { tokenizer });
  init.dispose();
  o.say(`sft ${o.sftSteps} steps`);
  const sft = await runSft({
    traces: 'bench-code',
    model: base,
    out: join(home, 'sft'),
    steps: o.sftSteps,
    batchSize: 32,
    checkpointEvery: 0,
    home,
  });
  return { cold, sft, modelDir: join(home, 'sft'), dataset: 'bench' };
}
