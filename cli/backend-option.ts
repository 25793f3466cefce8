import type { Command } from 'commander';
import { BACKENDS, parseBackendName } from '../engine/tensor/backend-names.js';

/**
 * `--backend NAME` on a command that computes: it becomes RETOOL_BACKEND for this process and the
 * worker processes it starts, so the choice is made in one place (engine/tensor/backend.ts).
 */
export function withBackendOption(cmd: Command): Command {
  return cmd
    .option('--backend <name>', `tensor backend: ${BACKENDS.join(', ')} (default: RETOOL_BACKEND, else the fastest that loads here)`)
    .hook('preAction', (_command, action) => {
      const chosen = action.opts().backend as string | undefined;
      if (chosen) process.env.RETOOL_BACKEND = parseBackendName(chosen, '--backend');
    });
}
