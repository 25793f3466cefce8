// A dev server belongs to its home: a command of home B never uses home A's server (B gets its
// own), and a server whose home was deleted while it ran is named in one line, not a stack trace.
// Real dev servers on free loopback ports (RETOOL_TEMPORAL_PORT moves the CLI's preferred port).
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import type { Result } from 'execa';
import { afterAll, describe, expect, it } from 'vitest';
import { processAlive, stopHomeServers } from '../worker/temporal.js';
import { json, retool, tempHome } from './helpers/cli.js';
import { freePort } from './helpers/net.js';
import { until } from './helpers/wait.js';

const homes: { dir: string; cleanup: () => void }[] = [];
function newHome(): string {
  const home = tempHome('retool-home-');
  homes.push(home);
  return home.dir;
}

afterAll(async () => {
  // Every server these tests started runs on one of these homes' database files, deleted or not.
  for (const home of homes) {
    await stopHomeServers(home.dir);
    home.cleanup();
  }
});

async function portsEnv(): Promise<Record<string, string>> {
  // TEMPORAL_ADDRESS empty: the CLI picks the home's own dev server even where CI set one.
  return { TEMPORAL_ADDRESS: '', RETOOL_TEMPORAL_PORT: String(await freePort()), RETOOL_TEMPORAL_UI_PORT: String(await freePort()) };
}

function stderrLines(result: Result): string[] {
  return String(result.stderr).split('\n').filter(Boolean);
}

/** The workflows in the history of the server at `address`, read straight from it. */
async function workflowIds(address: string): Promise<string[]> {
  const connection = await Connection.connect({ address });
  try {
    const ids: string[] = [];
    for await (const w of new Client({ connection }).workflow.list()) ids.push(w.workflowId);
    return ids.sort();
  } finally {
    await connection.close();
  }
}

describe('a dev server belongs to its home', () => {
  it("a command of home B does not use home A's server: B gets its own, A's history holds none of B's runs", async () => {
    const env = await portsEnv();
    const [a, b, c] = [newHome(), newHome(), newHome()];
    const serverA = json<{ address: string; pid: number; started: boolean }>(
      await retool(['server', '--detach', '--json'], { home: a, env }),
    );
    expect(serverA).toMatchObject({ address: `127.0.0.1:${env.RETOOL_TEMPORAL_PORT}`, started: true });
    const runA = json<{ workflowId: string }>(await retool(['run', '--detach', '--preset', 'quick', '--json'], { home: a, env }));

    const started = await retool(['run', '--detach', '--preset', 'quick', '--json'], { home: b, env });
    const runB = json<{ workflowId: string; uiUrl: string }>(started);
    expect(stderrLines(started)).toHaveLength(1);
    expect(String(started.stderr)).toContain(
      `127.0.0.1:${env.RETOOL_TEMPORAL_PORT} is served by another home's Temporal dev server (${a}, pid ${serverA.pid}); this home (${b}) gets its own Temporal dev server on 127.0.0.1:`,
    );
    const serverB = json<{ address: string; pid: number; up: boolean }>(await retool(['server', '--status', '--json'], { home: b, env }));
    expect(serverB.up).toBe(true);
    expect(serverB.address).not.toBe(serverA.address);
    expect(serverB.pid).not.toBe(serverA.pid);
    expect(runB.uiUrl).not.toContain(`:${env.RETOOL_TEMPORAL_UI_PORT}/`);

    // Each server's history holds its home's run and nothing else (visibility lags a start by a moment).
    await until("B's run listed on B's server", async () => (await workflowIds(serverB.address)).includes(runB.workflowId), 20_000);
    await until("A's run listed on A's server", async () => (await workflowIds(serverA.address)).includes(runA.workflowId), 20_000);
    expect(await workflowIds(serverA.address)).toEqual([runA.workflowId]);
    expect(await workflowIds(serverB.address)).toEqual([runB.workflowId]);
    // And the CLI, asked for each home's runs, goes to that home's server.
    expect(json<{ workflowId: string }[]>(await retool(['status', '--json'], { home: b, env })).map((r) => r.workflowId)).toEqual([
      runB.workflowId,
    ]);

    // A port named by hand is not moved: taken by A's server, it is refused in one line.
    const refused = await retool(['server', '--detach', '--port', env.RETOOL_TEMPORAL_PORT!, '--ui-port', String(await freePort())], {
      home: c,
      env,
    });
    expect(refused.exitCode).toBe(2);
    expect(stderrLines(refused)).toEqual([
      `retool: 127.0.0.1:${env.RETOOL_TEMPORAL_PORT} is served by another home's Temporal dev server (${a}, pid ${serverA.pid}); choose other ports (--port/--ui-port) or stop it`,
    ]);
    expect(json(await retool(['server', '--status', '--json'], { home: c, env }))).toMatchObject({ up: false });
  }, 120_000);

  it('a server whose home was deleted while it ran: one line naming it, then a healthy server of its own', async () => {
    const env = await portsEnv();
    const [d, e] = [newHome(), newHome()];
    const orphan = json<{ pid: number }>(await retool(['server', '--detach', '--json'], { home: d, env }));
    rmSync(d, { recursive: true, force: true, maxRetries: 5 }); // the server writes there meanwhile

    // Another home: the orphan is named with what to do; this home's own server runs the command.
    const other = await retool(['run', '--detach', '--preset', 'quick', '--json'], { home: e, env });
    expect(other.exitCode).toBe(0);
    expect(String(other.stderr)).not.toMatch(/ServiceError|\n\s+at /);
    expect(stderrLines(other)).toEqual([
      expect.stringContaining(
        `retool: 127.0.0.1:${env.RETOOL_TEMPORAL_PORT} is served by a Temporal dev server whose database ${join(d, 'temporal.db')} was deleted while it ran (pid ${orphan.pid}; it can no longer start workflows, \`kill ${orphan.pid}\` stops it); this home (${e}) gets its own`,
      ),
    ]);
    expect(json<{ workflowId: string }>(other).workflowId).toMatch(/^retool-quick-/);
    expect(processAlive(orphan.pid)).toBe(true);

    // The deleted home itself, used again: its orphan is stopped and a new server takes its ports.
    const again = await retool(['run', '--detach', '--preset', 'quick', '--json'], { home: d, env });
    expect(again.exitCode).toBe(0);
    expect(stderrLines(again)).toEqual([
      `retool: this home's Temporal dev server (pid ${orphan.pid}) had lost its database ${join(d, 'temporal.db')} (deleted while it ran): stopped, starting a new one`,
    ]);
    expect(json<{ uiUrl: string }>(again).uiUrl).toContain(`http://127.0.0.1:${env.RETOOL_TEMPORAL_UI_PORT}/`);
    expect(processAlive(orphan.pid)).toBe(false);
    expect(existsSync(join(d, 'temporal.db'))).toBe(true);
  }, 120_000);
});
