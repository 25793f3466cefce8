// The cold-start teacher pointed at `retool serve` of a real instruct model (SmolLM2-135M through
// `retool model fetch`): the project's OpenAI-compatible client, the server and the two-stage
// verification end to end, nothing mocked. A 135M model is no teacher, so what is asserted is that
// every request is answered and every trace verified and stored, not that many are kept.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { json, retool, tempHome } from './helpers/cli.js';
import { startServe, type RunningServer } from './helpers/serve.js';

const PROBLEMS = [
  { problem: 'What is 17 times 23?', answer: '391' },
  { problem: 'What is 2 to the 10th power?', answer: '1024' },
];

describe('retool synth --teacher openai against retool serve', () => {
  const home = tempHome('retool-teacher-serve-');
  let server: RunningServer | undefined;

  beforeAll(async () => {
    const fetched = json(await retool(['model', 'fetch', 'smollm2-135m-instruct', '--json'], { home: home.dir }));
    // Short replies keep the test quick; the teacher sends no max_tokens, so serve's default applies.
    server = await startServe(['--model', fetched.dir, '--name', 'smollm2', '--max-tokens', '48'], home.dir);
    const file = join(home.dir, 'problems.jsonl');
    writeFileSync(file, PROBLEMS.map((p) => JSON.stringify(p)).join('\n'));
    json(await retool(['data', 'import', file, '--name', 'mini', '--json'], { home: home.dir }));
  }, 600_000);
  afterAll(async () => {
    await server?.stop();
    home.cleanup();
  });

  it('gets an answer to every request and verifies and stores every trace', async () => {
    const args = ['synth', '--dataset', 'mini', '--out', 'mini-code', '--teacher', 'openai'];
    const summary = json(
      await retool([...args, '--openai-base-url', server!.baseURL, '--openai-model', 'smollm2', '--json'], {
        home: home.dir,
        env: { OPENAI_API_KEY: '' },
      }),
    );
    expect(summary).toMatchObject({ teacher: 'openai', mode: 'code', problems: 2, teacherFailures: 0 });
    expect(summary.kept + summary.rejected).toBe(2);
    const shown = json(await retool(['data', 'show', 'mini-code', '--json'], { home: home.dir }));
    expect(shown.rows.map((r: { problem: string }) => r.problem).sort()).toEqual(PROBLEMS.map((p) => p.problem).sort());
    for (const row of shown.rows as { response: string }[]) expect(row.response.trim().length).toBeGreaterThan(0);
  }, 300_000);
});
