// An OpenAI-compatible HTTP server over one model: /v1/models, /v1/chat/completions and
// /v1/completions, plain or streamed (server-sent events, as the OpenAI clients read them).
// Concurrent requests are decoded together (./scheduler.ts). Errors have OpenAI's body
// {"error": {message, type, param, code}}. With tools_in_sandbox, the model's <code> blocks run in
// the sandbox as it writes them and the reply holds the whole trajectory (ReTool's loop).
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { z } from 'zod';
import type { DecoderModel } from '../model/decoder.js';
import { stopTokenIds } from '../model/generate.js';
import { rollout } from '../rollout/rollout.js';
import type { Sandbox } from '../sandbox/index.js';
import type { ChatMessage, TextTokenizer } from '../tokenizer/types.js';
import { ApiError, ChatRequestSchema, CompletionRequestSchema, invalidRequest } from './openai.js';
import { BatchScheduler, type GenerationResult } from './scheduler.js';

export interface ServeOptions {
  model: DecoderModel;
  tokenizer: TextTokenizer;
  /** The name clients use in `model` (any name is accepted; this one is listed). */
  modelName: string;
  host?: string;
  port?: number;
  maxBatch?: number;
  /** Tokens a reply may have when the request names no max_tokens. */
  defaultMaxTokens?: number;
  /**
   * The sandbox of tools_in_sandbox requests, started before the model loaded (a process holding
   * a real model may not be allowed to fork); without one, such requests are refused. Closed with
   * the server.
   */
  sandbox?: Sandbox | null;
}

const MAX_BODY_BYTES = 4 * 1024 * 1024;

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) throw new ApiError(413, `request body over ${MAX_BODY_BYTES} bytes`, 'invalid_request_error');
    chunks.push(chunk as Buffer);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new ApiError(400, 'the body is not valid JSON', 'invalid_request_error', null, 'invalid_json');
  }
}

