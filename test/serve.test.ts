// `retool serve` as a user runs it, answered through the official OpenAI clients (npm `openai`
// and Python's `openai`): replies equal the engine's own decoding, streamed or not, batched or
// not; errors have OpenAI's shape.
import { join } from 'node:path';
import { execa } from 'execa';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openModel } from '../engine/model/checkpoint.js';
import { generate } from '../engine/model/generate.js';
import { initModelDir } from '../engine/model/init.js';
import { rollout } from '../engine/rollout/rollout.js';
import { Sandbox } from '../engine/sandbox/index.js';
import { initBackend } from '../engine/tensor/backend.js';
import { ROOT, tempHome } from './helpers/cli.js';
import { startServe, type RunningServer } from './helpers/serve.js';

const PYTHON = process.env.RETOOL_TEST_PYTHON ?? join(ROOT, '.venv', 'bin', 'python');
const QUESTION = 'Compute 12*7+5.';

describe('retool serve with the OpenAI clients', () => {
  const home = tempHome('retool-serve-');
  const modelDir = join(home.dir, 'tiny');
  let server: RunningServer | undefined;
  let baseURL: string;
  let client: OpenAI;
  let greedy: string;
  let prompt: number[];

  beforeAll(async () => {
    await initBackend();
    await initModelDir(modelDir, { preset: 'tiny', seed: 3 });
    const { model, tokenizer } = openModel(modelDir);
    prompt = tokenizer!.encode(tokenizer!.applyChatTemplate!([{ role: 'user', content: QUESTION }], { addGenerationPrompt: true }));
    const [out] = generate(model, [prompt], { maxNewTokens: 24, temperature: 0, eosIds: [tokenizer!.eosId], padId: tokenizer!.padId });
    greedy = tokenizer!.decode(out!.reason === 'eos' ? out!.tokens.slice(0, -1) : out!.tokens);
    model.dispose();

    server = await startServe(['--model', modelDir, '--name', 'tiny'], home.dir);
    baseURL = server.baseURL;
    client = new OpenAI({ baseURL, apiKey: 'unused', maxRetries: 0 });
  }, 120_000);
  afterAll(async () => {
    await server?.stop();
    home.cleanup();
  });

  it('lists the model', async () => {
    const models = await client.models.list();
    expect(models.data.map((m) => m.id)).toEqual(['tiny']);
  });

  it('answers a chat greedily with what the engine decodes, plain and streamed', async () => {
    const messages = [{ role: 'user' as const, content: QUESTION }];
    const reply = await client.chat.completions.create({ model: 'tiny', messages, temperature: 0, max_tokens: 24 });
    expect(greedy.length).toBeGreaterThan(8);
    expect(reply.choices[0]!.message.content).toBe(greedy);
    expect(reply.usage?.prompt_tokens).toBe(prompt.length);
    expect(['stop', 'length']).toContain(reply.choices[0]!.finish_reason);
    const stream = await client.chat.completions.create({ model: 'tiny', messages, temperature: 0, max_tokens: 24, stream: true });
    let text = '';
    let finish: string | null = null;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta?.content ?? '';
      finish = chunk.choices[0]?.finish_reason ?? finish;
    }
    expect(text).toBe(greedy);
    expect(finish).toBe(reply.choices[0]!.finish_reason);
  });

  it('cuts at a stop string', async () => {
    const stop = greedy.slice(3, 5);
    const reply = await client.chat.completions.create({
      model: 'tiny',
      messages: [{ role: 'user', content: QUESTION }],
      temperature: 0,
      max_tokens: 24,
      stop,
    });
    expect(reply.choices[0]!.message.content).toBe(greedy.slice(0, greedy.indexOf(stop)));
    expect(reply.choices[0]!.finish_reason).toBe('stop');
  });

  it('samples by seed: the same seed the same text alone or among 8 concurrent requests', async () => {
    const ask = (seed: number) =>
      client.completions
        .create({ model: 'tiny', prompt: 'Compute 3+4.', temperature: 1.2, max_tokens: 16, seed })
        .then((r) => r.choices[0]!.text);
    const alone = await Promise.all([11, 12].map(async (s) => ask(s)));
    const together = await Promise.all([11, 12, 13, 14, 15, 16, 17, 18].map(ask));
    expect(together.slice(0, 2)).toEqual(alone);
    expect(new Set(together).size).toBeGreaterThan(1);
  });

  it('refuses bad requests with OpenAI error bodies', async () => {
    const err = (p: Promise<unknown>) =>
      p.then(
        () => null,
        (e: unknown) => e as InstanceType<typeof OpenAI.APIError>,
      );
    const tooLong = await err(client.completions.create({ model: 'tiny', prompt: 'x '.repeat(300), max_tokens: 10 }));
    expect(tooLong?.status).toBe(400);
    expect(tooLong?.code).toBe('context_length_exceeded');
    const badTemperature = await err(
      client.chat.completions.create({ model: 'tiny', messages: [{ role: 'user', content: 'hi' }], temperature: 7 }),
    );
    expect(badTemperature?.status).toBe(400);
    expect(badTemperature?.param).toBe('temperature');
    const raw = await fetch(`${baseURL}/chat/completions`, { method: 'POST', body: '{not json' });
    expect(raw.status).toBe(400);
    expect(((await raw.json()) as { error: { type: string } }).error.type).toBe('invalid_request_error');
    expect((await fetch(`${baseURL}/embeddings`, { method: 'POST', body: '{}' })).status).toBe(404);
  });

  it("runs the model's code in the sandbox when asked, returning the trajectory the engine's rollout makes", async () => {
    const { model, tokenizer } = openModel(modelDir);
    const sandbox = new Sandbox();
    try {
      const { trajectories } = await rollout(model, tokenizer!, sandbox, [prompt], {
        tools: true,
        maxResponseTokens: 24,
        temperature: 0,
        seed: 1,
        batchSize: 1,
      });
      const t = trajectories[0]!;
      const expected = tokenizer!.decode(t.stop === 'eos' ? t.tokens.slice(0, -1) : t.tokens);
      const reply = await client.chat.completions.create({
        model: 'tiny',
        messages: [{ role: 'user', content: QUESTION }],
        temperature: 0,
        max_tokens: 24,
        seed: 1,
        // @ts-expect-error the server's own field, passed through by the client
        tools_in_sandbox: true,
      });
      expect(reply.choices[0]!.message.content).toBe(expected);
    } finally {
      await sandbox.close();
      model.dispose();
    }
  });

  it("answers Python's openai client, streamed and not", async () => {
    const script = `
import json, sys
from openai import OpenAI
c = OpenAI(base_url=sys.argv[1], api_key="unused", max_retries=0)
r = c.chat.completions.create(model="tiny", messages=[{"role": "user", "content": sys.argv[2]}], temperature=0, max_tokens=24)
s = "".join((ch.choices[0].delta.content or "") for ch in c.chat.completions.create(model="tiny", messages=[{"role": "user", "content": sys.argv[2]}], temperature=0, max_tokens=24, stream=True) if ch.choices)
print(json.dumps({"plain": r.choices[0].message.content, "streamed": s, "models": [m.id for m in c.models.list().data]}))
`;
    const { stdout } = await execa(PYTHON, ['-c', script, baseURL, QUESTION]);
    expect(JSON.parse(stdout)).toEqual({ plain: greedy, streamed: greedy, models: ['tiny'] });
  });
});
