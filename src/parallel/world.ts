/**
 * The ranks of a data-parallel run and what they exchange, over libtorch's c10d (native/dist.cc: a
 * TCPStore rendezvous, Gloo collectives). One process is a world of one, where every exchange is the
 * identity, so the training code has one path for both.
 *
 * The environment is torchrun's: RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT (with MASTER_ADDR set,
 * Slurm's SLURM_PROCID and SLURM_NTASKS stand in for the first two). `gta train --nproc N` sets it for N local ranks (launch.ts).
 *
 * Every rank builds the same global batch from the same seeded sampler and trains on its contiguous
 * shard; gradients are averaged, weighted by what each rank's loss was normalised over, so the step
 * equals one process's step on the whole batch. Collectives settle Promises (the wait runs on a
 * worker thread), so signals and progress keep working while ranks wait for each other.
 */
import tf from '../util/tfjs.cjs';
import { assignInPlace } from '../backend/torch/in_place.js';
import { GtaError } from '../util/errors.js';

export interface WorldEnv {
  rank: number;
  size: number;
  host: string;
  port: number;
}

/** How long a rank waits for the others (rendezvous, a collective) before failing: GTA_DIST_TIMEOUT seconds, default 300. */
export function distTimeoutMs(env: NodeJS.ProcessEnv = process.env): number {
  const s = Number(env.GTA_DIST_TIMEOUT ?? 300);
  if (!(s > 0)) throw new GtaError(`GTA_DIST_TIMEOUT must be a positive number of seconds, got '${env.GTA_DIST_TIMEOUT}'`);
  return s * 1000;
}

/** The rank environment, or null for a single process. */
export function worldEnv(env: NodeJS.ProcessEnv = process.env): WorldEnv | null {
  // Slurm's task variables stand in only where MASTER_ADDR says where to meet: a sweep's workers inside
  // a many-task allocation must not join each other's runs by accident
  const slurm = env.MASTER_ADDR !== undefined;
  const rankVar = env.RANK ?? (slurm ? env.SLURM_PROCID : undefined);
  const sizeVar = env.WORLD_SIZE ?? (slurm ? env.SLURM_NTASKS : undefined);
  if (sizeVar === undefined || Number(sizeVar) === 1) return null;
  const int = (name: string, v: string | undefined, min: number) => {
    const n = Number(v);
    if (v === undefined || !Number.isInteger(n) || n < min) throw new GtaError(`data-parallel environment: ${name} must be an integer >= ${min}, got '${v ?? ''}'`);
    return n;
  };
  const size = int('WORLD_SIZE', sizeVar, 1);
  const rank = int('RANK', rankVar, 0);
  if (rank >= size) throw new GtaError(`data-parallel environment: RANK ${rank} is not below WORLD_SIZE ${size}`);
  return { rank, size, host: env.MASTER_ADDR ?? '127.0.0.1', port: int('MASTER_PORT', env.MASTER_PORT ?? '29500', 1) };
}

interface DistNative {
  distUnavailable?: string;
  distInit(o: { rank: number; world: number; host: string; port: number; timeoutMs: number; iface?: string; bind?: string }): Promise<void>;
  allReduce(a: Float32Array): Promise<void>;
  broadcast(a: Float32Array, root: number): Promise<void>;
}

/** A value of a step reduced with its weight: sum(w * value) / sum(w) over ranks. */
export type Weighted = [value: number, weight: number];

export class World {
  private constructor(
    readonly rank: number,
    readonly size: number,
    private readonly native: DistNative | null,
  ) {}

  static single(): World {
    return new World(0, 1, null);
  }

  /** Joins the other ranks (blocks until all have, or the timeout). */
  static async join(e: WorldEnv, native: DistNative, timeoutMs: number): Promise<World> {
    if (native.distUnavailable) throw new GtaError(`data-parallel training needs the torch addon's process group: ${native.distUnavailable}`);
    const loopback = /^(127\.|localhost$|::1$)/.test(e.host);
    try {
      // Gloo's sockets: GLOO_SOCKET_IFNAME names an interface; on one machine, loopback; else this host's address
      await native.distInit({ rank: e.rank, world: e.size, host: e.host, port: e.port, timeoutMs, iface: process.env.GLOO_SOCKET_IFNAME, bind: loopback ? '127.0.0.1' : undefined });
    } catch (err) {
      throw new GtaError(`rank ${e.rank} of ${e.size}: could not join the others at ${e.host}:${e.port}: ${firstLine(err)}`, 1);
    }
    return new World(e.rank, e.size, native);
  }

  get lead(): boolean {
    return this.rank === 0;
  }

  /** This rank's contiguous share of a global batch (the batch size must divide by the world size). */
  shard<T>(items: T[]): T[] {
    if (this.size === 1) return items;
    const n = items.length / this.size;
    if (!Number.isInteger(n)) throw new GtaError(`a batch of ${items.length} does not split over ${this.size} ranks`);
    return items.slice(this.rank * n, (this.rank + 1) * n);
  }

