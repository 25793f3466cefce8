// `retool data import FILE --kind traces`: conversation rows (the shape of the public ReTool SFT
// set) from JSONL and Parquet, verified in the real sandbox, stored with the file as lineage, and
// trainable by `retool sft`; malformed rows are named and leave nothing behind.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { storedColdStart } from '../datasets/pipeline-runs.js';
import { withStore } from '../datasets/store.js';
import { json, retool, tempHome } from './helpers/cli.js';

const SYSTEM = { role: 'system', content: 'You are a helpful assistant.' };
const code = (src: string, out: string, answer: string, before = 'Let me compute it.') =>
  `${before}\n<code>\n\`\`\`python\n${src}\n\`\`\`\n</code>\n<interpreter>\n${out}\n</interpreter>\nSo the answer is:\n<answer>\n\\boxed{${answer}}\n</answer>`;
const row = (problem: string, response: string, extra: Record<string, unknown> = {}) => ({
  messages: [SYSTEM, { role: 'user', content: problem }, { role: 'assistant', content: response }],
  ...extra,
});

// Hand-checked: 17*23 = 391; 2**10 = 1024; 99+1 = 100.
const ROWS = [
  row('What is 17 times 23?', code('print(17*23)', '391', '391'), { answer: '391' }),
  // The interpreter output was invented: the code prints 1024.
  row('What is 2 to the 10th?', code('print(2**10)', '1000', '1000'), { answer: '1024' }),
  // Right code, wrong final answer.
  row('What is 99 plus 1?', code('print(99+1)', '100', '101'), { answer: '100' }),
  // No code at all: a text trace, kept when its answer is right.
  row('What is 6 times 7?', 'Six sevens are 42.\n<answer>\n\\boxed{42}\n</answer>', { answer: '42' }),
];

const lines = (rows: unknown[]) => rows.map((r) => JSON.stringify(r)).join('\n') + '\n';

