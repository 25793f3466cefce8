import { join } from 'node:path';
import { execa } from 'execa';
import { ROOT } from './cli.js';

const PYTHON = process.env.RETOOL_TEST_PYTHON ?? join(ROOT, '.venv', 'bin', 'python');
const SCRIPT = join(ROOT, 'test', 'reference', 'transformers_reference.py');

export type ReferenceJob =
  | {
      op: 'make';
      dir: string;
      config: Record<string, unknown>;
      seed?: number;
      dtype?: 'float32' | 'bfloat16' | 'float16';
      max_shard_size?: string;
    }
  | { op: 'logits'; dir: string; ids: number[][] }
  | { op: 'generate'; dir: string; ids: number[][]; new_tokens: number }
  | { op: 'make_gguf'; file: string; dir: string; config: Record<string, unknown>; seed?: number; rope_freqs?: number[] }
  | {
      op: 'gguf';
      file: string;
      dump?: string;
      texts?: string[];
      messages?: { role: string; content: string }[];
      new_tokens?: number;
      ids?: number[];
      positions?: number[];
      prompt_positions?: number[];
    }
  | { op: 'peft_make'; base: string; dir: string; r: number; alpha: number; targets: string[]; seed?: number }
  | { op: 'peft_logits'; base: string; adapter: string; ids: number[][] };

/** Runs jobs in Hugging Face transformers (one Python start for all of them). */
export async function reference(jobs: ReferenceJob[]): Promise<unknown[]> {
  const { stdout } = await execa(PYTHON, [SCRIPT], { input: JSON.stringify(jobs), timeout: 600_000 });
  return JSON.parse(stdout) as unknown[];
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}
