#!/usr/bin/env node
// The `retool` command. It runs the compiled CLI in dist/ (built by `npm install`, refreshed by
// `npm run build`) when dist/ was built from the sources as they are now: a stat of each source
// file, a few milliseconds. Otherwise it runs the TypeScript sources through tsx, which compiles
// them at every start (seconds, not a fraction of one), and says so in one line on stderr.
// RETOOL_FROM_SOURCES=1 asks for the sources, silently.
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { distState } from './freshness.mjs';

const fromSources = process.env.RETOOL_FROM_SOURCES === '1';
const dist = fromSources ? null : distState(join(dirname(fileURLToPath(import.meta.url)), '..'));
if (dist?.fresh) {
  await import('../dist/cli/cli.js');
} else {
  // Not under the test runner: tests run the sources on purpose (they change while the suite
  // runs) and compare stderr line by line.
  if (dist && !process.env.VITEST)
    process.stderr.write(`retool: ${dist.reason}; running the TypeScript sources through tsx (slow start). Refresh it: npm run build\n`);
  // The worker processes a run starts follow this one, without saying it again.
  process.env.RETOOL_FROM_SOURCES = '1';
  const { register } = await import('tsx/esm/api');
  register();
  await import('../cli/cli.ts');
}
