// `retool bench worker`: what a user of a worker that trains sees, in one run on this home's dev
// server with two `retool worker` processes. (1) `retool status` latency while SFT trains, against
// the same command while the run is paused (the workers idle); (2) SFT tokens/s in a stage process
// against the same SFT in this (the CLI's) process, and what starting a stage process costs;
// (3) the time from SIGKILL of the worker running SFT, then of the one running RL, to the other
// worker's first step of its own.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Client, Connection } from '@temporalio/client';
import type { PresetName } from '../engine/model/config.js';
import { runOffloaded } from '../activities/offload/parent.js';
import { pendingHeartbeats } from '../cli/status.js';
import { ensureServer, stopHomeServers } from '../worker/temporal.js';
import { runSft } from '../stages/sft.js';
import { resolveConfig } from '../workflows/config.js';
import { retoolPipeline } from '../workflows/pipeline.js';
import { PROJECT_ROOT } from '../engine/util/project-root.js';
import { median, quantile } from './stats.js';
import { interruptStage, pollUntil, WorkerProcesses } from './worker-faults.js';

export interface BenchWorkerOptions {
  preset: PresetName;
  sftSteps: number;
  queries: number;
  onProgress?: (what: string) => void;
}

const round = (s: number) => +s.toFixed(3);
/** SFT runs per place, interleaved so that the machine's drift hits both alike. */
const PAIRS = 3;

function latency(seconds: number[]) {
  return {
    queries: seconds.length,
    p50_s: round(median(seconds)),
    p90_s: round(quantile(seconds, 0.9)),
    p99_s: round(quantile(seconds, 0.99)),
    max_s: round(Math.max(...seconds)),
  };
}

