// `retool synth --teacher openai` end to end: the real CLI, store, client and sandbox against a
// local server playing a chat-completions API (the hosted LLM is the only part that is mocked).
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { briefStore } from '../datasets/store.js';
import { Sandbox } from '../engine/sandbox/index.js';
import { coldStart } from '../stages/coldstart.js';
import { json, retool, tempHome } from './helpers/cli.js';

const trace = (code: string, output: string, answer: string) =>
  `Work it out.\n<code>\n\`\`\`python\n${code}\n\`\`\`\n</code>\n<interpreter>\n${output}\n</interpreter>\n<answer>\\boxed{${answer}}</answer>`;

// By problem: an honest rewrite, one whose recorded output the code does not print (a hallucinated
// interpreter), and one with a wrong final answer.
const REWRITES: Record<string, string> = {
  'What is 17 times 23?': trace('print(17*23)', '391', '391'),
  'What is 2 to the 10th?': trace('print(2**10)', '1000', '1000'),
  'What is 99 plus 1?': trace('print(99+1)', '100', '101'),
};

describe('retool synth --teacher openai', () => {
  const home = tempHome('retool-openai-');
  let baseUrl = '';
  const authorizations: (string | undefined)[] = [];
  const server = createServer((req, res) => {
    authorizations.push(req.headers.authorization);
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { messages: { role: string; content: string }[] };
      const user = body.messages.at(-1)!.content;
      const problem = Object.keys(REWRITES).find((p) => user.includes(p))!;
      const rewriting = body.messages.some((m) => /rewrit/i.test(m.content));
      const content = rewriting ? REWRITES[problem]! : `Compute step by step.\n<answer>\\boxed{0}</answer>`;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ choices: [{ message: { role: 'assistant', content }, finish_reason: 'stop' }] }));
    });
  });
  beforeAll(async () => {
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
    const file = join(home.dir, 'problems.jsonl');
    writeFileSync(
      file,
      [
        '{"problem":"What is 17 times 23?","answer":"391"}',
        '{"problem":"What is 2 to the 10th?","answer":"1024"}',
        '{"problem":"What is 99 plus 1?","answer":"100"}',
      ].join('\n'),
    );
    json(await retool(['data', 'import', file, '--name', 'mini', '--json'], { home: home.dir }));
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
    home.cleanup();
  });

  it('keeps the honest trace and rejects an invented interpreter output and a wrong answer', async () => {
    const summary = json(
      await retool(
        [
          'synth',
          '--dataset',
          'mini',
          '--out',
          'mini-code',
          '--teacher',
          'openai',
          '--openai-base-url',
          baseUrl,
          '--openai-model',
          'mock-teacher',
          '--json',
        ],
        { home: home.dir, env: { OPENAI_API_KEY: 'sk-test-not-a-real-key' } },
      ),
    );
    expect(summary).toMatchObject({
      teacher: 'openai',
      problems: 3,
      kept: 1,
      rejected: 2,
      rejectedByReason: { output_mismatch: 1, wrong_answer: 1 },
    });
    const shown = json(await retool(['data', 'show', 'mini-code', '--json'], { home: home.dir }));
    const byProblem = Object.fromEntries(
      shown.rows.map((r: { problem: string; verified: boolean; rejectReason: string | null }) => [r.problem, r.rejectReason ?? 'kept']),
    );
    expect(byProblem).toEqual({
      'What is 17 times 23?': 'kept',
      'What is 2 to the 10th?': 'output_mismatch',
      'What is 99 plus 1?': 'wrong_answer',
    });
    expect(JSON.stringify(shown)).not.toContain('sk-test-not-a-real-key');
  }, 120_000);

  it("the pipeline's way: the key is read from the environment variable the config names, and a missing one is a clear error", async () => {
    const sandbox = new Sandbox({ poolSize: 1 });
    process.env.RETOOL_TEST_TEACHER_KEY = 'sk-named-by-config';
    try {
      const options = {
        dataset: 'mini',
        out: 'mini-pipeline',
        teacher: 'openai' as const,
        openai: { baseUrl, model: 'mock-teacher', apiKeyEnv: 'RETOOL_TEST_TEACHER_KEY' },
      };
      authorizations.length = 0;
      const summary = await coldStart(briefStore(home.dir), sandbox, options);
      expect(summary).toMatchObject({ teacher: 'openai', kept: 1 });
      expect(new Set(authorizations)).toEqual(new Set(['Bearer sk-named-by-config']));
      delete process.env.RETOOL_TEST_TEACHER_KEY;
      await expect(coldStart(briefStore(home.dir), sandbox, { ...options, out: 'mini-nokey' })).rejects.toThrow(
        /RETOOL_TEST_TEACHER_KEY is not set/,
      );
    } finally {
      delete process.env.RETOOL_TEST_TEACHER_KEY;
      await sandbox.close();
    }
  }, 120_000);
});
