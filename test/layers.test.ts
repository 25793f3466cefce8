/**
 * The folders are the architecture, top to bottom: cli and worker → workflows → activities →
 * stages → engine → datasets → domain. A folder imports only from itself and the layers below it
 * (the engine never from the store). Workflows take only types from the layers they orchestrate,
 * and values from the schema modules alone (zod only), so the Temporal bundle stays deterministic.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '..');

const ALLOWED: Record<string, string[]> = {
  domain: ['domain'],
  datasets: ['datasets', 'domain'],
  engine: ['engine', 'domain'],
  stages: ['stages', 'engine', 'datasets', 'domain'],
  activities: ['activities', 'stages', 'engine', 'datasets', 'domain'],
  workflows: ['workflows', 'domain'],
  worker: ['worker', 'workflows', 'activities', 'stages', 'engine', 'datasets', 'domain'],
};
/** Workflows may name what they orchestrate as types; the bundle drops type-only imports. */
const TYPE_ONLY: Record<string, string[]> = { workflows: ['activities', 'stages', 'datasets'] };
/** Zod schemas with the stages' defaults, which the pipeline config (workflow code) builds on. */
const SCHEMA_MODULES = [
  'stages/options.ts',
  'engine/rl/config.ts',
  'engine/sft/config.ts',
  'engine/rollout/options.ts',
  'engine/sandbox/types.ts',
  'engine/coldstart/options.ts',
  'engine/model/config.ts',
  'engine/model/lora-config.ts',
];

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return sources(path);
    return /\.(ts|mjs)$/.test(e.name) ? [path] : [];
  });
}

interface Edge {
  from: string;
  to: string;
  typeOnly: boolean;
}

function importsOf(file: string): Edge[] {
  const text = readFileSync(file, 'utf8');
  const edges: Edge[] = [];
  const pattern = /(?:^|\n)\s*(import|export)(\s+type)?[^'"]*?from\s*['"](\.{1,2}\/[^'"]+)['"]|import\(\s*['"](\.{1,2}\/[^'"]+)['"]\s*\)/g;
  for (const m of text.matchAll(pattern)) {
    const spec = m[3] ?? m[4]!;
    const target = relative(ROOT, resolve(dirname(file), spec));
    edges.push({ from: relative(ROOT, file), to: target, typeOnly: Boolean(m[2]) });
  }
  return edges;
}

const layerOf = (path: string) => path.split('/')[0]!;

describe('layers', () => {
  for (const [layer, allowed] of Object.entries(ALLOWED)) {
    it(`${layer}/ imports only from ${allowed.join(', ')}`, () => {
      const wrong = sources(join(ROOT, layer))
        .flatMap(importsOf)
        .filter((e) => !allowed.includes(layerOf(e.to)))
        .filter((e) => !(e.typeOnly && (TYPE_ONLY[layer] ?? []).includes(layerOf(e.to))))
        .filter((e) => !(layer === 'workflows' && SCHEMA_MODULES.includes(e.to.replace(/\.js$/, '.ts'))))
        .map((e) => `${e.from} → ${e.to}${e.typeOnly ? ' (type)' : ''}`);
      expect(wrong).toEqual([]);
    });
  }

  it('the schema modules workflows import load nothing but zod and each other', () => {
    const wrong = SCHEMA_MODULES.flatMap((m) => {
      const text = readFileSync(join(ROOT, m), 'utf8');
      const packages = [...text.matchAll(/from\s*['"]([^'".][^'"]*)['"]/g)].map((p) => p[1]!).filter((p) => p !== 'zod');
      const local = importsOf(join(ROOT, m))
        .filter((e) => !e.typeOnly)
        .map((e) => e.to.replace(/\.js$/, '.ts'))
        .filter((to) => !SCHEMA_MODULES.includes(to));
      return [...packages, ...local].map((to) => `${m} → ${to}`);
    });
    expect(wrong).toEqual([]);
  });

  it('sees the imports it checks (a folder known to import downward is found doing so)', () => {
    const stageEdges = sources(join(ROOT, 'stages')).flatMap(importsOf);
    expect(stageEdges.some((e) => layerOf(e.to) === 'datasets')).toBe(true);
    expect(stageEdges.some((e) => layerOf(e.to) === 'engine')).toBe(true);
  });
});
