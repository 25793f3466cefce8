#!/usr/bin/env node
// The `retool` command. The project runs its TypeScript sources directly through tsx, so a
// checkout works after `npm install` with no build step.
import { register } from 'tsx/esm/api';

register();
await import('../cli/cli.ts');
