import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { INTEGRATION } from './projects.js';

const TEST_DIR = resolve(import.meta.dirname);

describe('vitest projects', () => {
  it('every test file that asks for the suite’s Temporal server is in the integration project', () => {
    const needsServer = readdirSync(TEST_DIR)
      .filter((f) => f.endsWith('.test.ts'))
      .filter((f) => /inject\(\s*['"]temporal(Address|UiUrl)['"]/.test(readFileSync(join(TEST_DIR, f), 'utf8')))
      .map((f) => `test/${f}`);
    expect(needsServer.length).toBeGreaterThan(0);
    expect(needsServer.filter((f) => !INTEGRATION.includes(f))).toEqual([]);
  });
});
