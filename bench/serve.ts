// `retool bench serve`: what batching buys a server. The same 8 chat requests (greedy, a fixed
// reply length) sent one after another and then all at once to `retool serve`'s server on this
// machine; completion tokens/s of each, as medians over rounds, and their ratio.
import { openModel } from '../engine/model/checkpoint.js';
import { OpenAiServer } from '../engine/serve/server.js';
import { backendInfo, initBackend } from '../engine/tensor/backend.js';
import { median } from './stats.js';

export interface BenchServeOptions {
  model: string;
  clients: number;
  maxTokens: number;
  rounds: number;
  onProgress?: (what: string) => void;
}

export async function benchServe(o: BenchServeOptions) {
  await initBackend();
  const { model, tokenizer } = openModel(o.model);
  if (!tokenizer?.applyChatTemplate) throw new Error(`${o.model}: the benchmark needs a tokenizer with a chat template`);
  const server = new OpenAiServer({ model, tokenizer, modelName: 'bench', port: 0 });
  const address = await server.listen();
  const url = `http://127.0.0.1:${address.port}/v1/chat/completions`;
  // min_tokens does not exist in the API: the stop token is kept away by asking for plain counting.
  const ask = async (i: number) => {
    const r = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        model: 'bench',
        messages: [{ role: 'user', content: `Count from ${i + 1} to ${i + 200}, one number per line.` }],
        temperature: 0,
        max_tokens: o.maxTokens,
      }),
    });
    const body = (await r.json()) as { usage: { completion_tokens: number } };
    return body.usage.completion_tokens;
  };
  const rate = async (run: () => Promise<number[]>) => {
    const t0 = performance.now();
    const tokens = (await run()).reduce((a, b) => a + b, 0);
    return { tokens, tokensPerSecond: tokens / ((performance.now() - t0) / 1000) };
  };
  const ids = Array.from({ length: o.clients }, (_, i) => i);
  try {
    await ask(0); // warm-up: packed weights, first kernels
    const sequential: number[] = [];
    const concurrent: number[] = [];
    let tokens = { sequential: 0, concurrent: 0 };
    for (let round = 0; round < o.rounds; round++) {
      const s = await rate(async () => {
        const out: number[] = [];
        for (const i of ids) out.push(await ask(i));
        return out;
      });
      const c = await rate(() => Promise.all(ids.map(ask)));
      sequential.push(s.tokensPerSecond);
      concurrent.push(c.tokensPerSecond);
      tokens = { sequential: s.tokens, concurrent: c.tokens };
      o.onProgress?.(
        `round ${round + 1}: sequential ${s.tokensPerSecond.toFixed(1)} tok/s, concurrent ${c.tokensPerSecond.toFixed(1)} tok/s`,
      );
    }
    const seq = median(sequential);
    const con = median(concurrent);
    return {
      backend: backendInfo(),
      model: o.model,
      parameters: model.parameterCount(),
      clients: o.clients,
      maxTokens: o.maxTokens,
      rounds: o.rounds,
      completionTokens: tokens,
      sequentialTokensPerSecond: seq,
      concurrentTokensPerSecond: con,
      ratio: con / seq,
      goal: 4,
      waves: [...server.waves],
    };
  } finally {
    await server.close();
    model.dispose();
  }
}