describe('retool data import --kind traces', () => {
  const home = tempHome('retool-trace-import-');
  const file = (name: string) => join(home.dir, name);
  const run = (args: string[]) => retool(['data', 'import', ...args], { home: home.dir });
  beforeAll(() => writeFileSync(file('traces.jsonl'), lines(ROWS)));
  afterAll(() => home.cleanup());

  it('verifies every row in two stages and stores the kept and the rejected, with the file as lineage', async () => {
    const summary = json(await run([file('traces.jsonl'), '--kind', 'traces', '--name', 'imported', '--json']));
    expect(summary).toMatchObject({
      dataset: 'imported@1',
      rows: 4,
      graded: 4,
      codeTraces: 3,
      kept: 2,
      rejected: 2,
      rejectedByReason: { output_mismatch: 1, wrong_answer: 1 },
    });
    expect(summary.sha256).toMatch(/^[0-9a-f]{64}$/);
    const shown = json(await retool(['data', 'show', 'imported', '--json'], { home: home.dir }));
    expect(shown.dataset).toMatchObject({ kind: 'traces', source: `import:${file('traces.jsonl')}`, parents: [] });
    const verdicts = Object.fromEntries(
      shown.rows.map((r: { problem: string; rejectReason: string | null }) => [r.problem, r.rejectReason ?? 'kept']),
    );
    expect(verdicts).toEqual({
      'What is 17 times 23?': 'kept',
      'What is 2 to the 10th?': 'output_mismatch',
      'What is 99 plus 1?': 'wrong_answer',
      'What is 6 times 7?': 'kept',
    });
  }, 120_000);

  it('reads Parquet alike; without gold answers the code is still re-run but the answer is not graded', async () => {
    const db = await DuckDBInstance.create(':memory:');
    const conn = await db.connect();
    const noGold = ROWS.map(({ messages }) => ({ messages }));
    writeFileSync(file('no-gold.jsonl'), lines(noGold));
    await conn.run(`COPY (SELECT * FROM read_json('${file('no-gold.jsonl')}')) TO '${file('no-gold.parquet')}' (FORMAT parquet)`);
    conn.closeSync();
    const summary = json(await run([file('no-gold.parquet'), '--kind', 'traces', '--name', 'no-gold', '--json']));
    // The invented output is still caught; the wrong final answer cannot be.
    expect(summary).toMatchObject({ rows: 4, graded: 0, kept: 3, rejectedByReason: { output_mismatch: 1 } });
  }, 120_000);

  it('the imported traces train: retool sft reads the kept ones', async () => {
    const model = file('tiny');
    json(await retool(['model', 'init', '--out', model, '--json'], { home: home.dir }));
    const sft = json(
      await retool(
        ['sft', '--dataset', 'imported', '--model', model, '--out', file('sft'), '--steps', '2', '--batch-size', '2', '--json'],
        {
          home: home.dir,
        },
      ),
    );
    expect(sft).toMatchObject({ traces: 'imported@1', examples: 2, steps: 2 });
    expect(Number.isFinite(sft.finalLoss)).toBe(true);
  }, 120_000);

  it('an imported set is the cold start of a pipeline arm (teacher: stored): any verified traces for the code arm, text-only ones for the text arm', async () => {
    writeFileSync(file('words.jsonl'), lines([ROWS[3]]));
    json(await run([file('words.jsonl'), '--kind', 'traces', '--name', 'words', '--json']));
    await withStore(home.dir, async (store) => {
      const code = await storedColdStart(store, 'imported', 'code');
      expect([code.dataset.name, code.dataset.version, code.kept]).toEqual(['imported', 1, 2]);
      await expect(storedColdStart(store, 'imported', 'text')).rejects.toThrow(
        'teacher.text: imported@1 holds 1 verified traces that call code; the text arm trains on text only',
      );
      expect((await storedColdStart(store, 'words@1', 'text')).kept).toBe(1);
      await expect(storedColdStart(store, 'nowhere', 'code')).rejects.toThrow(/^teacher\.code: .*nowhere/);
    });
  }, 120_000);

  it.each([
    [
      'roles out of order',
      [
        row('Q?', 'A'),
        {
          messages: [
            { role: 'assistant', content: 'A' },
            { role: 'user', content: 'Q?' },
          ],
        },
      ],
      /line 2: messages: expected system turns \(optional\), then one user turn and one assistant turn/,
    ],
    [
      'a message without content',
      [{ messages: [{ role: 'user', content: 'Q?' }, { role: 'assistant' }] }],
      /line 1: messages\[1\]\.content/,
    ],
    ['an empty trace', [row('Q?', '   ')], /line 1: messages: the assistant turn \(the trace\) is empty/],
    [
      'no messages field',
      [{ conversation: [] }],
      /no field "messages" in the rows \(fields found: conversation\); choose one with --messages-field/,
    ],
    ['an empty gold answer', [row('Q?', code('print(1)', '1', '1'), { answer: '' })], /line 1: field "answer" is missing or empty/],
  ])(
    'refuses %s, naming the row, and stores nothing',
    async (_what, rows, message) => {
      writeFileSync(file('bad.jsonl'), lines(rows));
      const result = await run([file('bad.jsonl'), '--kind', 'traces', '--name', 'bad']);
      expect(result.exitCode).toBe(2);
      expect(String(result.stderr)).toMatch(message);
      const listed = json(await retool(['data', 'list', '--json'], { home: home.dir }));
      expect(JSON.stringify(listed)).not.toContain('"bad"');
    },
    60_000,
  );

  it('refuses a line that is not JSON, naming it', async () => {
    writeFileSync(file('broken.jsonl'), `${JSON.stringify(ROWS[0])}\n{"messages": [\n`);
    const result = await run([file('broken.jsonl'), '--kind', 'traces', '--name', 'broken']);
    expect(result.exitCode).toBe(2);
    expect(String(result.stderr)).toMatch(/line 2: malformed JSON/);
  }, 60_000);
});
