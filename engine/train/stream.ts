import { Rng } from '../../domain/rng.js';

/** Where the data stream stands: epoch and position in that epoch's shuffled order. */
export interface DataCursor {
  epoch: number;
  position: number;
}

/**
 * A seeded, resumable stream of example indices: each epoch is a fresh permutation that depends
 * only on (seed, epoch), so a cursor is all a checkpoint needs to continue the same stream.
 */
export class ShuffledStream {
  private order: number[] = [];
  private orderEpoch = -1;

  constructor(
    private readonly size: number,
    private readonly seed: number,
    public cursor: DataCursor = { epoch: 0, position: 0 },
  ) {
    if (size === 0) throw new Error('no examples to train on');
  }

  private permutation(epoch: number): number[] {
    if (this.orderEpoch !== epoch) {
      const rng = new Rng(this.seed * 1_000_003 + epoch);
      this.order = Array.from({ length: this.size }, (_, i) => i);
      for (let i = this.size - 1; i > 0; i--) {
        const j = rng.int(0, i);
        [this.order[i], this.order[j]] = [this.order[j]!, this.order[i]!];
      }
      this.orderEpoch = epoch;
    }
    return this.order;
  }

  next(count: number): number[] {
    const out: number[] = [];
    while (out.length < count) {
      const order = this.permutation(this.cursor.epoch);
      out.push(order[this.cursor.position]!);
      this.cursor =
        this.cursor.position + 1 >= this.size
          ? { epoch: this.cursor.epoch + 1, position: 0 }
          : { epoch: this.cursor.epoch, position: this.cursor.position + 1 };
    }
    return out;
  }
}
