// The child process that runs an activity's heavy work, watched from the worker's side without
// Temporal: a stopped (hung) child is found and killed, a cancel stops at a step boundary with a
// checkpoint, a child that dies or gets bad input fails the way a retry policy needs.
import { join } from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHILD_DIED, runOffloaded, STALLED } from '../activities/offload/parent.js';
import { processAlive } from '../bench/worker-faults.js';
import { BAD_INPUT } from '../domain/errors.js';
import { TEST_BACKENDS } from './helpers/backends.js';
import { json, retool, tempHome } from './helpers/cli.js';

describe('stage work in a child process', () => {
  const home = tempHome('retool-offload-');
  const model = join(home.dir, 'base');
  const sft = (runId: string, steps = 5000) => ({
    runId,
    traces: 'world-code',
    model,
    out: join(home.dir, `out-${runId}`),
    home: home.dir,
    steps,
    checkpointEvery: 5,
  });

  beforeAll(async () => {
    json(await retool(['data', 'synth', '--name', 'world', '--count', '120', '--seed', '5', '--json'], { home: home.dir }));
    json(await retool(['model', 'init', '--out', model, '--json'], { home: home.dir }));
    json(await retool(['synth', '--dataset', 'world', '--out', 'world-code', '--limit', '40', '--json'], { home: home.dir }));
  }, 120_000);
  afterAll(() => home.cleanup());

  it.each(TEST_BACKENDS)(
    'trains on %s in the child when the worker names it, and the child exits with its memory',
    async (backend) => {
      const before = process.env.RETOOL_BACKEND;
      process.env.RETOOL_BACKEND = backend;
      try {
        let pid = 0;
        const summary = await runOffloaded('sft', sft(`on-${backend}`, 3), { onSpawn: (p) => (pid = p) });
        expect(summary.steps).toBe(3);
        expect(summary.backend.split(' ')[0]).toBe(backend);
        expect(processAlive(pid)).toBe(false);
      } finally {
        if (before === undefined) delete process.env.RETOOL_BACKEND;
        else process.env.RETOOL_BACKEND = before;
      }
    },
    60_000,
  );

  it('a child that stops answering (SIGSTOP) is killed after the stall limit and fails retryably', async () => {
    let pid = 0;
    let stoppedAt = 0;
    const run = runOffloaded('sft', sft('stall'), {
      // Long enough for a busy machine to start the child (its imports and backend are silent).
      stallFloorMs: 8000,
      onSpawn: (p) => (pid = p),
      onCheckpoint: () => {
        if (stoppedAt) return;
        stoppedAt = performance.now();
        process.kill(pid, 'SIGSTOP');
      },
    });
    const err = await run.then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ApplicationFailure);
    const failure = err as ApplicationFailure;
    expect(failure.type).toBe(STALLED);
    expect(stoppedAt).toBeGreaterThan(0);
    expect(failure.nonRetryable).toBe(false);
    expect(failure.message).toContain(`pid ${pid}`);
    // Killed once the limit it names had passed, and soon after (the watchdog looks every second).
    const waited = (performance.now() - stoppedAt) / 1000;
    const limit = Number(/\(limit (\d+) s\)/.exec(failure.message)?.[1]);
    expect(limit).toBeGreaterThanOrEqual(8);
    expect(waited).toBeGreaterThanOrEqual(limit - 0.5);
    expect(waited).toBeLessThan(limit + 5);
    expect(processAlive(pid)).toBe(false);
  }, 60_000);

  it('a cancel stops at a step boundary with a checkpoint of that step, and the child exits', async () => {
    let pid = 0;
    const stop = new AbortController();
    const summary = await runOffloaded('sft', sft('cancel'), {
      signal: stop.signal,
      onSpawn: (p) => (pid = p),
      onProgress: (step) => step >= 7 && stop.abort(),
    });
    expect(summary.stopped).toBe(true);
    expect(summary.steps).toBeGreaterThanOrEqual(7);
    expect(summary.steps).toBeLessThan(5000);
    expect(summary.lastCheckpoint).toBe(join(home.dir, 'artifacts', 'cancel', 'sft', `step-${summary.steps}`));
    expect(processAlive(pid)).toBe(false);
  }, 60_000);

  it('a child killed from outside (as by the OOM killer) fails retryably, naming the signal', async () => {
    let pid = 0;
    const err = await runOffloaded('sft', sft('oom'), {
      onSpawn: (p) => (pid = p),
      onProgress: (step) => step === 2 && process.kill(pid, 'SIGKILL'),
    }).then(
      () => null,
      (e: unknown) => e as ApplicationFailure,
    );
    expect(err?.type).toBe(CHILD_DIED);
    expect(err?.nonRetryable).toBe(false);
    expect(err?.message).toContain('signal SIGKILL');
  }, 60_000);

  it('bad input fails for good, with the stage runner message', async () => {
    const err = await runOffloaded('sft', { ...sft('bad'), traces: 'nowhere' }).then(
      () => null,
      (e: unknown) => e as ApplicationFailure,
    );
    expect(err?.type).toBe(BAD_INPUT);
    expect(err?.nonRetryable).toBe(true);
    expect(err?.message).toMatch(/nowhere/);
  }, 60_000);
});