export async function benchWorker(opts: BenchWorkerOptions) {
  const say = opts.onProgress ?? (() => {});
  const root = PROJECT_ROOT;
  const freshness = (await import(pathToFileURL(join(root, 'bin', 'freshness.mjs')).href)) as {
    distState(root: string): { fresh: boolean; reason: string | null };
  };
  const state = freshness.distState(root);
  // Workers and status commands from the sources start through tsx, which is not what users run.
  if (!state.fresh) throw new Error(`${state.reason}: build it first (npm run build)`);
  const bin = join(root, 'bin', 'retool.js');
  const home = mkdtempSync(join(tmpdir(), 'retool-bench-worker-'));
  const env = { RETOOL_HOME: home, RETOOL_LOG_LEVEL: 'WARN' };
  const cli = (args: string[]) => {
    const t0 = performance.now();
    const r = spawnSync(process.execPath, [bin, ...args, '--home', home], { env: { ...process.env, ...env }, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`retool ${args.join(' ')} exited ${r.status ?? r.signal}: ${r.stderr.trim().split('\n').at(-1)}`);
    return { seconds: (performance.now() - t0) / 1000, out: r.stdout };
  };
  const statusTimes = (workflowId: string) => Array.from({ length: opts.queries }, () => cli(['status', workflowId, '--json']).seconds);

  const target = await ensureServer({ home });
  const connection = await Connection.connect({ address: target.address });
  const workers = new WorkerProcesses({ root, queue: 'retool-bench-worker', home, env: { ...env, TEMPORAL_ADDRESS: target.address } });
  try {
    const checkpointEvery = Math.max(1, Math.floor(opts.sftSteps / 4));
    say(`SFT tokens/s: a stage process against this process, interleaved (${PAIRS} pairs)`);
    cli(['data', 'synth', '--name', 'cli-world', '--count', '300', '--seed', '4', '--json']);
    cli(['synth', '--dataset', 'cli-world', '--out', 'cli-code', '--limit', '60', '--json']);
    cli(['model', 'init', '--preset', opts.preset, '--out', join(home, 'base'), '--json']);
    const sftRun = (runId: string) => ({
      runId,
      traces: 'cli-code',
      model: join(home, 'base'),
      out: join(home, runId),
      home,
      steps: opts.sftSteps,
      checkpointEvery,
    });
    const here: number[] = [];
    const child: number[] = [];
    let backend = '';
    for (let i = 0; i < PAIRS; i++) {
      const own = await runSft(sftRun(`here-${i}`));
      backend = own.backend;
      here.push(own.tokensPerSecond);
      child.push((await runOffloaded('sft', sftRun(`child-${i}`))).tokensPerSecond);
    }

    say('stage process start: fork, imports, backend (5 times)');
    const starts: number[] = [];
    for (let i = 0; i < 5; i++) {
      const t0 = performance.now();
      await runOffloaded('probe', {});
      starts.push((performance.now() - t0) / 1000);
    }

    say('two workers, a pipeline run');
    await Promise.all([workers.start(), workers.start()]);
    const config = resolveConfig('quick', {
      data: { source: 'synth', name: 'world', count: 300, seed: 4 },
      model: { preset: opts.preset },
      traces: { limit: 60, seed: 0 },
      sft: { steps: opts.sftSteps, checkpointEvery },
      eval: { limit: 8 },
      rl: { steps: 3, evalEvery: 3, evalLimit: 4, checkpointEvery: 1, promptsPerStep: 2, samplesPerPrompt: 2, maxResponseTokens: 48 },
    });
    const client = new Client({ connection });
    const workflowId = `bench-worker-${Date.now().toString(36)}`;
    const handle = await client.workflow.start(retoolPipeline, { taskQueue: 'retool-bench-worker', workflowId, args: [config] });

    say(`status while SFT trains (${opts.queries} queries)`);
    await pollUntil(
      'SFT to train',
      async () =>
        ((JSON.parse(cli(['status', workflowId, '--json']).out).arms?.[0]?.stages ?? []) as { name: string; status: string }[]).find(
          (s) => s.name === 'sft' && s.status === 'running',
        ),
      600_000,
    );
    const training = statusTimes(workflowId);
    say(`status with the run paused, the workers idle (${opts.queries} queries)`);
    cli(['pause', workflowId]);
    await pollUntil(
      'SFT to stop for the pause',
      async () => (pendingHeartbeats(await handle.describe()).some((p) => p.activity === 'sft') ? null : true),
      600_000,
    );
    const idle = statusTimes(workflowId);
    cli(['resume', workflowId]);

    say('SIGKILL of the worker running SFT');
    const sftKill = await interruptStage(handle, 'sft', 'loss', 'SIGKILL', workers, (_s, checkpoint) => checkpoint !== null, 1_800_000);
    say('SIGKILL of the worker running RL');
    const rlHandle = client.workflow.getHandle(`${workflowId}-rl`);
    await pollUntil('the RL child workflow', () => rlHandle.describe(), 1_800_000);
    const rlKill = await interruptStage(rlHandle, 'rl', 'reward', 'SIGKILL', workers, (_s, checkpoint) => checkpoint !== null, 1_800_000);
    await handle.result();
    return {
      machine: { cpus: cpus().length, cpu: cpus()[0]?.model ?? '?', node: process.version, loadavg_1m: round(loadavg()[0]!) },
      preset: opts.preset,
      backend,
      heartbeat_timeout: config.heartbeatTimeout,
      stage_process_start_s: { median: round(median(starts)), runs: starts.map(round) },
      status_while_training: latency(training),
      status_paused_idle: latency(idle),
      sft_tokens_per_s: {
        this_process: here.map(Math.round),
        stage_process: child.map(Math.round),
        ratio_of_medians: round(median(child) / median(here)),
      },
      recovery_after_sigkill_s: { sft: round(sftKill.seconds), rl: round(rlKill.seconds) },
    };
  } finally {
    await workers.stopAll();
    await connection.close();
    await stopHomeServers(home);
    rmSync(home, { recursive: true, force: true });
  }
}
