/**
 * train.precision: 'bf16' runs the torch backend's matrix products in bfloat16 (native/precision.cc):
 * operands rounded to bfloat16, float32 accumulation, the result rounded to bfloat16 and handed back
 * as float32. Everything else stays float32: the weights AdamW updates (the master copy), its moments,
 * norms, softmax, losses and the log-probabilities RL's ratios are made of. That is PyTorch autocast's
 * split (matmul in bfloat16, reductions and losses in float32) without its bfloat16 activations: a
 * product's result is float32 again at once, so no other kernel needs a bfloat16 path.
 *
 * 'bf16-true' (Lightning's name) is a model trained as PyTorch trains one loaded in torch.bfloat16:
 * the weights and AdamW's moments stored in bfloat16 (2 bytes each where float32 took 4 and 'bf16'
 * added a copy), a product's result and every operator's on bfloat16 operands kept in bfloat16, so
 * activations and gradients take half the memory too. Two things stay float32, as careful bf16
 * training keeps them: the log-probabilities (native/log_probs.cc reads bfloat16 logits in float32, so
 * RL's ratios and every loss are float32 values), and AdamW's arithmetic, whose result is rounded to
 * bfloat16 stochastically (native/adamw.cc says why nearest rounding would lose most updates).
 */
import tf from '../../util/tfjs.cjs';
import type { BackendInfo } from '../select.js';
import type { TorchBackend } from './backend.js';
import { GtaError } from '../../util/errors.js';
import { cpuFlags, loadedNative } from './native.js';

export type Precision = 'fp32' | 'bf16' | 'bf16-true';

let current: Precision = 'fp32';

/**
 * Whether this process trains under bf16-true, whose bfloat16 weights the fused native passes and
 * decoding step (written for float32 weights: native/train_pass.cc, decode_step.cc) leave to tfjs's kernels.
 */
export function weightsInBf16(): boolean {
  return current === 'bf16-true';
}

/** Sets the products' precision for this process; a one-line error naming the key where bf16 cannot run here. */
export function setPrecision(precision: Precision, backend: BackendInfo): void {
  const native = backend.name === 'torch' ? loadedNative() : undefined;
  current = 'fp32';
  if (precision === 'fp32') return native?.setPrecision?.('fp32');
  if (!native) throw new GtaError(`train.precision: ${precision} runs on the torch backend (this run is on ${backend.name}); use fp32`);
  if (!native.setPrecision || (precision === 'bf16-true' && !native.copyInto)) throw new GtaError(`train.precision: ${precision} needs an addon built with it (npm run build:torch)`);
  const gpu = /cuda/.test(backend.device);
  const flags = cpuFlags();
  // without the instructions oneDNN emulates bfloat16, slower than float32
  if (!gpu && !(flags?.has('avx512_bf16') || flags?.has('amx_bf16'))) throw new GtaError(`train.precision: ${precision} needs a CPU with AVX512-BF16 or AMX-BF16 (/proc/cpuinfo lists neither) or a GPU; use fp32`);
  native.setPrecision(precision);
  current = precision;
}

/**
 * Under bf16, a model's weights keep their bfloat16 copies between products, each until it changes
 * (a GTA step multiplies each weight some 18 times; without this each product cast it again).
 */
export function keepBf16Copies(weights: Iterable<tf.Variable>): void {
  const native = loadedNative();
  if (native?.keepBf16Copies && tf.getBackend() === 'torch') native.keepBf16Copies(addonIds(weights));
}

/**
 * Under bf16, weights that never change and only multiply (a LoRA run's frozen matrices) are kept in
 * bfloat16 alone: 2 bytes a parameter instead of float32's 4 plus a bfloat16 copy's 2. Every product
 * rounds them to bfloat16 anyway; where they are read otherwise (an embedding's rows) they are the
 * bfloat16 values (exact for a model whose weights were bfloat16, as published models are).
 */
export function storeInBf16(weights: Iterable<tf.Variable>): void {
  const native = loadedNative();
  if (native?.toBf16 && tf.getBackend() === 'torch') native.toBf16(addonIds(weights));
}

/** The addon's tensor ids of variables on the torch backend. */
function addonIds(weights: Iterable<tf.Variable>): number[] {
  const b = tf.backend() as unknown as TorchBackend;
  return [...weights].map((v) => b.idOf(v.dataId));
}
