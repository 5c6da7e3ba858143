/**
 * One seedable RNG whose whole state is a few integers, so it can be saved in a checkpoint and a
 * resumed run draws exactly the numbers an uninterrupted run would have drawn.
 * Algorithm: xoshiro128** (fast, 128-bit state, good statistical quality), seeded by splitmix32.
 */
export type RngState = [number, number, number, number];

export class Rng {
  private s: Uint32Array;

  constructor(seed: number | RngState) {
    this.s = new Uint32Array(4);
    if (Array.isArray(seed)) {
      this.s.set(seed);
    } else {
      let x = seed >>> 0;
      for (let i = 0; i < 4; i++) {
        // splitmix32
        x = (x + 0x9e3779b9) >>> 0;
        let z = x;
        z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
        z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
        this.s[i] = (z ^ (z >>> 16)) >>> 0;
      }
      if (this.s.every((v) => v === 0)) this.s[0] = 1;
    }
  }

  /** Next 32-bit unsigned integer. */
  nextU32(): number {
    const s = this.s;
    const result = Math.imul(rotl(Math.imul(s[1], 5) >>> 0, 7), 9) >>> 0;
    const t = (s[1] << 9) >>> 0;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 11);
    return result;
  }

  /** Uniform in [0, 1) with 32 bits of resolution. */
  next(): number {
    return this.nextU32() / 4294967296;
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** Fisher-Yates shuffle in place; returns the array. */
  shuffle<T>(a: T[]): T[] {
    for (let i = a.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const tmp = a[i];
      a[i] = a[j];
      a[j] = tmp;
    }
    return a;
  }

  /** A 32-bit seed for a child stream (e.g. tf's initialisers), drawn from this one. */
  seed(): number {
    return this.nextU32();
  }

  state(): RngState {
    return [this.s[0], this.s[1], this.s[2], this.s[3]];
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

/** An Rng for one purpose: the seed mixed with an FNV-1a hash of the purpose's name. */
export function streamRng(seed: number, purpose: string): Rng {
  let h = 0x811c9dc5;
  for (let i = 0; i < purpose.length; i++) h = Math.imul(h ^ purpose.charCodeAt(i), 0x01000193) >>> 0;
  return new Rng((seed ^ h) >>> 0);
}

/**
 * Every seeded stream of a run besides the data's (streamRng above), named in one place. Each keeps
 * the derivation it was first given, because changing one would change every run's numbers.
 */
export const STREAMS = {
  /** Dropout masks of SFT and pretraining steps; each data-parallel rank past the first has its own. */
  dropout: (seed: number, rank = 0) => (rank === 0 ? new Rng(seed ^ 0x5eed) : streamRng(seed ^ 0x5eed, `dropout of rank ${rank}`)),
  /** Rollout sampling of RL and GTA: one draw a step, from which each prompt's group gets its own stream (promptStream). */
  sampling: (seed: number) => new Rng(seed ^ 0x5a3b1e),
  /** The completions of one prompt in one step: from the step's draw and the prompt's index in the training split, so they do not depend on which rank samples them. */
  promptStream: (stepDraw: number, example: number) => streamRng(stepDraw, `prompt ${example}`),
  /** The seed of the batch order of sft_then_rl's SFT phase (the loop's sampler uses the run seed). */
  sftPhaseOrder: (seed: number) => seed ^ 0x5f7,
  /** The fixed subset that periodic evals score; from the split seed, so every run seed sees the same one. */
  periodicEval: (splitSeed: number) => new Rng(splitSeed + 17),
  /** Which held-out sequences pretraining measures perplexity on. */
  heldOut: (seed: number) => new Rng(seed),
  /** The embedding rows of the tags a Hugging Face model gets (src/model/hf_model.ts). */
  newTokens: (seed: number) => new Rng(seed ^ 0x7a95),
  /** The initial A of train.lora's adapters (src/model/lora.ts). */
  adapters: (seed: number) => new Rng(seed ^ 0x10a5),
};
