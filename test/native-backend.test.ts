import { existsSync, mkdirSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { ROOT, json, retool, tempHome } from './helpers/cli.js';
import { TEST_BACKENDS } from './helpers/backends.js';

/** A PATH holding only Python and strip: no compiler, no make. */
function pathWithoutCompiler(dir: string): string {
  const bin = join(dir, 'bin');
  mkdirSync(bin);
  for (const tool of ['python3', 'strip', 'ldconfig']) {
    for (const prefix of ['/usr/bin', '/usr/local/bin', '/usr/sbin', '/sbin']) {
      if (existsSync(join(prefix, tool))) {
        symlinkSync(join(prefix, tool), join(bin, tool));
        break;
      }
    }
  }
  return bin;
}

describe('native backend provisioning', () => {
  it('without a compiler, npm install goes on: one warning line, exit 0, the package left as npm installed it', async () => {
    const home = tempHome('retool-native-');
    try {
      // The GPU recipe is never built here, so it is the one that must fail (the CPU one is cached).
      const gpuPackage = join(ROOT, 'node_modules', '@tensorflow', 'tfjs-node-gpu');
      const result = await execa(process.execPath, [join(ROOT, 'worker', 'setup.mjs')], {
        cwd: ROOT,
        env: { PATH: pathWithoutCompiler(home.dir), RETOOL_GPU: '1', RETOOL_CACHE: join(home.dir, 'cache'), HOME: home.dir },
        reject: false,
        timeout: 120_000,
      });
      expect(result.exitCode).toBe(0);
      const warnings = String(result.stdout)
        .split('\n')
        .filter((l) => l.includes('native TensorFlow backend'));
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toMatch(
        /^retool setup: WARNING: no native TensorFlow backend \(no C\+\+ compiler \(.*apt-get install g\+\+ make\)\); computing on wasm/,
      );
      expect(existsSync(join(gpuPackage, 'deps'))).toBe(false);
      expect(existsSync(join(gpuPackage, 'package.json'))).toBe(true);
    } finally {
      home.cleanup();
    }
  }, 150_000);

  it('the built backend is the default, and names its TensorFlow version; wasm can be forced', async () => {
    const home = tempHome('retool-native-');
    try {
      const chosen = json<{ name: string; tensorflow: string | null; threads: number }>(
        await retool(['model', 'backend', '--json'], { home: home.dir }),
      );
      expect(chosen.name).toBe(TEST_BACKENDS[0]);
      if (chosen.name !== 'wasm') expect(chosen.tensorflow).toMatch(/^2\.\d+\.\d+$/);
      const forced = json<{ name: string; tensorflow: string | null; threads: number }>(
        await retool(['model', 'backend', '--backend', 'wasm', '--json'], { home: home.dir }),
      );
      expect(forced).toMatchObject({ name: 'wasm', tensorflow: null, threads: 1 });
      const bad = await retool(['model', 'backend', '--backend', 'tpu'], { home: home.dir });
      expect(bad.exitCode).toBe(2);
      expect(String(bad.stderr)).toContain('--backend=tpu: choose one of node-gpu, node, wasm, cpu');
    } finally {
      home.cleanup();
    }
  }, 60_000);
});
