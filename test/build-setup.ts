import { buildCliIfStale } from './global-setup.js';

/**
 * The root project's set-up, which Vitest runs for every run, `--project unit` included: the unit
 * files spawn bin/retool.js too, so a stale dist/ is built before any file starts (the integration
 * project's set-up then finds it fresh). No Temporal server here.
 */
export default async function setup(): Promise<void> {
  await buildCliIfStale();
}