function parse<S extends z.ZodType>(schema: S, body: unknown): z.output<S> {
  const r = schema.safeParse(body);
  if (!r.success) throw invalidRequest(r.error);
  return r.data;
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

export class OpenAiServer {
  private readonly scheduler: BatchScheduler;
  private readonly server: Server;
  private readonly sandbox: Sandbox | null;
  private readonly stopIds: number[];
  private readonly created = Math.floor(Date.now() / 1000);

  constructor(private readonly o: ServeOptions) {
    this.stopIds = stopTokenIds(o.model.config, o.tokenizer);
    this.scheduler = new BatchScheduler(o.model, o.tokenizer, this.stopIds, o.maxBatch ?? 8);
    this.sandbox = o.sandbox ?? null;
    this.server = createServer((req, res) => void this.route(req, res));
  }

  /** Listens (loopback unless told otherwise) and resolves with the address. */
  listen(): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.o.port ?? 8000, this.o.host ?? '127.0.0.1', () => resolve(this.server.address() as AddressInfo));
    });
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    await this.sandbox?.close();
  }

  get waves(): readonly number[] {
    return this.scheduler.waves;
  }

  private async route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      const path = (req.url ?? '/').split('?')[0];
      if (req.method === 'GET' && path === '/v1/models')
        return sendJson(res, 200, {
          object: 'list',
          data: [{ id: this.o.modelName, object: 'model', created: this.created, owned_by: 'retool' }],
        });
      if (req.method === 'POST' && path === '/v1/chat/completions') return await this.chat(req, res);
      if (req.method === 'POST' && path === '/v1/completions') return await this.completion(req, res);
      throw new ApiError(404, `no route ${req.method} ${path}`, 'not_found_error', null, 'unknown_url');
    } catch (err) {
      const api = err instanceof ApiError ? err : new ApiError(500, (err as Error).message, 'server_error');
      if (!res.headersSent) sendJson(res, api.status, api.body());
      else res.end();
    }
  }

  /** Prompt ids checked against the context: the prompt plus the reply must fit. */
  private promptIds(text: string, maxTokens: number): number[] {
    const ids = this.o.tokenizer.encode(text);
    if (ids.length === 0) throw new ApiError(400, 'the prompt is empty', 'invalid_request_error', 'prompt');
    const context = this.o.model.config.max_position_embeddings;
    if (ids.length + maxTokens > context)
      throw new ApiError(
        400,
        `this model's context is ${context} tokens; the prompt has ${ids.length} and max_tokens asks for ${maxTokens} more`,
        'invalid_request_error',
        'max_tokens',
        'context_length_exceeded',
      );
    return ids;
  }

  private async chat(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = parse(ChatRequestSchema, await readJson(req));
    const apply = this.o.tokenizer.applyChatTemplate;
    if (!apply) throw new ApiError(400, 'this model has no chat template; use /v1/completions', 'invalid_request_error', 'messages');
    const messages: ChatMessage[] = body.messages.map((m) => ({ role: m.role === 'developer' ? 'system' : m.role, content: m.content }));
    const prompt = apply.call(this.o.tokenizer, messages, { addGenerationPrompt: true });
    const maxTokens = body.max_completion_tokens ?? body.max_tokens ?? this.o.defaultMaxTokens ?? 256;
    await this.respond(req, res, body, prompt, maxTokens, 'chat');
  }

  private async completion(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = parse(CompletionRequestSchema, await readJson(req));
    const maxTokens = body.max_tokens ?? this.o.defaultMaxTokens ?? 16;
    await this.respond(req, res, body, body.prompt, maxTokens, 'text');
  }

  private async respond(
    req: IncomingMessage,
    res: ServerResponse,
    body: z.output<typeof CompletionRequestSchema> | z.output<typeof ChatRequestSchema>,
    prompt: string,
    maxTokens: number,
    kind: 'chat' | 'text',
  ): Promise<void> {
    const ids = this.promptIds(prompt, maxTokens);
    const id = `${kind === 'chat' ? 'chatcmpl' : 'cmpl'}-${randomBytes(12).toString('hex')}`;
    const created = Math.floor(Date.now() / 1000);
    const object = kind === 'chat' ? 'chat.completion' : 'text_completion';
    const sampling = {
      temperature: body.temperature ?? 1,
      topP: body.top_p ?? 1,
      seed: body.seed ?? randomBytes(4).readUInt32LE() >>> 1,
      maxTokens,
    };
    const stop = body.stop == null ? [] : Array.isArray(body.stop) ? body.stop : [body.stop];
    const choice = (text: string | null, finish: string | null, delta: boolean) =>
      kind === 'chat'
        ? {
            index: 0,
            [delta ? 'delta' : 'message']: text === null ? {} : delta ? { content: text } : { role: 'assistant', content: text },
            finish_reason: finish,
            logprobs: null,
          }
        : { index: 0, text: text ?? '', finish_reason: finish, logprobs: null };
    const usage = (r: GenerationResult) => ({
      prompt_tokens: r.promptTokens,
      completion_tokens: r.completionTokens,
      total_tokens: r.promptTokens + r.completionTokens,
    });

    if (body.tools_in_sandbox && body.stream)
      throw new ApiError(400, 'tools_in_sandbox replies are not streamed', 'invalid_request_error', 'stream');
    if (!body.stream) {
      const result = body.tools_in_sandbox
        ? await this.withTools(ids, sampling)
        : await this.scheduler.submit({ prompt: ids, stop, ...sampling });
      return sendJson(res, 200, {
        id,
        object,
        created,
        model: body.model,
        choices: [choice(result.text, result.finishReason, false)],
        usage: usage(result),
      });
    }
    const gone = new AbortController();
    res.on('close', () => gone.abort());
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
    const chunkObject = kind === 'chat' ? 'chat.completion.chunk' : 'text_completion';
    const send = (payload: unknown) => res.write(`data: ${JSON.stringify(payload)}\n\n`);
    if (kind === 'chat')
      send({
        id,
        object: chunkObject,
        created,
        model: body.model,
        choices: [{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null, logprobs: null }],
      });
    const result = await this.scheduler.submit({
      prompt: ids,
      stop,
      ...sampling,
      signal: gone.signal,
      onText: (delta) => send({ id, object: chunkObject, created, model: body.model, choices: [choice(delta, null, true)] }),
    });
    send({ id, object: chunkObject, created, model: body.model, choices: [choice(null, result.finishReason, true)], usage: usage(result) });
    res.end('data: [DONE]\n\n');
  }

  /** ReTool's loop for one request: the model pauses at each </code>, the sandbox runs the code, its output goes in. */
  private async withTools(
    ids: number[],
    s: { temperature: number; topP: number; seed: number; maxTokens: number },
  ): Promise<GenerationResult> {
    if (!this.sandbox)
      throw new ApiError(400, 'this server has no sandbox, so tools_in_sandbox is off', 'invalid_request_error', 'tools_in_sandbox');
    const { trajectories } = await rollout(this.o.model, this.o.tokenizer, this.sandbox, [ids], {
      tools: true,
      maxResponseTokens: s.maxTokens,
      temperature: s.temperature,
      topP: s.topP,
      seed: s.seed,
      batchSize: 1,
    });
    const t = trajectories[0]!;
    const eos = t.stop === 'eos' && this.stopIds.includes(t.tokens.at(-1)!);
    return {
      text: this.o.tokenizer.decode(eos ? t.tokens.slice(0, -1) : t.tokens),
      promptTokens: ids.length,
      completionTokens: t.tokens.length,
      finishReason: t.stop === 'length' || t.stop === 'context' ? 'length' : 'stop',
    };
  }
}
