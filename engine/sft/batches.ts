// SFT batches that pad little. Every sequence of a micro-batch is padded to the longest one, and
// traces vary in length by several times, so batches drawn in shuffled order spend much of their
// compute on padding. Here the examples of `windowSteps` optimizer steps are drawn together,
// sorted by length, cut into steps (taken in a seeded shuffled order, so long and short steps
// alternate) and each step into micro-batches of neighbours in length. With one step per window
// the step holds exactly the examples it held before, only its micro-batches regroup them, so its
// gradient is unchanged (accumulation weighs each micro-batch by its loss tokens).
import { Rng } from '../../domain/rng.js';
import { ShuffledStream, type DataCursor } from '../train/stream.js';

/** What a checkpoint keeps: where the current window was drawn from, and how much of it is used. */
export interface BatchCursor extends DataCursor {
  /** Steps of the window at `epoch`/`position` already taken. */
  windowStep?: number;
}

export class LengthBucketedBatches {
  private readonly stream: ShuffledStream;
  private window: number[][] = [];
  private windowStart: DataCursor;
  private windowStep: number;

  constructor(
    private readonly lengths: readonly number[],
    private readonly opts: { seed: number; batchSize: number; gradAccum: number; windowSteps: number },
    cursor: BatchCursor = { epoch: 0, position: 0 },
  ) {
    this.windowStart = { epoch: cursor.epoch, position: cursor.position };
    this.stream = new ShuffledStream(lengths.length, opts.seed, this.windowStart);
    this.windowStep = cursor.windowStep ?? 0;
    if (this.windowStep > 0) this.draw();
  }

  /** The resumable position: a checkpoint that stores it continues with the same next step. */
  get cursor(): BatchCursor {
    if (this.windowStep === 0 || this.windowStep >= this.window.length) return { ...this.stream.cursor };
    return { ...this.windowStart, windowStep: this.windowStep };
  }

  private draw(): void {
    const { batchSize, gradAccum, windowSteps, seed } = this.opts;
    const perStep = batchSize * gradAccum;
    this.windowStart = { ...this.stream.cursor };
    // Longest first; ties keep the drawn order, so the result depends only on the stream.
    const drawn = this.stream.next(perStep * windowSteps);
    const sorted = drawn
      .map((index, order) => ({ index, order }))
      .sort((a, b) => this.lengths[b.index]! - this.lengths[a.index]! || a.order - b.order);
    const steps = Array.from({ length: windowSteps }, (_, s) => sorted.slice(s * perStep, (s + 1) * perStep).map((e) => e.index));
    if (windowSteps > 1) {
      const rng = new Rng(seed * 1_000_033 + this.windowStart.epoch * 1_000_003 + this.windowStart.position);
      for (let i = steps.length - 1; i > 0; i--) {
        const j = rng.int(0, i);
        [steps[i], steps[j]] = [steps[j]!, steps[i]!];
      }
    }
    this.window = steps;
  }

  /** The next optimizer step's micro-batches, as example indices. */
  next(): number[][] {
    if (this.windowStep === 0 || this.windowStep >= this.window.length) {
      this.draw();
      this.windowStep = 0;
    }
    const step = this.window[this.windowStep++]!;
    const { batchSize, gradAccum } = this.opts;
    return Array.from({ length: gradAccum }, (_, k) => step.slice(k * batchSize, (k + 1) * batchSize));
  }
}
