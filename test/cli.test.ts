import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { AIME24_FILE } from '../datasets/real-data.js';
import { ROOT, json, retool, tempHome } from './helpers/cli.js';
import { expectedSandboxMode } from './helpers/sandbox-mode.js';

const aimeRows = readFileSync(AIME24_FILE, 'utf8')
  .trim()
  .split('\n')
  .map((l) => JSON.parse(l) as { input: string; output: string });

describe('retool data (CLI, real store)', () => {
  const home = tempHome();
  afterAll(() => home.cleanup());

  beforeAll(async () => {
    const imported = json(
      await retool(
        [
          'data',
          'import',
          AIME24_FILE,
          '--name',
          'aime24',
          '--problem-field',
          'input',
          '--answer-field',
          'output',
          '--split',
          'test',
          '--json',
        ],
        { home: home.dir },
      ),
    );
    expect(imported.dataset).toMatchObject({ name: 'aime24', version: 1, rowCount: 30, splits: { test: 30 } });
  });

  it('lists and shows what was imported', async () => {
    const list = json<any[]>(await retool(['data', 'list', '--json'], { home: home.dir }));
    expect(list.map((d) => `${d.name}@${d.version}`)).toContain('aime24@1');
    const shown = json(await retool(['data', 'show', 'aime24', '--limit', '3', '--json'], { home: home.dir }));
    expect(shown.rows).toHaveLength(3);
    expect(shown.rows.map((r: any) => [r.problem, r.answer])).toEqual(aimeRows.slice(0, 3).map((r) => [r.input, r.output]));
    const human = await retool(['data', 'show', 'aime24', '--limit', '2'], { home: home.dir });
    expect(human.exitCode).toBe(0);
    expect(String(human.stdout)).toContain('aime24@1: 30 problems');
  });

  it('exports JSONL that reads back line by line', async () => {
    const out = join(home.dir, 'aime.jsonl');
    json(await retool(['data', 'export', 'aime24@1', '--out', out, '--json'], { home: home.dir }));
    const lines = readFileSync(out, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines.map((l) => l.answer)).toEqual(aimeRows.map((r) => r.output));
    expect(lines.every((l) => l.split === 'test')).toBe(true);
  });

  it('exports Parquet and JSONL that Hugging Face datasets loads as they are', async () => {
    const parquet = join(home.dir, 'aime.parquet');
    const jsonlFile = join(home.dir, 'aime-hf.jsonl');
    json(await retool(['data', 'export', 'aime24', '--out', parquet, '--json'], { home: home.dir }));
    json(await retool(['data', 'export', 'aime24', '--out', jsonlFile, '--json'], { home: home.dir }));
    const script = [
      'import json, sys, datasets',
      "p = datasets.load_dataset('parquet', data_files=sys.argv[1], split='train')",
      "j = datasets.load_dataset('json', data_files=sys.argv[2], split='train')",
      "print(json.dumps({'parquet': [list(p['problem']), list(p['answer'])], 'json': [list(j['problem']), list(j['answer'])], 'columns': p.column_names}))",
    ].join('\n');
    const { stdout } = await execa(join(ROOT, '.venv', 'bin', 'python'), ['-c', script, parquet, jsonlFile], {
      env: { HF_DATASETS_CACHE: join(home.dir, 'hf-cache'), HF_DATASETS_OFFLINE: '1', HF_HUB_OFFLINE: '1' },
    });
    const loaded = JSON.parse(stdout) as { parquet: string[][]; json: string[][]; columns: string[] };
    const expected = [aimeRows.map((r) => r.input), aimeRows.map((r) => r.output)];
    expect(loaded.parquet).toEqual(expected);
    expect(loaded.json).toEqual(expected);
    expect(loaded.columns).toEqual(['id', 'problem', 'answer', 'family', 'level', 'split', 'extra']);
  });

  it('refuses a duplicate name with exit 2, a one-line message and nothing written', async () => {
    const again = await retool(
      ['data', 'import', AIME24_FILE, '--name', 'aime24', '--problem-field', 'input', '--answer-field', 'output'],
      { home: home.dir },
    );
    expect(again.exitCode).toBe(2);
    expect(String(again.stderr)).toMatch(/already exists.*--new-version/);
    expect(String(again.stderr)).not.toMatch(/\n\s+at /);
    const list = json<any[]>(await retool(['data', 'list', '--json'], { home: home.dir }));
    expect(list.filter((d) => d.name === 'aime24')).toHaveLength(1);
  });

  it('names file, line and field for a malformed file', async () => {
    const bad = join(home.dir, 'bad.jsonl');
    writeFileSync(bad, '{"q": "1+1", "a": "2"}\n{"q": "2+2", "a": 4\n');
    const result = await retool(['data', 'import', bad, '--name', 'bad', '--problem-field', 'q', '--answer-field', 'a'], {
      home: home.dir,
    });
    expect(result.exitCode).toBe(2);
    expect(String(result.stderr)).toContain(`${bad} line 2: malformed JSON`);
    const missing = join(home.dir, 'missing.jsonl');
    writeFileSync(missing, '{"q": "1+1", "a": "2"}\n{"q": "2+2"}\n');
    const noField = await retool(['data', 'import', missing, '--name', 'bad', '--problem-field', 'q', '--answer-field', 'a'], {
      home: home.dir,
    });
    expect(noField.exitCode).toBe(2);
    expect(String(noField.stderr)).toContain('line 2: field "a" is missing or empty');
  });

  it('synthesises, splits and shows one split', async () => {
    const made = json(
      await retool(
        [
          'data',
          'synth',
          '--name',
          'toy',
          '--count',
          '500',
          '--seed',
          '7',
          '--families',
          'arith_chain,mod_pow',
          '--test-fraction',
          '0.3',
          '--json',
        ],
        { home: home.dir },
      ),
    );
    expect(made.rowCount).toBe(500);
    expect(made.splits.train + made.splits.test).toBe(500);
    const test = json(await retool(['data', 'show', 'toy:test', '--limit', '1000', '--json'], { home: home.dir }));
    expect(test.rows).toHaveLength(made.splits.test);
    expect(new Set(test.rows.map((r: any) => r.family))).toEqual(new Set(['arith_chain', 'mod_pow']));
    const badFamily = await retool(['data', 'synth', '--name', 'toy2', '--count', '5', '--seed', '1', '--families', 'calculus'], {
      home: home.dir,
    });
    expect(badFamily.exitCode).toBe(2);
    expect(String(badFamily.stderr)).toContain('unknown family "calculus"');
  });

  it('reports an unknown dataset with the known ones', async () => {
    const result = await retool(['data', 'show', 'nope'], { home: home.dir });
    expect(result.exitCode).toBe(2);
    expect(String(result.stderr)).toContain('No dataset named "nope"');
    expect(String(result.stderr)).toContain('aime24');
  });
});

