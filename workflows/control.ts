// Pause, resume and stop for a workflow that trains. A training activity cannot be frozen, so
// pausing cancels it (it stops at a step boundary with a checkpoint) and resuming runs it again
// (it continues from that checkpoint). Stop ends the stage early with what it has.
import { CancellationScope, condition, defineSignal, isCancellation, setHandler } from '@temporalio/workflow';

export const pauseSignal = defineSignal('pause');
export const resumeSignal = defineSignal('resume');
export const stopSignal = defineSignal('stop');

export const STOPPED = Symbol('stopped');

export class TrainingControl {
  paused = false;
  stopRequested = false;
  private running: CancellationScope | null = null;
  /** Where signals are passed on to (child workflows that train), besides this workflow. */
  private forwards = new Set<(signal: 'pause' | 'resume' | 'stop') => void>();

  /** Installs the signal handlers; call once, at the start of the workflow. */
  install(): this {
    setHandler(pauseSignal, () => {
      this.paused = true;
      this.running?.cancel();
      this.forward('pause');
    });
    setHandler(resumeSignal, () => {
      this.paused = false;
      this.forward('resume');
    });
    setHandler(stopSignal, () => {
      this.stopRequested = true;
      this.running?.cancel();
      this.forward('stop');
    });
    return this;
  }

  private forward(signal: 'pause' | 'resume' | 'stop'): void {
    for (const send of this.forwards) send(signal);
  }

  /** Passes signals on to a child while `body` runs (the child pauses or stops its own activities). */
  async delegating<T>(send: (signal: 'pause' | 'resume' | 'stop') => Promise<void>, body: () => Promise<T>): Promise<T> {
    const forward = (signal: 'pause' | 'resume' | 'stop') => void send(signal).catch(() => undefined);
    this.forwards.add(forward);
    if (this.paused) forward('pause');
    try {
      return await body();
    } finally {
      this.forwards.delete(forward);
    }
  }

  /** Waits while paused; true when the run should go on, false when stop was asked for. */
  async gate(): Promise<boolean> {
    await condition(() => !this.paused || this.stopRequested);
    return !this.stopRequested;
  }

  /** Runs a training activity, re-running it after each pause; STOPPED when stopped early. */
  async train<T>(activity: () => Promise<T>): Promise<T | typeof STOPPED> {
    for (;;) {
      if (!(await this.gate())) return STOPPED;
      const scope = new CancellationScope();
      this.running = scope;
      try {
        return await scope.run(activity);
      } catch (err) {
        if (!isCancellation(err) || !(this.paused || this.stopRequested)) throw err;
      } finally {
        this.running = null;
      }
    }
  }
}
