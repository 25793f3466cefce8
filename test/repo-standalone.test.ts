/**
 * The repository stands alone: no tracked file outside docs/ reads data from outside the clone,
 * and the real data it ships instead (datasets/real/) is there and parses.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { AIME24_FILE, AIME25_FILE, RETOOL_PROMPT_TEMPLATE_FILE } from '../datasets/real-data.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

// Assembled here so that this file does not match itself.
const OUTSIDE_REFERENCES = [['..', 'shared'].join('/'), ['', 'work', 'shared'].join('/')];

const UNTRACKED_DIRS = new Set(['.git', 'node_modules', '.venv', '.retool', 'scratch']);

/** The files git tracks; outside a git checkout (an exported tarball), every file but installs and state. */
function trackedFiles(): string[] {
  try {
    return execFileSync('git', ['ls-files', '-z'], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
      .split('\0')
      .filter(Boolean);
  } catch {
    const files: string[] = [];
    const walk = (dir: string): void => {
      for (const entry of readdirSync(join(ROOT, dir), { withFileTypes: true })) {
        const rel = dir ? `${dir}/${entry.name}` : entry.name;
        if (entry.isDirectory()) {
          if (!UNTRACKED_DIRS.has(entry.name)) walk(rel);
        } else if (entry.isFile()) files.push(rel);
      }
    };
    walk('');
    return files;
  }
}
const tracked = trackedFiles();

describe('the repository stands alone', () => {
  it('no tracked file outside docs/ refers to data outside the repository', () => {
    expect(tracked.length).toBeGreaterThan(50);
    const offenders: string[] = [];
    for (const file of tracked) {
      if (file.startsWith('docs/')) continue;
      const path = join(ROOT, file);
      if (!existsSync(path)) continue; // deleted in the working tree, not yet committed
      const text = readFileSync(path).toString('latin1');
      for (const needle of OUTSIDE_REFERENCES) {
        let at = text.indexOf(needle);
        while (at !== -1) {
          const line = text.slice(0, at).split('\n').length;
          offenders.push(`${file}:${line}: ${needle}`);
          at = text.indexOf(needle, at + needle.length);
        }
      }
    }
    expect(offenders).toEqual([]);
  });

  it.each([
    ['AIME 2024', AIME24_FILE],
    ['AIME 2025', AIME25_FILE],
  ])('the shipped %s file holds 30 problems with integer answers', (_name, file) => {
    const lines = readFileSync(file, 'utf8')
      .split('\n')
      .filter((l) => l.trim() !== '');
    expect(lines).toHaveLength(30);
    for (const line of lines) {
      const row = JSON.parse(line) as Record<string, unknown>;
      expect(Object.keys(row).sort()).toEqual(['input', 'output']);
      expect(typeof row.input).toBe('string');
      expect((row.input as string).length).toBeGreaterThan(20);
      // AIME answers are integers 0..999, stored as strings.
      expect(row.output).toMatch(/^\d{1,3}$/);
    }
  });

  it('the shipped ReTool prompt template has one {query} slot', () => {
    const template = JSON.parse(readFileSync(RETOOL_PROMPT_TEMPLATE_FILE, 'utf8')) as Record<string, unknown>;
    expect(Object.keys(template)).toEqual(['retool']);
    expect(typeof template.retool).toBe('string');
    expect((template.retool as string).split('{query}')).toHaveLength(2);
  });
});
