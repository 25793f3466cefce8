// The OpenAI-compatible teacher against a real local HTTP server that plays the chat-completions
// API: requests, retries, backoff, concurrency and failures go through the real client code.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { OpenAITeacher } from '../engine/coldstart/openai-teacher.js';
import { OpenAITeacherOptionsSchema } from '../engine/coldstart/options.js';
import { isFailure, type TeacherFailure, type TeacherProblem, type TeacherTrace } from '../engine/coldstart/teacher.js';
import { checkFormat, codeBlocks } from '../engine/trace/format.js';

interface Seen {
  url: string;
  authorization: string | undefined;
  body: { model: string; messages: Array<{ role: string; content: string }>; temperature: number; seed: number };
}

type Reply = (
  seen: Seen,
  index: number,
) =>
  | Promise<{ status: number; body: unknown; headers?: Record<string, string> }>
  | { status: number; body: unknown; headers?: Record<string, string> };

interface Mock {
  baseUrl: string;
  seen: Seen[];
  maxInFlight: number;
  close(): Promise<void>;
}

const servers: Mock[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function mockServer(reply: Reply): Promise<Mock> {
  const seen: Seen[] = [];
  let inFlight = 0;
  const mock: Mock = { baseUrl: '', seen, maxInFlight: 0, close: async () => {} };
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    inFlight += 1;
    mock.maxInFlight = Math.max(mock.maxInFlight, inFlight);
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', async () => {
      const s: Seen = {
        url: req.url ?? '',
        authorization: req.headers.authorization,
        body: JSON.parse(Buffer.concat(chunks).toString('utf8')),
      };
      const index = seen.push(s) - 1;
      const r = await reply(s, index);
      inFlight -= 1;
      res.writeHead(r.status, { 'content-type': 'application/json', ...r.headers });
      res.end(typeof r.body === 'string' ? r.body : JSON.stringify(r.body));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  mock.baseUrl = `http://127.0.0.1:${port}/v1`;
  mock.close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  servers.push(mock);
  return mock;
}

const completion = (content: string) => ({
  id: 'x',
  object: 'chat.completion',
  choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: 'stop' }],
});
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const problem: TeacherProblem = { id: 'p1', problem: 'What is 17 * 23 + 4?', answer: '395', family: null, level: null };
const TEXT = 'First, 17 * 23 = 391. Adding 4 gives 395.\n<answer>\\boxed{395}</answer>';
const CODE = [
  'First compute the product and add 4.',
  '<code>',
  '```python',
  'print(17 * 23 + 4)',
  '```',
  '</code>',
  '<interpreter>',
  '395',
  '</interpreter>',
  'So the result is 395.',
  '<answer>\\boxed{395}</answer>',
].join('\n');

function teacher(baseUrl: string, extra: Record<string, unknown> = {}) {
  return new OpenAITeacher(
    OpenAITeacherOptionsSchema.parse({
      baseUrl,
      model: 'teacher-model',
      apiKey: 'sk-test-secret',
      initialBackoffMs: 1,
      maxBackoffMs: 5,
      ...extra,
    }),
  );
}

function asTrace(r: TeacherTrace | TeacherFailure): TeacherTrace {
  if (isFailure(r)) throw new Error(`expected a trace, got a failure: ${r.error}`);
  return r;
}

function asFailure(r: TeacherTrace | TeacherFailure): TeacherFailure {
  if (!isFailure(r)) throw new Error(`expected a failure, got a trace: ${r.response}`);
  return r;
}

