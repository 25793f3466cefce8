import { spawnSync } from 'node:child_process';

/** Whether the `bwrap` a shell finds on PATH runs with namespaces here (independent of the sandbox's own probe). */
export function bwrapWorks(): boolean {
  return (
    spawnSync('sh', ['-c', 'bwrap --ro-bind / / --unshare-pid --unshare-net -- /bin/true'], { stdio: 'ignore', timeout: 10_000 }).status ===
    0
  );
}

/** The isolation mode the sandbox should pick here: RETOOL_SANDBOX's, else bubblewrap where it works, else unshare. */
export function expectedSandboxMode(): string {
  return process.env.RETOOL_SANDBOX || (bwrapWorks() ? 'bubblewrap' : 'unshare');
}