describe('retool grade (CLI)', () => {
  const home = tempHome();
  afterAll(() => home.cleanup());

  it('grades one answer with a JSON verdict', async () => {
    const yes = json(
      await retool(['grade', '--pred', 'so the answer is \\boxed{\\dfrac{3}{4}}', '--gold', '0.75', '--json'], { home: home.dir }),
    );
    expect(yes).toMatchObject({ correct: true, extracted: '\\dfrac{3}{4}' });
    const no = json(await retool(['grade', '--pred', '\\boxed{-3}', '--gold', '3', '--json'], { home: home.dir }));
    expect(no.correct).toBe(false);
  });

  it('grades a JSONL batch from stdin and rejects a bad line by number', async () => {
    const input = ['{"pred": "\\\\boxed{1,000}", "gold": "1000"}', '{"pred": "\\\\boxed{7}", "gold": 8}', ''].join('\n');
    const result = await retool(['grade'], { home: home.dir, input });
    expect(result.exitCode).toBe(0);
    expect(
      String(result.stdout)
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l).correct),
    ).toEqual([true, false]);
    const bad = await retool(['grade'], { home: home.dir, input: '{"pred": "1", "gold": "1"}\nnot json\n' });
    expect(bad.exitCode).toBe(2);
    expect(String(bad.stderr)).toContain('stdin line 2');
  });
});

describe('retool exec (CLI, real sandbox)', () => {
  const home = tempHome();
  afterAll(() => home.cleanup());

  it('runs Python from stdin and reports the result as JSON', async () => {
    const ok = json(await retool(['exec', '--json'], { home: home.dir, input: 'import sympy\nprint(sympy.factorint(2**10 * 3))\n' }));
    expect(ok).toMatchObject({ status: 'ok', exitCode: 0, stdout: '{2: 10, 3: 1}\n', rendered: '{2: 10, 3: 1}' });
    // The mode is recorded: bubblewrap where installed, else the unshare fallback.
    expect(ok.isolation).toBe(expectedSandboxMode());
  });

  it('exits 1 on failing code and renders the last traceback line', async () => {
    const failed = await retool(['exec', '--json'], { home: home.dir, input: 'def f():\n    return 1 / 0\nf()\n' });
    expect(failed.exitCode).toBe(1);
    expect(JSON.parse(String(failed.stdout))).toMatchObject({ status: 'error', rendered: 'ZeroDivisionError: division by zero' });
    const slow = await retool(['exec', '--timeout-ms', '300', '--json'], { home: home.dir, input: 'while True: pass\n' });
    expect(JSON.parse(String(slow.stdout)).status).toBe('timeout');
  });

  it('runs JavaScript with --lang javascript', async () => {
    const js = json(
      await retool(['exec', '--lang', 'javascript', '--json'], { home: home.dir, input: 'console.log([1, 2, 3].reduce((a, b) => a + b))' }),
    );
    expect(js).toMatchObject({ status: 'ok', stdout: '6\n' });
  });
});