describe('OpenAITeacher', () => {
  it('code mode solves, then rewrites the solution into code-integrated reasoning', async () => {
    const mock = await mockServer((_s, i) => ({
      status: 200,
      body: completion(i === 0 ? `${TEXT}\nSome chatter after the answer.` : `${CODE}\n\nHope this helps!`),
    }));
    const t = teacher(mock.baseUrl);
    const trace = asTrace(await t.write(problem, 'code'));
    await t.close();

    expect(mock.seen).toHaveLength(2);
    for (const s of mock.seen) {
      expect(s.url).toBe('/v1/chat/completions');
      expect(s.authorization).toBe('Bearer sk-test-secret');
      expect(s.body.model).toBe('teacher-model');
      expect(s.body.temperature).toBe(0.2);
      expect(s.body.seed).toBe(0);
    }
    const [solve, rewrite] = mock.seen as [Seen, Seen];
    expect(solve.body.messages.map((m) => m.content).join('\n')).toContain(problem.problem);
    const rewriteText = rewrite.body.messages.map((m) => m.content).join('\n');
    expect(rewriteText).toContain('First, 17 * 23 = 391. Adding 4 gives 395.');
    expect(rewriteText).toContain(problem.problem);
    // The text after the first answer never reaches the rewrite.
    expect(rewriteText).not.toContain('Some chatter');

    expect(trace).toEqual({ problemId: 'p1', mode: 'code', teacher: 'openai', response: CODE, seededDefect: null, selfCorrection: false });
    expect(checkFormat(trace.response)).toEqual({ ok: true });
    expect(codeBlocks(trace.response)).toEqual([{ code: 'print(17 * 23 + 4)', output: '395' }]);
  });

  it('text mode makes one request and cuts text after the answer', async () => {
    const mock = await mockServer(() => ({ status: 200, body: completion(`${TEXT}\ntrailing words`) }));
    const trace = asTrace(await teacher(mock.baseUrl).write(problem, 'text'));
    expect(mock.seen).toHaveLength(1);
    expect(trace.response).toBe(TEXT);
    expect(trace.mode).toBe('text');
  });

  it('retries 429 and honours Retry-After', async () => {
    const mock = await mockServer((_s, i) =>
      i < 2
        ? { status: 429, body: { error: { message: 'slow down' } }, headers: { 'retry-after': '0' } }
        : { status: 200, body: completion(TEXT) },
    );
    const trace = asTrace(await teacher(mock.baseUrl, { initialBackoffMs: 10_000, maxBackoffMs: 20_000 }).write(problem, 'text'));
    expect(trace.response).toBe(TEXT);
    expect(mock.seen).toHaveLength(3);
  });

  it('gives up on 500 after maxRetries + 1 attempts, naming the status and URL but never the key', async () => {
    const mock = await mockServer(() => ({ status: 500, body: { error: 'boom' } }));
    const failure = asFailure(await teacher(mock.baseUrl, { maxRetries: 3 }).write(problem, 'code'));
    expect(mock.seen).toHaveLength(4);
    expect(failure.problemId).toBe('p1');
    expect(failure.error).toContain('500');
    expect(failure.error).toContain(`${mock.baseUrl}/chat/completions`);
    expect(failure.error).not.toContain('sk-test-secret');
  });

  it('does not retry a 400', async () => {
    const mock = await mockServer(() => ({ status: 400, body: { error: { message: 'bad request (key sk-test-secret)' } } }));
    const failure = asFailure(await teacher(mock.baseUrl).write(problem, 'text'));
    expect(mock.seen).toHaveLength(1);
    expect(failure.error).toContain('400');
    expect(failure.error).not.toContain('sk-test-secret');
  });

  it('keeps at most `concurrency` requests in flight', async () => {
    const mock = await mockServer(async () => {
      await sleep(20);
      return { status: 200, body: completion(TEXT) };
    });
    const t = teacher(mock.baseUrl, { concurrency: 2 });
    const results = await Promise.all(Array.from({ length: 10 }, (_, i) => t.write({ ...problem, id: `p${i}` }, 'text')));
    expect(results.map((r) => asTrace(r).problemId)).toEqual(Array.from({ length: 10 }, (_, i) => `p${i}`));
    expect(mock.seen).toHaveLength(10);
    expect(mock.maxInFlight).toBe(2);
  });

  it('fails on a malformed body', async () => {
    const mock = await mockServer(() => ({ status: 200, body: { id: 'x', object: 'chat.completion' } }));
    const failure = asFailure(await teacher(mock.baseUrl).write(problem, 'text'));
    expect(failure.error).toMatch(/malformed/);
    expect(mock.seen).toHaveLength(1);
  });

  it('fails on a body that is not JSON', async () => {
    const mock = await mockServer(() => ({ status: 200, body: '<html>gateway</html>' }));
    const failure = asFailure(await teacher(mock.baseUrl).write(problem, 'text'));
    expect(failure.error).toMatch(/not JSON/);
  });

  it('retries a request that times out', async () => {
    const mock = await mockServer(async (_s, i) => {
      if (i === 0) await sleep(300);
      return { status: 200, body: completion(TEXT) };
    });
    const trace = asTrace(await teacher(mock.baseUrl, { timeoutMs: 100 }).write(problem, 'text'));
    expect(trace.response).toBe(TEXT);
    expect(mock.seen).toHaveLength(2);
  });

  it('reports a network error after retries', async () => {
    const mock = await mockServer(() => ({ status: 200, body: completion(TEXT) }));
    const baseUrl = mock.baseUrl;
    await mock.close();
    servers.length = 0;
    const failure = asFailure(await teacher(baseUrl, { maxRetries: 1 }).write(problem, 'text'));
    expect(failure.error).toMatch(/after 2 attempts: network error/);
  });

  it('sends no Authorization header without a key', async () => {
    const mock = await mockServer(() => ({ status: 200, body: completion(TEXT) }));
    const saved = process.env.OPENAI_API_KEY;
    delete process.env.OPENAI_API_KEY;
    try {
      const t = new OpenAITeacher(OpenAITeacherOptionsSchema.parse({ baseUrl: mock.baseUrl }));
      asTrace(await t.write(problem, 'text'));
    } finally {
      if (saved !== undefined) process.env.OPENAI_API_KEY = saved;
    }
    expect(mock.seen[0]!.authorization).toBeUndefined();
  });
});
