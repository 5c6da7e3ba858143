/**
 * When decoding takes its steps in one native call (src/backend/torch/decode_step.ts): on the torch
 * backend, for gta's own architecture (learned positions, LayerNorm, ReLU MLP, tied head; a styled
 * Hugging Face model's blocks differ and keep the tfjs path), unless GTA_NATIVE_DECODE=0. Decoding
 * has no dropout, so the fused step has none either. Its logits equal Transformer.step's and
 * logits()'s to float rounding (test/decode_step.test.ts).
 */
import { weightsInBf16 } from '../backend/torch/precision.js';
import tf from '../util/tfjs.cjs';
import { NativeDecodeStep } from '../backend/torch/decode_step.js';
import { nativeWeights } from '../model/native_weights.js';
import { LAYER_NORM_EPS, NEG_INF, type KvCache, type Transformer } from '../model/transformer.js';

export function nativeDecodeEnabled(): boolean {
  return process.env.GTA_NATIVE_DECODE !== '0';
}

/**
 * A native step for rows continuing `prompt` (a prefill's cache, one prompt per `group` consecutive
 * rows; `pad` is each row's padded prompt columns), for up to `capacity` steps; null where decoding
 * keeps the tfjs path. The caller closes it.
 */
export function openNativeStep(model: Transformer, prompt: KvCache, pad: number[], group: number, capacity: number): NativeDecodeStep | null {
  if (!nativeDecodeEnabled() || model.arch.style || model.arch.lora || weightsInBf16() || tf.getBackend() !== 'torch' || capacity <= 0) return null;
  return NativeDecodeStep.open({ weights: nativeWeights(model.params, model.arch.n_layers), promptK: prompt.k, promptV: prompt.v, pad, group, heads: model.arch.n_heads, capacity, scale: model.attentionScale(), eps: LAYER_NORM_EPS, negInf: NEG_INF });
}
