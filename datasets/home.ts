import { resolve } from 'node:path';

/** `--home` wins, then RETOOL_HOME, then `./.retool`. (Apart from store.ts: no DuckDB to load.) */
export function resolveHome(home?: string): string {
  return resolve(home ?? process.env.RETOOL_HOME ?? '.retool');
}