  /**
   * The weighted mean over ranks of gradients (weight: what this rank's loss was a mean over; 0 for a
   * rank with nothing to train on) and of scalars with their own weights, in one all-reduce. Takes
   * the gradients (disposing them) and returns new ones; in a world of one, the same ones.
   */
  async meanGrads(grads: Record<string, tf.Tensor>, weight: number, scalars: Record<string, Weighted> = {}): Promise<{ grads: Record<string, tf.Tensor>; scalars: Record<string, number>; weight: number }> {
    const keys = Object.keys(scalars).sort();
    if (this.size === 1) return { grads, scalars: Object.fromEntries(keys.map((k) => [k, scalars[k][0]])), weight };
    const names = Object.keys(grads).sort();
    const shapes = names.map((n) => grads[n].shape);
    const sizes = names.map((n) => grads[n].size);
    const total = sizes.reduce((a, b) => a + b, 0);
    const buf = new Float32Array(total + 1 + 2 * keys.length);
    let at = 0;
    names.forEach((n, i) => {
      const v = grads[n].dataSync() as Float32Array;
      for (let j = 0; j < v.length; j++) buf[at + j] = v[j] * weight;
      at += sizes[i];
    });
    buf[at++] = weight;
    for (const k of keys) {
      buf[at++] = scalars[k][0] * scalars[k][1];
      buf[at++] = scalars[k][1];
    }
    tf.dispose(Object.values(grads));
    await this.collective('all-reduce', () => this.native!.allReduce(buf));
    const W = buf[total];
    const out: Record<string, tf.Tensor> = {};
    at = 0;
    names.forEach((n, i) => {
      const v = buf.subarray(at, at + sizes[i]);
      if (W > 0) for (let j = 0; j < v.length; j++) v[j] /= W;
      out[n] = tf.tensor(v, shapes[i], 'float32');
      at += sizes[i];
    });
    at = total + 1;
    const reduced: Record<string, number> = {};
    for (const k of keys) {
      const [s, w] = [buf[at++], buf[at++]];
      reduced[k] = w > 0 ? s / w : 0;
    }
    return { grads: out, scalars: reduced, weight: W };
  }

  /** The sum over ranks of a few numbers (counts that decide what every rank does next). */
  async sum(values: number[]): Promise<number[]> {
    if (this.size === 1) return values;
    const buf = Float32Array.from(values);
    await this.collective('all-reduce', () => this.native!.allReduce(buf));
    return Array.from(buf);
  }

  /** Rank 0's values of the parameters on every rank (the start of training must be the same everywhere). */
  async broadcastParams(params: Map<string, tf.Variable>): Promise<void> {
    if (this.size === 1) return;
    for (const [name, p] of [...params].sort(([a], [b]) => a.localeCompare(b))) {
      const buf = Float32Array.from(p.dataSync() as Float32Array);
      await this.collective(`broadcast of ${name}`, () => this.native!.broadcast(buf, 0));
      if (!this.lead) {
        const t = tf.tensor(buf, p.shape, 'float32');
        // in place: a bfloat16-stored weight stays so, and a kept bfloat16 copy is dropped
        assignInPlace(p, t);
        t.dispose();
      }
    }
  }

  /**
   * Every rank's value (small JSON: metrics, RNG states), in rank order, on every rank. Two all-reduces
   * (the lengths, then each rank's bytes at its own offset): a collective fails at once when a rank
   * has died, where a wait on the store would last until its timeout.
   */
  async gather<T>(value: T): Promise<T[]> {
    if (this.size === 1) return [value];
    const bytes = new TextEncoder().encode(JSON.stringify(value));
    const lengths = new Float32Array(this.size);
    lengths[this.rank] = bytes.length;
    await this.collective('all-gather', () => this.native!.allReduce(lengths));
    const offsets = [0];
    for (const n of lengths) offsets.push(offsets[offsets.length - 1] + n);
    const all = new Float32Array(offsets[this.size]);
    all.set(bytes, offsets[this.rank]);
    await this.collective('all-gather', () => this.native!.allReduce(all));
    const text = new TextDecoder();
    return Array.from({ length: this.size }, (_, r) => JSON.parse(text.decode(Uint8Array.from(all.subarray(offsets[r], offsets[r + 1])))) as T);
  }

  /** True on every rank when any rank asks (a signal on one rank stops all of them after the same step). */
  async any(flag: boolean): Promise<boolean> {
    if (this.size === 1) return flag;
    return (await this.sum([flag ? 1 : 0]))[0] > 0;
  }

  private async collective<T>(what: string, run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (err) {
      throw new GtaError(`rank ${this.rank} of ${this.size}: ${what} failed, another rank has stopped or is unreachable: ${firstLine(err)}`, 1);
    }
  }
}

const firstLine = (err: unknown) => String((err as Error)?.message ?? err).split('\n')[0];

let current = World.single();

/** This process's world (a world of one unless joinWorld ran). */
export function world(): World {
  return current;
}

/** Joins the ranks the environment names, once, at start-up; a single process stays a world of one. */
export async function joinWorld(env: NodeJS.ProcessEnv = process.env): Promise<World> {
  const e = worldEnv(env);
  if (!e || current.size > 1) return current;
  const { loadNative } = await import('../backend/torch/native.js');
  let native: DistNative;
  try {
    native = loadNative() as unknown as DistNative;
  } catch (err) {
    throw new GtaError(`data-parallel training needs the torch addon (its process group): ${firstLine(err)}`);
  }
  current = await World.join(e, native, distTimeoutMs(env));
  return current;
}
