/**
 * The libtorch addon (native/torch_addon.cc), loaded on first use. `npm ci` builds it when it finds a
 * libtorch (native/build.mjs); when it did not, `loadNative` throws with the reason the build recorded.
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { repoRoot } from '../../util/paths.js';
import type { AdamWStep } from '../fused.js';

/** A tensor result from the addon: [id, dtype code (0 float32, 1 int32, 2 bool), ...shape]. */
export type Raw = number[];
/** An argument of an ATen operator, converted by its schema: tensor id, number, boolean, string, list, or null for None. */
export type Arg = number | boolean | string | null | undefined | Arg[];

export interface TorchNative {
  /** Looks up an ATen operator by schema name and overload; returns a handle for `call`. */
  op(name: string, overload: string): number;
  /** Calls an operator; tensors come back as Raw, several results as an array. */
  call(op: number, args: Arg[]): unknown;
  fromArray(values: Float32Array | Int32Array | Uint8Array, shape: number[], dtype: number, device: string): Raw;
  /** A copy of the values, row-major, as Float32Array, Int32Array or Uint8Array (bool). */
  toArray(id: number): Float32Array | Int32Array | Uint8Array;
  free(id: number): void;
  liveTensors(): number;
  /** Bytes the addon's tensors hold now and at most since the last reset (`reset` starts a new peak); absent from an addon built before it. */
  memory?(reset?: boolean): { live: number; peak: number; storages: number };
  /** n threads from now on; `big`, when given, for big work inside fewer (native/gta_arch.h BigWork; 0: none). */
  setThreads(n: number, big?: number): void;
  /** at::matmul(a, b), on the big-work thread count when it is one; absent from an addon built before it. */
  product?(a: number, b: number): Raw;
  /** Products (product, and the fused passes') in bfloat16 or float32 from now on (native/precision.cc); absent from an addon built before it. */
  setPrecision?(precision: 'bf16' | 'bf16-true' | 'fp32'): void;
  /** These weights keep their bfloat16 copies between products until each changes (native/precision.cc). */
  keepBf16Copies?(ids: number[]): void;
  /** These tensors' data in bfloat16 from now on (JS still sees float32; toArray converts): a LoRA run's frozen weights under bf16. */
  toBf16?(ids: number[]): void;
  /** src's values into dst's own storage, in dst's dtype (native/torch_addon.cc CopyInto). */
  copyInto?(dst: number, src: number): void;
  /** splitPasses: the fused passes run as parts, one per thread (native/train_pass.cc Split). */
  info(): { version: string; threads: number; parallel: string; config: string; cudaDevices: number; splitPasses: number };
  /** The fused decoding step (native/decode_step.cc; src/backend/torch/decode_step.ts wraps it); absent from an addon built before it. */
  decodeBegin?(spec: DecodeStepSpec): number;
  decodeStep?(session: number, ids: Int32Array, positions: Int32Array, need: Int32Array, out: Float32Array): void;
  decodeEnd?(session: number): void;
  /** The candidate drawn from softmax(logits / divisor) over `ids` at u in [0, 1) (native/decode_step.cc), as sampleFrom draws it. */
  sampleRow?(logits: Float32Array, ids: Int32Array, divisor: number, u: number): number;
  /** The fused forward and backward pass (native/train_pass.cc); absent from an addon built before it. */
  trainForward?(spec: TrainPassSpec): Raw[];
  trainBackward?(handle: number, dy: number): Raw[];
  /** [a·b, |a|², |b|²] over tensor id lists (native/grad_stats.cc); without b, |a|² three times. */
  gradDots?(a: number[], b?: number[]): [number, number, number];
  /**
   * Per row of logits [N, V], z = logits * invTemp (+ bias[biasIndex[i]], bias [R, V] and int32 biasIndex [N]):
   * log softmax(z) at int32 targets [N], each row's log-sum-exp, and its entropy (native/log_probs.cc).
   */
  logProbs?(logits: number, targets: number, invTemp: number, bias: number | null, biasIndex: number | null): Raw[];
  /** The gradient of logProbs's first result with respect to the logits, from dy [N] and its log-sum-exp. */
  logProbsGrad?(dy: number, logits: number, targets: number, invTemp: number, bias: number | null, biasIndex: number | null, lse: number): Raw;
  /** One AdamW update in a single pass per parameter (native/adamw.cc): new p, then m, then v. */
  adamw?(p: number[], g: number[], m: number[], v: number[], step: AdamWStep & { decay: boolean[] }): Raw[];
  /** The same update written into p, m and v (src/backend/torch/in_place.ts); absent from an addon built before it. */
  adamwInPlace?(p: number[], g: number[], m: number[], v: number[], step: AdamWStep & { decay: boolean[] }): void;
}

