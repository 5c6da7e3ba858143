/**
 * The order in which training examples are seen. Each epoch's order is a pure function of (seed,
 * epoch), so a resumed run needs only (epoch, batch index) to continue exactly where it stopped.
 * Batches are drawn from buckets of similar length (shuffle, cut into chunks of `bucketBatches`
 * batches, sort each chunk by length, split, shuffle the batches) to cut padding without giving up
 * randomness.
 */
import { Rng } from '../util/rng.js';

export interface SamplerPosition {
  epoch: number;
  batch: number;
}

export class BatchSampler {
  private cache: { epoch: number; batches: number[][] } | undefined;

  constructor(
    private readonly lengths: number[],
    private readonly batchSize: number,
    private readonly seed: number,
    private readonly bucketBatches = 16,
  ) {
    if (lengths.length === 0) throw new Error('no training examples');
  }

  get batchesPerEpoch(): number {
    return Math.ceil(this.lengths.length / this.batchSize);
  }

  batchesOf(epoch: number): number[][] {
    if (this.cache?.epoch === epoch) return this.cache.batches;
    const rng = new Rng((this.seed * 1000003 + epoch * 7919) >>> 0);
    const order = rng.shuffle(this.lengths.map((_, i) => i));
    const batches: number[][] = [];
    const chunk = this.batchSize * this.bucketBatches;
    for (let s = 0; s < order.length; s += chunk) {
      const bucket = order.slice(s, s + chunk).sort((a, b) => this.lengths[a] - this.lengths[b] || a - b);
      const local: number[][] = [];
      for (let b = 0; b < bucket.length; b += this.batchSize) local.push(bucket.slice(b, b + this.batchSize));
      batches.push(...rng.shuffle(local));
    }
    this.cache = { epoch, batches };
    return batches;
  }

  /** The batch at a position, and the position after it. */
  next(pos: SamplerPosition): { indices: number[]; next: SamplerPosition } {
    const batches = this.batchesOf(pos.epoch);
    const indices = batches[pos.batch];
    const next = pos.batch + 1 < batches.length ? { epoch: pos.epoch, batch: pos.batch + 1 } : { epoch: pos.epoch + 1, batch: 0 };
    return { indices, next };
  }
}
