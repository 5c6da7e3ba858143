/**
 * The pieces of the Hugging Face families' blocks that gta's own block lacks, composed from tfjs ops
 * (every backend has them, and tfjs differentiates them): RMSNorm, GELU and SiLU, rotary position
 * embeddings, and the key/value heads of grouped-query attention shared out to the query heads. Each
 * follows transformers' definition (modeling_llama.py, activations.py) operation for operation.
 */
import tf from '../util/tfjs.cjs';
import type { DecoderStyle } from './arch.js';

/** x * rsqrt(mean(x^2) + eps) * g over the last axis (LlamaRMSNorm). */
export function rmsNorm<T extends tf.Tensor>(x: T, g: tf.Tensor1D, eps: number): T {
  return tf.mul(tf.mul(x, tf.rsqrt(tf.add(tf.mean(tf.square(x), -1, true), eps))), g) as T;
}

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);

/**
 * The MLP's activation: gelu_tanh is GPT-2's gelu_new, 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
 * (x^3 as a product: tfjs's pow gradient takes the log of the negative base).
 */
export function activate(x: tf.Tensor, kind: DecoderStyle['activation']): tf.Tensor {
  switch (kind) {
    case 'relu':
      return tf.relu(x);
    case 'silu':
      return tf.mul(x, tf.sigmoid(x));
    case 'gelu':
      return tf.mul(tf.mul(x, 0.5), tf.add(tf.erf(tf.mul(x, Math.SQRT1_2)), 1));
    case 'gelu_tanh':
      return tf.mul(tf.mul(x, 0.5), tf.add(tf.tanh(tf.mul(tf.add(x, tf.mul(tf.mul(tf.mul(x, x), x), 0.044715)), SQRT_2_OVER_PI)), 1));
  }
}

/** cos and sin of every (token, frequency) angle: positions [B, T] int32 -> two [B, 1, T, head_dim / 2]. */
export function rotaryAngles(positions: tf.Tensor2D, invFreq: Float32Array): { cos: tf.Tensor4D; sin: tf.Tensor4D } {
  const [B, T] = positions.shape;
  const angles = tf.mul(tf.reshape(tf.cast(positions, 'float32'), [B, 1, T, 1]), tf.tensor1d(invFreq));
  return { cos: tf.cos(angles) as tf.Tensor4D, sin: tf.sin(angles) as tf.Tensor4D };
}

/**
 * Rotates each head's two halves by the token's angles ([B, H, T, dh] with angles [B, 1, T, dh / 2]):
 * transformers' x * cos + rotate_half(x) * sin with cos and sin repeated over both halves.
 */
export function applyRotary(x: tf.Tensor4D, r: { cos: tf.Tensor4D; sin: tf.Tensor4D }): tf.Tensor4D {
  const [x1, x2] = tf.split(x, 2, 3);
  return tf.concat([tf.sub(tf.mul(x1, r.cos), tf.mul(x2, r.sin)), tf.add(tf.mul(x2, r.cos), tf.mul(x1, r.sin))], 3) as tf.Tensor4D;
}

/** [B, Hkv, T, dh] -> [B, Hkv * rep, T, dh], each key/value head repeated for its `rep` query heads (transformers' repeat_kv). */
export function repeatKv(x: tf.Tensor4D, rep: number): tf.Tensor4D {
  if (rep === 1) return x;
  const [B, Hk, T, dh] = x.shape;
  // a rank-3 tile: tfjs has no gradient for tiling rank 5
  return tf.reshape(tf.tile(tf.reshape(x, [B * Hk, 1, T * dh]), [1, rep, 1]), [B, Hk * rep, T, dh]) as tf.Tensor4D;
}