/** One stream of a fused pass: [n, T] int32 ids and positions, [n, 1, T, Tk] bias (addon ids). */
export interface PassStream {
  ids: number;
  positions: number;
  bias: number;
}

/** trainForward's argument (native/train_pass.cc): tensors as addon ids, weights in nativeWeights' order. */
export interface TrainPassSpec {
  weights: number[];
  heads: number;
  scale: number;
  eps: number;
  prompt: PassStream;
  /** Completions after prompts shared by groups of `group` rows (forwardShared); absent for forward. */
  completion?: PassStream;
  group: number;
  /** Keep what the backward needs: the result then has the pass's handle after the hidden states. */
  save: boolean;
  /** Also return each block's keys, then each block's values, of the prompts (after the handle). */
  cache?: boolean;
  /** Dropout multipliers (whole sequences only): embeddings, then per block attention, output, MLP. */
  dropout?: number[];
}

/** decodeBegin's argument: tensors as addon ids (native/decode_step.cc says the order of `weights`). */
export interface DecodeStepSpec {
  weights: number[];
  promptK: number[];
  promptV: number[];
  /** Each row's padded prompt columns (B rows; row b continues prompt floor(b / group)). */
  pad: number[];
  group: number;
  heads: number;
  /** The most steps the session will take (its own cache's length). */
  capacity: number;
  /** The attention scale (Transformer.attentionScale) and layer-norm epsilon. */
  scale: number;
  eps: number;
  /** The bias at padded prompt keys (NEG_INF). */
  negInf: number;
}

let cached: TorchNative | undefined;

/** The addon if this process has loaded it (never loads it). */
export function loadedNative(): TorchNative | undefined {
  return cached;
}

/**
 * OpenBLAS picks its kernels from the CPU model name, and on virtual machines that report a generic
 * "Intel Xeon Processor" it falls back to Prescott (SSE3): matmul at 30 GFLOP/s instead of 207 on
 * this 2-core machine with AVX-512. Naming the core type from the CPU's feature flags fixes that. It
 * must be in the environment before libopenblas loads; an explicit OPENBLAS_CORETYPE wins.
 */
export function openblasCoreType(): string | undefined {
  if (process.env.OPENBLAS_CORETYPE) return process.env.OPENBLAS_CORETYPE;
  const flags = cpuFlags();
  if (!flags) return undefined;
  if (['avx512f', 'avx512bw', 'avx512vl', 'avx512dq'].every((f) => flags.has(f))) return 'SkylakeX';
  if (flags.has('avx2') && flags.has('fma')) return 'Haswell';
  return undefined;
}

/** The CPU's feature flags from /proc/cpuinfo, or null where there is none (not Linux). */
export function cpuFlags(): Set<string> | null {
  try {
    const line = fs.readFileSync('/proc/cpuinfo', 'utf8').split('\n').find((l) => l.startsWith('flags'));
    return new Set((line ?? '').split(':')[1]?.trim().split(/\s+/) ?? []);
  } catch {
    return null;
  }
}

/** Which libtorch the addon was built against, as the build recorded it (without loading the addon). */
export function builtVersion(): string {
  try {
    return String((JSON.parse(fs.readFileSync(path.join(repoRoot(), 'native', 'build', 'status.json'), 'utf8')) as { libtorch?: string }).libtorch ?? 'unknown');
  } catch {
    return 'unknown';
  }
}

export function loadNative(): TorchNative {
  if (cached) return cached;
  const dir = path.join(repoRoot(), 'native', 'build');
  const file = path.join(dir, 'Release', 'gta_torch.node');
  if (!fs.existsSync(file)) {
    let why = 'the libtorch addon was not built (run `npm run build:torch`)';
    try {
      const status = JSON.parse(fs.readFileSync(path.join(dir, 'status.json'), 'utf8')) as { reason?: string };
      if (status.reason) why = status.reason;
    } catch {
      // no status: the install step never ran
    }
    throw new Error(why);
  }
  const core = openblasCoreType();
  if (core) process.env.OPENBLAS_CORETYPE = core;
  cached = createRequire(import.meta.url)(file) as TorchNative;
  return cached;
}
